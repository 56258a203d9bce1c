// pact.h — PACT activation quantizer (Choi et al., arXiv:1805.06085 [1]).
// Derivation: docs/quantizers.md#pact.
//
//   at::Tensor alpha = at::full({1}, 6.0).set_requires_grad(true);   // learned clip
//   at::Tensor q = PactQuantize(x, alpha, 4);
//
// PactQuantize ([1] eq. 1-3): y = clamp(x, 0, a), q = round(y n/a) a/n, n = 2^B - 1.
// Gradients as in the paper (STE for round): dx = g [0 <= x < a]; da = sum g [x >= a].
// a: one positive value (per layer). B in 1..16.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mpq::quant {

inline constexpr int64_t kPactMaxBits = 16;

at::Tensor PactQuantize(const at::Tensor& x, const at::Tensor& alpha, int64_t bits);

}  // namespace mpq::quant
