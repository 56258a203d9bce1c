// fracbits.h — quantizers with real-valued bit-widths, differentiable in the bits: the
// interpolation of FracBits (Yang & Jin, AAAI 2021 [1]; NNCF's experimental FracBits
// quantizer) that BitPruning (Nikolic et al., 2020 [2]) learns bitlengths with.
// Derivation and choices: docs/quantizers.md#fracbits, docs/bitpruning.md.
//
//   at::Tensor b = at::full({w.size(0)}, 6.0).set_requires_grad(true);   // per output channel
//   at::Tensor q = FracBitsQuantizeWeight(w, b);        // (1 - f) Q(w, floor b) + f Q(w, floor b + 1)
//   at::Tensor alpha = at::full({1}, 4.0).set_requires_grad(true);
//   at::Tensor y = FracBitsQuantizeActivation(x, at::full({1}, 5.5).set_requires_grad(true), alpha);
//
// With lo = floor(b) and f = b - lo, every output is (1 - f) Q_lo + f Q_(lo+1), so
// d out / d b = Q_(lo+1) - Q_lo. At integer b the output is exactly Q_b (the
// quantizer a network is deployed with once its bits are rounded and frozen).
//   Weights: Q_k = clamp(round(w (n_k/M)), -n_k - 1, n_k) (M/n_k), n_k = 2^(k-1) - 1,
//     M = max(max|w|, 1e-8) per group (HAWQ-V3's symmetric quantizer at k bits). b: 1
//     value (per tensor) or w.size(0) values (per output channel), each in [2, 16], or
//     >= 32 for a full-precision group. Weight gradient: identity (STE).
//   Activations (after a ReLU, unsigned): Q_k = round(clamp(x, 0, a) (n_k/a)) (a/n_k),
//     n_k = 2^k - 1, a a learned PACT clip; b in [1, 16]. Gradients: x g [0 <= x < a],
//     a sum g [x >= a] (PACT), b sum g (Q_(lo+1) - Q_lo).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mpq::quant {

inline constexpr double kFracBitsMinWeightBits = 2, kFracBitsMinActBits = 1, kFracBitsMaxBits = 16;

at::Tensor FracBitsQuantizeWeight(const at::Tensor& w, const at::Tensor& bits);
at::Tensor FracBitsQuantizeActivation(const at::Tensor& x, const at::Tensor& bits, const at::Tensor& alpha);

}  // namespace mpq::quant
