# kernel_flags.sh — the per-file compiler flags of lib/quant's kernel builds, mirroring
# lib/quant/BUILD (kernels_avx2, kernels_avx512). Sourced by tools/check_libtorch.sh and
# tools/gpu/build.sh, which build lib/quant without Bazel, so that both stay in step.
#
#   declare -A extra=()
#   source tools/kernel_flags.sh
#   kernel_flags "$LIBTORCH_DIR" || echo "generic kernels only"
#
# kernel_flags ROOT fills the caller's associative array `extra` (source file -> flags).
# The AVX2 and AVX-512 builds need sleef.h, which LibTorch's vec headers include. Without
# it, only the generic build is possible, and kernel_flags returns 1.
kernel_flags() {
  local root=$1 defines=""
  extra[lib/quant/kernels_generic.cc]="-DCPU_CAPABILITY=DEFAULT"
  if [[ -f "$root/include/sleef.h" || -f /usr/include/sleef.h ]]; then
    extra[lib/quant/kernels_avx2.cc]="-mavx2 -mfma -mf16c -DCPU_CAPABILITY=AVX2 -DCPU_CAPABILITY_AVX2"
    extra[lib/quant/kernels_avx512.cc]="-mavx512f -mavx512dq -mavx512vl -mavx512bw -mavx2 -mfma -mf16c -DCPU_CAPABILITY=AVX512 -DCPU_CAPABILITY_AVX512 -Wno-uninitialized -Wno-maybe-uninitialized"
    defines="-DMPQ_HAVE_AVX2_KERNELS -DMPQ_HAVE_AVX512_KERNELS"
  fi
  extra[lib/quant/kernels.cc]=$defines
  [[ -n "$defines" ]]
}
