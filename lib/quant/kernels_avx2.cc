// The KernelTable built with AVX2 + FMA (see kernels_impl.h); only called when the
// CPU reports both (kernels.cc).
#define MPQ_KERNEL_NS avx2
#define MPQ_KERNEL_ISA_NAME "avx2"
#include "lib/quant/kernels_impl.h"
