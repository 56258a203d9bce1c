#include "lib/quant/kernels.h"

namespace mpq::quant {
namespace generic {
const KernelTable& Table();
}
#if defined(MPQ_HAVE_AVX2_KERNELS)
namespace avx2 {
const KernelTable& Table();
}
#endif

#if defined(MPQ_HAVE_AVX512_KERNELS)
namespace avx512 {
const KernelTable& Table();
}
#endif

const KernelTable& GenericKernels() { return generic::Table(); }

const KernelTable* Avx512KernelsIfSupported() {
#if defined(MPQ_HAVE_AVX512_KERNELS)
  static const bool supported = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("fma");
  return supported ? &avx512::Table() : nullptr;
#else
  return nullptr;
#endif
}

const KernelTable* Avx2KernelsIfSupported() {
#if defined(MPQ_HAVE_AVX2_KERNELS)
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return supported ? &avx2::Table() : nullptr;
#else
  return nullptr;
#endif
}

const KernelTable& CpuKernels() {
  static const KernelTable& table = Avx512KernelsIfSupported()  ? *Avx512KernelsIfSupported()
                                    : Avx2KernelsIfSupported() ? *Avx2KernelsIfSupported()
                                                               : GenericKernels();
  return table;
}

}  // namespace mpq::quant
