// dorefa.h — DoReFa-Net quantizers (Zhou et al., arXiv:1606.06160 [1]).
// Derivation: docs/quantizers.md#dorefa.
//
//   at::Tensor qw = DorefaQuantizeWeight(w, at::full({1}, 2, at::kInt));
//   at::Tensor qa = DorefaQuantizeActivation(x, 4);
//
// DorefaQuantizeWeight, B >= 2 ([1] eq. 9): t = tanh(w), M = max|t| over the group,
// q = 2 round_n(t/(2M) + 1/2) - 1 with round_n(u) = round(u n)/n, n = 2^B - 1. The
// gradient is exact through tanh and M (M's gradient is split evenly over tied maxima,
// as torch's max does), with STE for round. B = 1 ([1] sec. 2.3): q = sign(w) E|w|,
// gradient identity. All-zero groups give 0. B in 1..16 or 32 (pass-through).
//
// DorefaQuantizeActivation ([1] eq. 10): round_n(clamp(x, 0, 1)), gradient g [0 <= x <= 1].
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mpq::quant {

inline constexpr int64_t kDorefaMaxBits = 16;

at::Tensor DorefaQuantizeWeight(const at::Tensor& w, const at::Tensor& bits);
at::Tensor DorefaQuantizeActivation(const at::Tensor& x, int64_t bits);

}  // namespace mpq::quant
