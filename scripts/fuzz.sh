#!/usr/bin/env bash
# Builds the fuzz targets (clang, libFuzzer, ASan + UBSan) and runs each for a
# bounded time, two at a time (docs/hardening.md).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default: 60 s, every target
#
# Each target starts from its committed corpus (tests/fuzz/corpus/<target>/,
# read only) and grows a scratch copy in build-fuzz/corpus/. A crash, leak,
# timeout or contract violation saves the input as
# build-fuzz/findings/<target>/crash-* and fails the script; commit such an
# input to the target's corpus with the fix, so that ctest replays it.
#
# TOKENRL_FUZZ_SEED=N fixes libFuzzer's random seed (CI does), so that a run
# repeats the same inputs in the same order: a longer run with the same seed
# covers a shorter one, and a red CI is a regression, not a lucky draw.
# Without it every run draws a new seed and explores further.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
scripts/setup.sh fuzz
BUILD=build-fuzz
if (($#)); then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(find "$BUILD/tests/fuzz" -maxdepth 1 -name '*_fuzz' -type f -executable -printf '%f\n' |
                         sed 's/_fuzz$//' | sort)
fi
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
run_one() {
  local t=$1 seconds=$2 build=$3 seed=()
  [[ -n ${TOKENRL_FUZZ_SEED:-} ]] && seed=(-seed="$TOKENRL_FUZZ_SEED")
  mkdir -p "$build/corpus/$t" "$build/findings/$t"
  if "$build/tests/fuzz/${t}_fuzz" "$build/corpus/$t" "tests/fuzz/corpus/$t" -max_total_time="$seconds" "${seed[@]}" \
       -timeout=20 -rss_limit_mb=3072 -max_len=65536 -print_final_stats=1 \
       -artifact_prefix="$build/findings/$t/" >"$build/findings/$t/log.txt" 2>&1; then
    echo "fuzz $t: ok, $(grep -m1 -o 'stat::number_of_executed_units: [0-9]*' "$build/findings/$t/log.txt" |
                        awk '{print $2}') inputs in ${seconds} s"
  else
    echo "fuzz $t: FAILED (input and log in $build/findings/$t/)"
    grep -E "ERROR|contract violated|SUMMARY|Test unit written" "$build/findings/$t/log.txt" | head -5
    return 1
  fi
}
export -f run_one
echo "== fuzz: ${#TARGETS[@]} target(s) x ${SECONDS_EACH} s, ${TOKENRL_JOBS:-$(nproc)} at a time: ${TARGETS[*]}"
printf '%s\n' "${TARGETS[@]}" |
  xargs -P "${TOKENRL_JOBS:-$(nproc)}" -I{} bash -c 'run_one "$@"' _ {} "$SECONDS_EACH" "$BUILD"
