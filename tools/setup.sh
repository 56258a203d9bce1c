#!/usr/bin/env bash
# tools/setup.sh — installs exactly the Debian 12 packages mpqbench needs to build,
# test and run its default (Fashion-MNIST) experiments. Idempotent: packages already
# installed are skipped, and `apt-get update` runs at most once per invocation (and
# not at all when everything is present).
#
#   sudo tools/setup.sh          # or as root in a container
set -euo pipefail

PACKAGES=(
  bazel-bootstrap        # Bazel 4.2.3 (WORKSPACE mode), the build system
  g++                    # C++17 compiler
  pkg-config             # absl link lines (third_party/system_libs.bzl)
  libtorch-dev           # LibTorch 1.13.1, CPU
  libgloo-dev            # Gloo headers for c10d::ProcessGroupGloo (libtorch links libgloo0)
  libopenblas0-pthread   # fast BLAS behind libblas.so.3 (torch otherwise uses reference BLAS)
  libsleef-dev           # sleef.h: ATen's AVX2 at::vec headers include it (lib/quant kernels)
  libabsl-dev            # absl::Status, flags, strings
  libsqlite3-dev         # results store
  libgtest-dev           # unit tests
  libgmock-dev           # gmock matchers
  libbenchmark-dev       # Google Benchmark binaries
  nlohmann-json3-dev     # experiment specs
  zlib1g-dev             # gzip IDX files (Fashion-MNIST)
  libturbojpeg0-dev      # ImageNet JPEG decoding
  libglpk-dev            # GLPK: HAWQ-V3's integer linear program (lib/alloc/ilp)
  libgsl-dev             # GSL: Student-t quantiles and p-values of the leaderboard (reports/stats)
  dataset-fashion-mnist  # the default dataset: /usr/share/datasets/fashion-mnist
  slurm-wlm              # Slurm 22.05 (slurmctld, slurmd, sbatch): --executor=slurm, tested on a one-node cluster
  munge                  # Slurm's authentication (tools/slurm_local.sh starts a munged of its own)
  chromium               # headless browser: tests/reports:browser_test opens report.html from disk
  python3-websocket      # the DevTools protocol client of tests/reports/browser_check.py
  python3-pil            # decodes its screenshots (blank-figure check)
)

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup.sh: apt-get/dpkg not found. mpqbench's setup expects Debian 12 (bookworm);" >&2
  echo "          install these packages by other means: ${PACKAGES[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "setup.sh: all ${#PACKAGES[@]} packages already installed."
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "setup.sh: missing packages (${missing[*]}) and not running as root (no sudo either)." >&2
    echo "          re-run as root: su -c '$0'" >&2
    exit 1
  fi
fi

echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup.sh: done."
