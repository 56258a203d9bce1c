// The KernelTable built with AVX-512 (F, DQ, VL, BW) + FMA (see kernels_impl.h); only
// called when the CPU reports them (kernels.cc).
#define MPQ_KERNEL_NS avx512
#define MPQ_KERNEL_ISA_NAME "avx512"
#include "lib/quant/kernels_impl.h"
