// lin.h — IMPQ's "Lin" weight quantizer (Gonugondla & Shanbhag, ICASSP 2022 [1];
// utils/QuantModules.py of gsujankumar/IMPQ). Derivation: docs/quantizers.md#lin.
//
//   at::Tensor bits = at::full({w.size(0)}, 4, at::kInt);   // kernel granularity
//   at::Tensor q = LinQuantize(w, bits);                      // differentiable (STE)
//
// LinQuantize: mid-rise uniform quantization with 2^B levels per group, scale
// s = 2 max|w| over the group: q = (clamp(round(w 2^B/s - 1/2), -2^(B-1), 2^(B-1) - 1)
// + 1/2) s/2^B. B in 1..16 per group; 32 passes the group through. Backward: identity
// (BinaryConnect-style STE: the float shadow weights receive the gradient).
//
// The reference code computes round(clamp(w/s, +-(1/2 - 1e-6)) 2^B - 1/2): the same
// level for every weight while B <= 18 (docs/quantizers.md#lin).
#pragma once

#include <ATen/core/Tensor.h>

namespace mpq::quant {

inline constexpr int64_t kLinMaxBits = 16;

// w: float32, any shape; bits: integer tensor with 1 (per tensor) or w.size(0) (per
// output channel) values.
at::Tensor LinQuantize(const at::Tensor& w, const at::Tensor& bits);

}  // namespace mpq::quant
