// lsq.h — Learned Step size Quantization (Esser et al., ICLR 2020 [1]).
// Derivation: docs/quantizers.md#lsq.
//
//   at::Tensor step = LsqInitialStep(w, 4, /*is_signed=*/true).set_requires_grad(true);
//   at::Tensor q = LsqQuantize(w, step, 4, true, LsqGradScale(w.numel(), 4, true));
//
// LsqQuantize ([1] eq. 1-3): q = round(clamp(v/s, -Qn, Qp)) s; signed Qn = 2^(B-1),
// Qp = 2^(B-1) - 1 (B >= 2); unsigned Qn = 0, Qp = 2^B - 1. Gradients: dv = g inside
// [-Qn, Qp] (STE), ds = grad_scale sum g (round(v/s) - v/s | -Qn | Qp). s: 1 value (per
// tensor) or v.size(0) values (per output channel), each > 0.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mpq::quant {

inline constexpr int64_t kLsqMaxBits = 16;

at::Tensor LsqQuantize(const at::Tensor& v, const at::Tensor& step, int64_t bits, bool is_signed, double grad_scale);

// [1] sec. 2.2: g = 1/sqrt(N Qp), N = elements sharing one step (weights: per group;
// activations: features per example).
double LsqGradScale(int64_t elements_per_step, int64_t bits, bool is_signed);

// [1] sec. 2.1: s0 = 2 mean|v| / sqrt(Qp), per tensor (numel 1).
at::Tensor LsqInitialStep(const at::Tensor& v, int64_t bits, bool is_signed);

}  // namespace mpq::quant
