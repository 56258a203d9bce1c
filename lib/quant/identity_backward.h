// identity_backward.h — the shared body of the weight quantizers whose fused kernel maps
// (w, bits per group) to q plus one float per group and whose backward is the identity
// (STE): IMPQ's Lin (lin.h) and HAWQ-V3's symmetric (symmetric.h). Checks the input, runs
// the kernel on CPU tensors and the op chain on others.
//
//   return QuantizeWithIdentityBackward("LinQuantize", w, bits, 1, kLinMaxBits,
//                                       &KernelTable::lin_forward, op_chain::Lin);
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "lib/quant/kernels.h"

namespace mpq::quant {

using PerGroupWeightKernel = bool (*KernelTable::*)(const float* w, const int32_t* bits, int64_t groups,
                                                     int64_t group_size, float* out, float* per_group);
using WeightOpChain = at::Tensor (*)(const at::Tensor& w, const at::Tensor& bits);

at::Tensor QuantizeWithIdentityBackward(const char* name, const at::Tensor& w, const at::Tensor& bits,
                                        int64_t min_bits, int64_t max_bits, PerGroupWeightKernel kernel,
                                        WeightOpChain op_chain);

}  // namespace mpq::quant
