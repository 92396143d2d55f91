#!/usr/bin/env bash
# Builds the test suite with a sanitizer and runs it (docs/hardening.md).
#
#   scripts/sanitize.sh address [CTEST ARGS...]   ASan + UBSan (build-asan/)
#   scripts/sanitize.sh thread  [CTEST ARGS...]   TSan (build-tsan/)
#
# Any report fails the test that caused it. Extra arguments go to ctest (for
# example -LE torch, -R Sweep). Suppressions for uninstrumented libraries are
# in tests/sanitizers/ with the reason for each.
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${1:-}
case "$KIND" in
  address) MODE=asan ;;
  thread) MODE=tsan ;;
  *) echo "usage: scripts/sanitize.sh address|thread [ctest args...]" >&2; exit 2 ;;
esac
shift
scripts/setup.sh "$MODE"
SUPP=$PWD/tests/sanitizers
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1"
export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$SUPP/tsan.supp"
echo "== sanitize ($KIND): running the suite (ctest)"
# Sanitized code runs 2-15x slower: give each test more time than ctest's default.
ctest --test-dir "build-$MODE" --output-on-failure --timeout 3000 -j "${TOKENRL_JOBS:-$(nproc)}" "$@"
