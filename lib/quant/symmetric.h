// symmetric.h — HAWQ-V3's symmetric weight quantizer (Yao, Dong et al., ICML 2021 [1];
// Zhen-Dong/HAWQ utils/quantization_utils/quant_utils.py: symmetric_linear_quantization_params,
// SymmetricQuantFunction). Derivation: docs/quantizers.md#symmetric.
//
//   at::Tensor bits = at::full({w.size(0)}, 4, at::kInt);   // per output channel, as HAWQ-V3
//   at::Tensor q = SymmetricQuantize(w, bits);                // differentiable (STE)
//
// SymmetricQuantize: mid-tread uniform quantization with n = 2^(B-1) - 1 positive
// levels and scale s = max(max|w|, 1e-8)/n per group: q = clamp(round(w (1/s)), -n - 1,
// n) s. The lower clamp never binds (|w| <= n s), so a group uses 2n + 1 levels with an
// exact zero. B in 2..16 per group; 32 passes the group through. Backward: identity
// (the authors' forward divides by s and their dequantization multiplies it back).
//
// [1] Z. Yao, Z. Dong et al., "HAWQ-V3: Dyadic Neural Network Quantization", ICML 2021.
#pragma once

#include <ATen/core/Tensor.h>

namespace mpq::quant {

inline constexpr int64_t kSymmetricMinBits = 2;
inline constexpr int64_t kSymmetricMaxBits = 16;

// w: float32, any shape; bits: integer tensor with 1 (per tensor) or w.size(0) (per
// output channel) values.
at::Tensor SymmetricQuantize(const at::Tensor& w, const at::Tensor& bits);

}  // namespace mpq::quant
