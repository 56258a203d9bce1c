#include "lib/quant/op_chain.h"

#include <ATen/ATen.h>

#include <vector>

#include "lib/quant/hwgq_tables.h"
#include "lib/quant/kernels.h"

namespace mpq::quant::op_chain {
namespace {

// [G, rest] view with per-group parameters shaped [G, 1] (G = 1 for per-tensor).
at::Tensor Grouped(const at::Tensor& x, int64_t groups) { return x.reshape({groups, -1}); }
at::Tensor Column(const at::Tensor& p, const at::Tensor& like) {
  return p.reshape({-1, 1}).to(like.device(), like.scalar_type());
}
at::Tensor RoundSte(const at::Tensor& x) { return x + (x.round() - x).detach(); }
at::Tensor Ste(const at::Tensor& x, const at::Tensor& q) { return x + (q - x).detach(); }
at::Tensor FullPrecisionMask(const at::Tensor& bits, const at::Tensor& like) {
  return Column(bits, like).ge(kFullPrecisionBits);
}

}  // namespace

at::Tensor Lin(const at::Tensor& w, const at::Tensor& bits) {
  const at::Tensor w2 = Grouped(w, bits.numel());
  const at::Tensor levels = at::pow(2.0, Column(bits, w2).clamp_max(30));
  const at::Tensor s = 2 * w2.detach().abs().amax(1, true);
  const at::Tensor safe_s = at::where(s > 0, s, at::ones_like(s));
  at::Tensor index = at::round(w2.detach() / safe_s * levels - 0.5);
  index = at::clamp(index, -levels / 2, levels / 2 - 1);
  at::Tensor q = (index + 0.5) / levels * s;
  q = at::where(FullPrecisionMask(bits, w2), w2.detach(), q);
  return Ste(w2, q).reshape(w.sizes());
}

at::Tensor Symmetric(const at::Tensor& w, const at::Tensor& bits) {
  const at::Tensor w2 = Grouped(w, bits.numel());
  const at::Tensor n = at::pow(2.0, Column(bits, w2).clamp_max(30) - 1) - 1;
  const at::Tensor s = w2.detach().abs().amax(1, true).clamp_min(1e-8) / n;
  at::Tensor q = at::clamp(at::round(w2.detach() * s.reciprocal()), -n - 1, n) * s;
  q = at::where(FullPrecisionMask(bits, w2), w2.detach(), q);
  return Ste(w2, q).reshape(w.sizes());
}

at::Tensor DorefaWeight(const at::Tensor& w, const at::Tensor& bits) {
  const at::Tensor w2 = Grouped(w, bits.numel());
  const at::Tensor b = Column(bits, w2);
  const at::Tensor n = at::pow(2.0, b.clamp_max(30)) - 1;
  const at::Tensor t = at::tanh(w2);
  const at::Tensor m = t.abs().amax(1, true);
  const at::Tensor safe_m = at::where(m > 0, m, at::ones_like(m));
  at::Tensor multi = 2 * RoundSte((t / (2 * safe_m) + 0.5) * n) / n - 1;
  multi = at::where(m > 0, multi, at::zeros_like(multi));
  const at::Tensor binary = Ste(w2, at::sign(w2.detach()) * w2.detach().abs().mean(1, true));
  at::Tensor q = at::where(b == 1, binary, multi);
  q = at::where(b >= kFullPrecisionBits, w2, q);
  return q.reshape(w.sizes());
}

at::Tensor DorefaActivation(const at::Tensor& x, int64_t bits) {
  const double n = static_cast<double>((int64_t{1} << bits) - 1);
  return RoundSte(at::clamp(x, 0.0, 1.0) * n) / n;
}

at::Tensor Pact(const at::Tensor& x, const at::Tensor& alpha, int64_t bits) {
  const double n = static_cast<double>((int64_t{1} << bits) - 1);
  const at::Tensor a = alpha.reshape({}).to(x.device());
  // PACT's gradients (Choi et al. 2018, eq. 3): dx = g [0 <= x < a], da = sum g [x >= a].
  const at::Tensor inside = (x >= 0) & (x < a);
  const at::Tensor y = at::where(inside, x, at::zeros_like(x)) + at::where(x >= a, a.expand_as(x), at::zeros_like(x));
  const at::Tensor q = at::round(y.detach() * n / a.detach()) * a.detach() / n;
  return y + (q - y).detach();
}

at::Tensor Lsq(const at::Tensor& v, const at::Tensor& step, int64_t bits, bool is_signed, double grad_scale) {
  const double qn = is_signed ? static_cast<double>(int64_t{1} << (bits - 1)) : 0.0;
  const double qp = is_signed ? static_cast<double>((int64_t{1} << (bits - 1)) - 1)
                              : static_cast<double>((int64_t{1} << bits) - 1);
  const at::Tensor v2 = Grouped(v, step.numel());
  at::Tensor s = Column(step, v2);
  s = (s - s * grad_scale).detach() + s * grad_scale;  // LSQ's gradient scaling
  return (RoundSte(at::clamp(v2 / s, -qn, qp)) * s).reshape(v.sizes());
}

at::Tensor HwgqWeight(const at::Tensor& w, const at::Tensor& bits) {
  const at::Tensor w2 = Grouped(w, bits.numel());
  const at::Tensor b = Column(bits, w2);
  std::vector<float> coefficients;
  const at::Tensor bits_cpu = bits.to(at::kCPU).to(at::kInt).contiguous();
  for (int64_t i = 0; i < bits_cpu.numel(); ++i) coefficients.push_back(HwgqWeightCoefficient(bits_cpu.data_ptr<int32_t>()[i]));
  const at::Tensor c = at::tensor(coefficients).reshape({-1, 1}).to(w2.device());
  const at::Tensor step = c * w2.detach().std(1, /*unbiased=*/true, /*keepdim=*/true);
  const at::Tensor safe = at::where(step > 0, step, at::ones_like(step));
  const at::Tensor thr = (at::pow(2.0, b.clamp_max(30)) / 2 - 0.5) * step;
  at::Tensor q = at::clamp((at::round(w2.detach() / safe + 0.5) - 0.5) * step, -thr, thr);
  q = at::where(step > 0, q, at::zeros_like(q));
  q = at::where(b >= kFullPrecisionBits, w2.detach(), q);
  return Ste(w2, q).reshape(w.sizes());
}

at::Tensor HwgqActivation(const at::Tensor& x, int64_t bits) {
  const double step = HwgqActivationStep(bits);
  const at::Tensor y = at::clamp(x, 0.0, step * static_cast<double>((int64_t{1} << bits) - 1));
  return Ste(y, at::round(y.detach() / step) * step);
}

at::Tensor UhlichUniform(const at::Tensor& x, const at::Tensor& d, const at::Tensor& qmax, bool is_signed) {
  const at::Tensor x2 = Grouped(x, d.numel());
  const at::Tensor q = Column(qmax, x2);
  const at::Tensor c = at::minimum(at::maximum(x2, is_signed ? -q : at::zeros_like(q)), q);
  const at::Tensor dd = Column(d, x2);
  return (dd * RoundSte(c / dd)).reshape(x.sizes());
}

at::Tensor UhlichPow2(const at::Tensor& x, const at::Tensor& xmin, const at::Tensor& xmax, bool is_signed,
                      bool with_zero) {
  const at::Tensor x2 = Grouped(x, xmin.numel());
  const at::Tensor lo = Column(xmin, x2), hi = Column(xmax, x2);
  const at::Tensor xd = x2.detach();
  const at::Tensor a = is_signed ? xd.abs() : xd.clamp_min(0);
  const at::Tensor p = at::where(a > 0, at::exp2(at::round(at::log2(a))), at::zeros_like(a));
  const at::Tensor top = p >= hi.detach(), raised = (p < lo.detach()) & ~top;
  // m: p inside, xmax (differentiable) where clipped, xmin (differentiable) where raised.
  at::Tensor m = at::where(top, hi.expand_as(p), at::where(raised, lo.expand_as(p), p));
  at::Tensor zero = with_zero ? (a < 0.70710678118654752 * lo.detach()) : at::zeros_like(top);  // xmin / sqrt 2
  if (!is_signed) zero = zero | (with_zero ? (xd <= 0) : at::zeros_like(top));
  const at::Tensor sign = is_signed ? at::where(xd < 0, -at::ones_like(xd), at::ones_like(xd)) : at::ones_like(xd);
  at::Tensor y = at::where(zero, at::zeros_like(m), sign * m);
  // STE for x: identity except where clipped to xmax (and where unsigned x <= 0).
  at::Tensor pass = ~top;
  if (!is_signed) pass = pass & (xd > 0);
  y = y + at::where(pass, x2 - xd, at::zeros_like(xd));
  return y.reshape(x.sizes());
}

at::Tensor FracBitsWeight(const at::Tensor& w, const at::Tensor& bits) {
  const at::Tensor w2 = Grouped(w, bits.numel());
  const at::Tensor b = Column(bits, w2);
  const at::Tensor full = b.detach() >= kFullPrecisionBits;
  const at::Tensor bq = at::where(full, at::full_like(b, 8), b);  // any valid bits: the group passes through
  const at::Tensor lo = bq.detach().floor(), f = bq - lo;           // the gradient reaches b through f
  const at::Tensor m = w2.detach().abs().amax(1, true).clamp_min(1e-8);
  auto level = [&](const at::Tensor& k) {
    const at::Tensor n = at::pow(2.0, k - 1) - 1;
    const at::Tensor s = m / n;
    return at::clamp(at::round(w2.detach() * s.reciprocal()), -n - 1, n) * s;
  };
  const at::Tensor q = (1 - f) * level(lo) + f * level(lo + 1);
  return at::where(full, w2, w2 - w2.detach() + q).reshape(w.sizes());
}

at::Tensor FracBitsActivation(const at::Tensor& x, const at::Tensor& bits, const at::Tensor& alpha) {
  const at::Tensor a = alpha.reshape({}).to(x.device());
  const at::Tensor b = bits.reshape({}).to(x.device(), x.scalar_type());
  const at::Tensor lo = b.detach().floor(), f = b - lo;
  // PACT's gradient paths (as Pact above): x inside [0, a), a above it.
  const at::Tensor inside = (x >= 0) & (x < a);
  const at::Tensor y = at::where(inside, x, at::zeros_like(x)) + at::where(x >= a, a.expand_as(x), at::zeros_like(x));
  const at::Tensor yd = y.detach(), ad = a.detach();
  auto level = [&](const at::Tensor& k) {
    const at::Tensor n = at::pow(2.0, k) - 1;
    return at::round(yd * (n / ad)) * (ad / n);
  };
  return y - yd + (1 - f) * level(lo) + f * level(lo + 1);
}

}  // namespace mpq::quant::op_chain
