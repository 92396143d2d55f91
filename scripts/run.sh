#!/usr/bin/env bash
# Quick start (1): set everything up, then run the main job on a small default:
# a real DQN training run on MinAtar Breakout (flatten network, built-in CPU
# engine, 150k env steps). Its evaluation return climbs well above the random
# policy's 0.5. Output goes to a fresh directory out/quickstart-<time>/
# (metrics.csv, checkpoints, summary.json).
# Builds only the `tokenrl` binary (no libtorch, tests or benchmarks; see
# scripts/setup.sh). Extra arguments go to `tokenrl train`
# (e.g. --set network.mixer.type=softmoe).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
BUILD_DIR=${TOKENRL_BUILD_DIR:-build}
OUT="out/quickstart-$(date +%Y%m%d-%H%M%S)"
echo "== run: training (tokenrl train --config configs/train/minatar_breakout_quick.toml --out $OUT)"
"$BUILD_DIR/tokenrl" train --config configs/train/minatar_breakout_quick.toml --out "$OUT" "$@"
