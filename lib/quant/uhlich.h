// uhlich.h — the differentiable quantizers of Uhlich et al., "Mixed Precision DNNs: All
// you need is a good parametrization", ICLR 2020 [1] (sony/ai-research-code,
// mixed-precision-dnns). Derivation: docs/quantizers.md#uhlich.
//
//   // delta_xmax ([1]'s best): learn step d and range qmax; bits follow from them.
//   at::Tensor d = at::full({1}, 0.05).set_requires_grad(true);
//   at::Tensor qmax = at::full({1}, 1.0).set_requires_grad(true);
//   at::Tensor q = UhlichUniformQuantize(w, RoundToPowerOfTwo(d), qmax, /*is_signed=*/true);
//   at::Tensor b = UhlichUniformBits(d, qmax, true);                  // for the size constraint
//
// UhlichUniformQuantize ([1] eq. 1): q = d round(clamp(x, xmin, qmax)/d), xmin = -qmax
// (signed) or 0. Gradients ([1] eq. 3-5, STE for round): dx = g [xmin <= x <= qmax];
// dd = sum g (round(c/d) - c/d) with c the clamped x; dqmax = sum g ([x > qmax] - [x < -qmax]).
//
// UhlichPow2Quantize ([1] eq. 2): p = 2^round(log2|x|), q = sign(x) clamp(p, xmin, xmax)
// (p < xmin raises to xmin, p >= xmax clips to xmax), or 0 where with_zero and
// |x| < xmin/sqrt(2) (the authors' threshold). Gradients: dx = g except where clipped to xmax (STE);
// dxmax = sum g sign(x) over clipped elements, dxmin likewise over raised ones.
//
// d, qmax, xmin, xmax: 1 value (per tensor) or x.size(0) values (per output channel).
// The three parametrizations of [1] are compositions of these functions with ordinary
// (autograd) ops on the parameters:
//   b_xmax:     UhlichUniformQuantize(x, UhlichStepFromBits(b, qmax, s), qmax, s)
//   delta_xmax: UhlichUniformQuantize(x, RoundToPowerOfTwo(d), qmax, s)
//   xmin_xmax:  UhlichPow2Quantize(x, RoundToPowerOfTwo(xmin), RoundToPowerOfTwo(xmax), s, z)
// [1]'s code also projects the parameters to their valid ranges and clips their
// gradients at every optimizer step; nothing here or in lib/train does that yet (the
// Uhlich et al. method, which needs it, is not implemented).
#pragma once

#include <ATen/core/Tensor.h>

namespace mpq::quant {

at::Tensor UhlichUniformQuantize(const at::Tensor& x, const at::Tensor& d, const at::Tensor& qmax, bool is_signed);
at::Tensor UhlichPow2Quantize(const at::Tensor& x, const at::Tensor& xmin, const at::Tensor& xmax, bool is_signed,
                              bool with_zero);

// d = qmax / (2^(round(b) - 1) - 1) signed, qmax / (2^round(b) - 1) unsigned; STE for
// round, so gradients reach b and qmax.
at::Tensor UhlichStepFromBits(const at::Tensor& b, const at::Tensor& qmax, bool is_signed);

// 2^round(log2 v) with the straight-through gradient d(2^round(log2 v))/dv = 2^round(log2 v)/v.
at::Tensor RoundToPowerOfTwo(const at::Tensor& v);

// Bits the learned parameters imply ([1] sec. 3), as an int32 tensor shaped like d:
// uniform ceil(log2(qmax/d + 1) + 1) signed, ceil(log2(qmax/d + 1)) unsigned;
// pow2 ceil(log2(log2(xmax/xmin) + 1) + 1).
at::Tensor UhlichUniformBits(const at::Tensor& d, const at::Tensor& qmax, bool is_signed);
at::Tensor UhlichPow2Bits(const at::Tensor& xmin, const at::Tensor& xmax);

}  // namespace mpq::quant
