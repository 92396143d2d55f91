#!/usr/bin/env bash
# Installs tokenrl's build dependencies (Debian 12 packages) when missing, then
# configures and builds into build/. Idempotent: with everything installed and
# built it only checks and returns in seconds.
#
#   scripts/setup.sh run    what the main job needs: the `tokenrl` binary on the
#                           built-in CPU engine (no libtorch, tests or benchmarks)
#   scripts/setup.sh test   everything: libtorch backend, tests, benchmarks, Slurm
#   scripts/setup.sh asan   the tests built with AddressSanitizer + UBSan, in build-asan/
#   scripts/setup.sh tsan   the tests built with ThreadSanitizer, in build-tsan/
#   scripts/setup.sh fuzz   the fuzz targets (clang, libFuzzer, ASan + UBSan), in build-fuzz/
#                           (docs/hardening.md; scripts/sanitize.sh and scripts/fuzz.sh run them)
#
# `run` never downgrades a build directory that `test` configured: it then just
# builds the `tokenrl` target there.
#
# Environment: TOKENRL_BUILD_DIR (default build), TOKENRL_BUILD_TYPE (Release),
# TOKENRL_CMAKE_ARGS (extra arguments for cmake), TOKENRL_JOBS (nproc).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-test}
case "$MODE" in
  run | test | asan | tsan | fuzz) ;;
  *) echo "usage: scripts/setup.sh [run|test|asan|tsan|fuzz]" >&2; exit 2 ;;
esac
# Each step says what it does and when it starts (seconds since this script began).
step() { echo "== setup ($MODE) [${SECONDS} s]: $*"; }

PACKAGES=(
  build-essential cmake
  libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libfmt-dev zlib1g-dev
  libopenblas0 libopenblas-dev libdnnl-dev
)
if [[ $MODE != run ]]; then
  PACKAGES+=(
    pkg-config git
    libgtest-dev libgmock-dev libbenchmark-dev
    libtorch-dev
    gnuplot-nox
    slurmctld slurmd slurm-client munge
  )
fi
if [[ $MODE == fuzz ]]; then PACKAGES+=(clang libclang-rt-14-dev); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
if ((${#missing[@]})); then
  step "installing ${#missing[@]} Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's libtorch calls the generic libblas.so.3; the reference BLAS makes
# updates 4-6x slower, so point the alternative at OpenBLAS.
alt=libblas.so.3-x86_64-linux-gnu
openblas=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
if [[ -e $openblas ]] && command -v update-alternatives >/dev/null &&
   [[ $(update-alternatives --query "$alt" 2>/dev/null | awk '/^Value:/{print $2}') != "$openblas" ]]; then
  $SUDO update-alternatives --set "$alt" "$openblas" >/dev/null
fi

case "$MODE" in
  run | test) BUILD_DIR=${TOKENRL_BUILD_DIR:-build} ;;
  *) BUILD_DIR=build-$MODE ;;
esac
JOBS=${TOKENRL_JOBS:-$(nproc)}
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD_DIR/CMakeCache.txt" 2>/dev/null; }
if [[ $MODE == run ]]; then
  options=(-DTOKENRL_WITH_TORCH=OFF -DTOKENRL_BUILD_TESTS=OFF -DTOKENRL_BUILD_BENCH=OFF)
  targets=(--target tokenrl)
  configure=$([[ -f $BUILD_DIR/CMakeCache.txt ]] && echo no || echo yes)
elif [[ $MODE == asan || $MODE == tsan || $MODE == fuzz ]]; then
  # Separate build directories, configured once; benchmarks are not sanitized.
  case "$MODE" in
    asan) options=(-DTOKENRL_SANITIZE=address -DTOKENRL_BUILD_TESTS=ON -DTOKENRL_WITH_TORCH=AUTO) ;;
    # libtorch and its OpenMP pool are not built with TSan (their synchronization
    # is invisible to it): the TSan suite is the torch-free one.
    tsan) options=(-DTOKENRL_SANITIZE=thread -DTOKENRL_BUILD_TESTS=ON -DTOKENRL_WITH_TORCH=OFF) ;;
    fuzz) options=(-DCMAKE_CXX_COMPILER=clang++ -DTOKENRL_SANITIZE=address -DTOKENRL_BUILD_FUZZERS=ON
                   -DTOKENRL_BUILD_TESTS=OFF -DTOKENRL_WITH_TORCH=AUTO) ;;
  esac
  options+=(-DTOKENRL_BUILD_BENCH=OFF)
  targets=()
  configure=$([[ -f $BUILD_DIR/CMakeCache.txt ]] && echo no || echo yes)
else
  options=(-DTOKENRL_WITH_TORCH=AUTO -DTOKENRL_BUILD_TESTS=ON -DTOKENRL_BUILD_BENCH=ON)
  targets=()
  configure=no
  if [[ ! -f $BUILD_DIR/CMakeCache.txt || $(cache_value TOKENRL_WITH_TORCH) == OFF ||
        $(cache_value TOKENRL_BUILD_TESTS) != ON || $(cache_value TOKENRL_BUILD_BENCH) != ON ]]; then
    configure=yes
  fi
fi
if [[ $configure == yes ]]; then
  step "configuring $BUILD_DIR (${options[*]})"
  # shellcheck disable=SC2086
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${TOKENRL_BUILD_TYPE:-Release}" "${options[@]}" \
    ${TOKENRL_CMAKE_ARGS:-} >/dev/null
fi
step "building ${targets[*]:-all targets} in $BUILD_DIR with $JOBS jobs"
cmake --build "$BUILD_DIR" -j "$JOBS" "${targets[@]}"
step "done"
