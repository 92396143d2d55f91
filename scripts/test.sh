#!/usr/bin/env bash
# Quick start (2): set everything up, then run the whole test suite (CTest).
# Extra arguments go to ctest (e.g. -L env, -LE slow, -R Parity).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
BUILD_DIR=${TOKENRL_BUILD_DIR:-build}
echo "== test: running the suite (ctest)"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${TOKENRL_JOBS:-$(nproc)}" "$@"
