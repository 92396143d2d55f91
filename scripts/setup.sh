#!/usr/bin/env bash
# Installs tokenrl's build dependencies (Debian 12 packages) when missing, and
# configures + builds the project into build/. Idempotent: with everything
# installed and built it only checks and returns in seconds.
#
# Environment: TOKENRL_BUILD_DIR (default build), TOKENRL_BUILD_TYPE (Release),
# TOKENRL_CMAKE_ARGS (extra arguments for cmake), TOKENRL_JOBS (nproc).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config git
  libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libfmt-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libtorch-dev libopenblas0 libopenblas-dev libdnnl-dev
  gnuplot-nox
  slurmctld slurmd slurm-client munge
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's libtorch calls the generic libblas.so.3; the reference BLAS makes
# updates 4-6x slower, so point the alternative at OpenBLAS.
alt=libblas.so.3-x86_64-linux-gnu
openblas=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
if [[ -e $openblas ]] && command -v update-alternatives >/dev/null &&
   [[ $(update-alternatives --query "$alt" 2>/dev/null | awk '/^Value:/{print $2}') != "$openblas" ]]; then
  if [[ $(id -u) -eq 0 ]]; then update-alternatives --set "$alt" "$openblas" >/dev/null; else sudo update-alternatives --set "$alt" "$openblas" >/dev/null; fi
fi

BUILD_DIR=${TOKENRL_BUILD_DIR:-build}
JOBS=${TOKENRL_JOBS:-$(nproc)}
if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
  # shellcheck disable=SC2086
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${TOKENRL_BUILD_TYPE:-Release}" ${TOKENRL_CMAKE_ARGS:-} >/dev/null
fi
cmake --build "$BUILD_DIR" -j "$JOBS"
