#!/usr/bin/env bash
# Packs what tools/gpu/build.sh needs beyond a LibTorch, g++ and the C library, from this
# Debian 12 machine (after tools/setup.sh), into one folder to copy to a machine that
# has a CUDA LibTorch but no Bazel, Abseil or SQLite headers, and no network:
#
#   tools/gpu/pack_deps.sh [OUT]        # default OUT: build/gpu_deps (git-ignored)
#
# OUT/include   Debian's headers: Abseil, nlohmann-json, SQLite, zlib, TurboJPEG, GLPK, GSL
# OUT/lib       their static archives (libabsl_*.a, libsqlite3.a, libz.a, libturbojpeg.a,
#               libgsl.a, libgslcblas.a, libglpk.a and what it needs: GMP, AMD, COLAMD,
#               SuiteSparse_config) and
#               libltdl.so.7 (GLPK's loader; Debian ships no static one)
# OUT/specs     every experiment target's spec (bazel-bin/experiments/*.json; built first)
# OUT/data/fashion-mnist   the default dataset (Debian's dataset-fashion-mnist)
# OUT/MANIFEST  what was packed, from which Debian package version
#
# About 45 MiB, 30 of them the dataset. Everything is copied, nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-build/gpu_deps}
multiarch=/usr/lib/x86_64-linux-gnu
fail() { echo "pack_deps: $*" >&2; exit 2; }
need() { [[ -e "$1" ]] || fail "$1 is missing (run tools/setup.sh: package $2)"; }

need /usr/include/absl/strings/str_cat.h libabsl-dev
need /usr/include/nlohmann/json.hpp nlohmann-json3-dev
need /usr/include/sqlite3.h libsqlite3-dev
need /usr/include/zlib.h zlib1g-dev
need /usr/include/turbojpeg.h libturbojpeg0-dev
need /usr/include/glpk.h libglpk-dev
need /usr/include/gsl/gsl_cdf.h libgsl-dev
need /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz dataset-fashion-mnist
archives=(libsqlite3.a libz.a libturbojpeg.a libglpk.a libgmp.a libamd.a libcolamd.a libsuitesparseconfig.a libgsl.a
          libgslcblas.a)
for a in "${archives[@]}"; do need "$multiarch/$a" "the -dev package of ${a%.a}"; done
compgen -G "$multiarch/libabsl_*.a" > /dev/null || fail "no $multiarch/libabsl_*.a (libabsl-dev)"
need "$multiarch/libltdl.so.7" libltdl7

# The specs are Bazel outputs: build them (cheap: no compiling) when they are not there.
if ! compgen -G "bazel-bin/experiments/quickstart_fp32.json" > /dev/null; then
  command -v bazel > /dev/null || fail "no bazel-bin/experiments/*.json and no bazel to build them"
  bazel build //experiments:all > /dev/null 2>&1 || fail "bazel build //experiments:all failed"
fi

rm -rf "$out"
mkdir -p "$out/include" "$out/lib" "$out/specs" "$out/data"
cp -r /usr/include/absl /usr/include/nlohmann /usr/include/gsl "$out/include/"
cp /usr/include/{sqlite3.h,sqlite3ext.h,zlib.h,zconf.h,turbojpeg.h,glpk.h} "$out/include/"
# zconf.h may live in the multiarch include directory on some releases.
[[ -f "$out/include/zconf.h" ]] || cp /usr/include/x86_64-linux-gnu/zconf.h "$out/include/"
cp "$multiarch"/libabsl_*.a "$out/lib/"
for a in "${archives[@]}"; do cp "$multiarch/$a" "$out/lib/"; done
cp -L "$multiarch/libltdl.so.7" "$out/lib/"
for spec in bazel-bin/experiments/*.json; do
  case "$spec" in *.table.json) continue ;; esac  # paper tables, not specs
  cp "$spec" "$out/specs/"
done
cp -r /usr/share/datasets/fashion-mnist "$out/data/"
{
  echo "packed $(date -u +%FT%TZ) on $(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -m)"
  echo "from $(git describe --always --dirty 2>/dev/null || echo 'no git')"
  dpkg-query -W -f '${Package} ${Version}\n' libabsl-dev nlohmann-json3-dev libsqlite3-dev zlib1g-dev \
    libturbojpeg0-dev libglpk-dev libgsl-dev libgmp-dev libsuitesparse-dev libltdl7 dataset-fashion-mnist 2>/dev/null || true
} > "$out/MANIFEST"
echo "pack_deps: $out: $(du -sh "$out" | cut -f1) ($(ls "$out/specs" | wc -l) specs, $(ls "$out/lib" | wc -l) libraries)"
