#!/usr/bin/env bash
# Quick start (1): set everything up, then run the main job on a small default:
# a batched random-policy rollout of all five MinAtar games (2 members x 16
# environments, 200k steps per game) printing throughput and episode returns,
# followed by the single-thread environment benchmark.
# Extra arguments go to `tokenrl rollout` (e.g. --set vector_env.members=4).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR=${TOKENRL_BUILD_DIR:-build}
"$BUILD_DIR/tokenrl" rollout --config configs/rollout/minatar_random.toml --out out/rollout "$@"
"$BUILD_DIR/tokenrl" bench env --steps 1000000
