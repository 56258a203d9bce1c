// The KernelTable built for baseline x86-64 (see kernels_impl.h).
#define MPQ_KERNEL_NS generic
#define MPQ_KERNEL_ISA_NAME "generic"
#include "lib/quant/kernels_impl.h"
