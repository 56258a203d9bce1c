#!/usr/bin/env bash
# Builds tools/libtorch_check.cc and lib/quant with g++ alone (no Bazel, absl or SQLite
# needed) against the LibTorch in DIR, then runs it: every fused quantizer against its op
# chain on the CPU and, when CUDA is available, the CUDA path against the CPU kernels.
#
#   tools/check_libtorch.sh DIR
#
# DIR holds include/ and lib/ (an unpacked LibTorch, or a pip PyTorch's package directory:
# python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))'). The C++ ABI is
# read from torch when python3 can import it, else TORCH_CXX11_ABI (default 1). The
# AVX2/AVX-512 kernel builds need sleef.h (LibTorch's vec headers include it); without it
# only the generic build is compiled, and the output says so. Objects go to $OUT_DIR
# (default: a temporary directory).
set -euo pipefail
root=${1:?usage: tools/check_libtorch.sh LIBTORCH_DIR}
root=$(cd "$root" && pwd)
cd "$(dirname "$0")/.."
[[ -d "$root/include/ATen" && -d "$root/lib" ]] || { echo "check_libtorch: $root has no include/ATen or lib/" >&2; exit 2; }
out=${OUT_DIR:-$(mktemp -d)}
mkdir -p "$out"
abi=${TORCH_CXX11_ABI:-1}
if py_abi=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))' 2>/dev/null); then abi=$py_abi; fi
flags=(-std=c++17 -O2 -DNDEBUG -fopenmp "-D_GLIBCXX_USE_CXX11_ABI=$abi" -I. -isystem "$root/include"
       -isystem "$root/include/torch/csrc/api/include")
# Every lib/quant source but the kernel builds (compiled below with their own flags): a
# fixed list went stale when lib/quant grew (identity_backward.cc, symmetric.cc, ...).
srcs=(lib/runtime/malloc_tuning.cc tools/libtorch_check.cc)
for f in lib/quant/*.cc; do
  case "$f" in lib/quant/kernels*.cc) ;; *) srcs+=("$f") ;; esac
done
declare -A extra=()
source tools/kernel_flags.sh  # the kernel builds' flags, as lib/quant/BUILD has them
if kernel_flags "$root"; then
  echo "check_libtorch: sleef.h found: AVX2, AVX-512 and generic kernel builds"
else
  echo "check_libtorch: no sleef.h under $root/include or /usr/include: generic kernels only"
fi
jobs=()
for src in "${srcs[@]}" "${!extra[@]}"; do
  obj="$out/$(echo "$src" | tr / _).o"
  # shellcheck disable=SC2086
  g++ "${flags[@]}" ${extra[$src]:-} -c "$src" -o "$obj" &
  jobs+=($!)
  objs+=("$obj")
  if (( ${#jobs[@]} >= $(nproc) )); then wait "${jobs[0]}"; jobs=("${jobs[@]:1}"); fi
done
for j in "${jobs[@]}"; do wait "$j"; done
libs=(-ltorch -ltorch_cpu -lc10)
[[ -f "$root/lib/libtorch_cuda.so" ]] && libs+=(-ltorch_cuda -lc10_cuda)
g++ -fopenmp "${objs[@]}" -o "$out/libtorch_check" -L"$root/lib" -Wl,-rpath,"$root/lib" \
  -Wl,--no-as-needed "${libs[@]}" -Wl,--as-needed -lpthread
"$out/libtorch_check"
