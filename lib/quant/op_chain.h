// op_chain.h — every quantizer of lib/quant written as a chain of ATen tensor ops with
// the straight-through trick `x + (q - x).detach()`, the way the papers' PyTorch code
// does it. Same forward values and gradients as the fused kernels (docs/quantizers.md),
// on any device: the public quantizers use these for non-CPU tensors (e.g. a CUDA
// LibTorch), and the benchmarks use them as the "op chain" baseline.
//
//   at::Tensor q = op_chain::Lin(w, bits);   // bits: int tensor [1] or [C_out]
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mpq::quant::op_chain {

at::Tensor Lin(const at::Tensor& w, const at::Tensor& bits);
at::Tensor Symmetric(const at::Tensor& w, const at::Tensor& bits);
at::Tensor DorefaWeight(const at::Tensor& w, const at::Tensor& bits);
at::Tensor DorefaActivation(const at::Tensor& x, int64_t bits);
at::Tensor Pact(const at::Tensor& x, const at::Tensor& alpha, int64_t bits);
at::Tensor Lsq(const at::Tensor& v, const at::Tensor& step, int64_t bits, bool is_signed, double grad_scale);
at::Tensor HwgqWeight(const at::Tensor& w, const at::Tensor& bits);
at::Tensor HwgqActivation(const at::Tensor& x, int64_t bits);
at::Tensor UhlichUniform(const at::Tensor& x, const at::Tensor& d, const at::Tensor& qmax, bool is_signed);
at::Tensor UhlichPow2(const at::Tensor& x, const at::Tensor& xmin, const at::Tensor& xmax, bool is_signed,
                      bool with_zero);
// bits: float, 1 value or w.size(0) values (weights; >= 32 = full precision), 1 value (activations).
at::Tensor FracBitsWeight(const at::Tensor& w, const at::Tensor& bits);
at::Tensor FracBitsActivation(const at::Tensor& x, const at::Tensor& bits, const at::Tensor& alpha);

}  // namespace mpq::quant::op_chain
