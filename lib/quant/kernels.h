// kernels.h — the fused fake-quantization kernels behind lib/quant, as a table of
// plain functions over contiguous float32 data laid out as [groups, group_size].
//
// A "group" shares one bit-width and one set of quantizer parameters: groups = 1 for
// per-tensor (network/layer granularity), groups = C_out for per-output-channel
// (kernel granularity). Each forward kernel reads the input once from memory (a
// per-group reduction such as max|w| runs on cache-resident chunks or, for per-tensor
// data, is one extra read-only pass), writes the output once, and reports non-finite
// input. Backward kernels make one pass and fuse the reductions for learned parameters.
//
// The table is compiled three times from kernels_impl.h (AVX-512 F/DQ/VL/BW, AVX2+FMA
// and generic x86-64) and CpuKernels() picks the widest the CPU supports at first use,
// as ATen's DispatchStub does. Formulas and gradients: docs/quantizers.md.
//
//   const KernelTable& k = CpuKernels();
//   k.lin_forward(w, bits, groups, group_size, out, scale);
#pragma once

#include <cstdint>

namespace mpq::quant {

// Bits value meaning "full precision": the group is passed through unchanged.
inline constexpr int32_t kFullPrecisionBits = 32;

struct KernelTable {
  const char* isa;  // "avx512", "avx2" or "generic"

  // Every forward returns false when the input holds a NaN or an Inf.

  // IMPQ "Lin": s = 2 max|w|, L = 2^B, q = (clamp(round(w L/s - 1/2), -L/2, L/2 - 1) + 1/2) s/L.
  bool (*lin_forward)(const float* w, const int32_t* bits, int64_t groups, int64_t group_size, float* out,
                      float* scale);

  // DoReFa weights: B = 1: sign(w) mean|w|; B > 1: t = tanh(w), M = max|t|,
  // 2 round((t/(2M) + 1/2) n)/n - 1 with n = 2^B - 1 (M = tanh(max|w|)). Stores per
  // group max|w| (B > 1) or mean|w| (B = 1) in `stat`, which the backward takes back.
  bool (*dorefa_weight_forward)(const float* w, const int32_t* bits, int64_t groups, int64_t group_size,
                                float* out, float* stat);
  // Exact gradient of the B > 1 branch including the path through M (split evenly over
  // tied maxima, as torch's max does); identity (STE) for B = 1 and full precision.
  void (*dorefa_weight_backward)(const float* w, const float* grad, const int32_t* bits, const float* stat,
                                 int64_t groups, int64_t group_size, float* grad_w);

  // DoReFa activations: round(clamp(x, 0, 1) n)/n; gradient g [0 <= x <= 1].
  bool (*dorefa_act_forward)(const float* x, int32_t bits, int64_t n, float* out);
  void (*dorefa_act_backward)(const float* x, const float* grad, int64_t n, float* grad_x);

  // PACT: round(clamp(x, 0, a) n/a) a/n; gradients g [0 <= x < a] and sum g [x >= a].
  bool (*pact_forward)(const float* x, float alpha, int32_t bits, int64_t n, float* out);
  void (*pact_backward)(const float* x, const float* grad, float alpha, int64_t n, float* grad_x,
                        double* grad_alpha);

  // LSQ: round(clamp(v/s, -qn, qp)) s per group; gradients g [-qn <= v/s <= qp] and,
  // per group, sum g * (round(v/s) - v/s | -qn | qp) (the caller applies the 1/sqrt(N qp) scale).
  bool (*lsq_forward)(const float* v, const float* step, int64_t groups, int64_t group_size, float qn, float qp,
                      float* out);
  void (*lsq_backward)(const float* v, const float* grad, const float* step, int64_t groups, int64_t group_size,
                       float qn, float qp, float* grad_v, double* grad_step);

  // HWGQ weights (EdMIPS): step = c[B] std(w) (unbiased, per group),
  // clamp((round(w/step + 1/2) - 1/2) step, +-(2^B/2 - 1/2) step). Stores step. Identity backward.
  bool (*hwgq_weight_forward)(const float* w, const int32_t* bits, const float* step_coefficient, int64_t groups,
                              int64_t group_size, float* out, float* step);
  // HWGQ activations: round(clamp(x, 0, step (2^B - 1))/step) step; gradient g [0 <= x <= thr].
  bool (*hwgq_act_forward)(const float* x, float step, int32_t bits, int64_t n, float* out);
  void (*hwgq_act_backward)(const float* x, const float* grad, float step, int32_t bits, int64_t n, float* grad_x);

  // Uhlich et al. uniform: d round(clamp(x, xmin, qmax)/d), xmin = -qmax (signed) or 0.
  // Gradients: g [xmin <= x <= qmax]; per group sum g (round(c/d) - c/d) for d and
  // sum g ([x > qmax] - [x < -qmax]) for qmax.
  bool (*uhlich_uniform_forward)(const float* x, const float* d, const float* qmax, int64_t groups,
                                 int64_t group_size, bool is_signed, float* out);
  void (*uhlich_uniform_backward)(const float* x, const float* grad, const float* d, const float* qmax,
                                  int64_t groups, int64_t group_size, bool is_signed, float* grad_x,
                                  double* grad_d, double* grad_qmax);

  // Uhlich et al. power-of-two: p = 2^round(log2|x|), m = xmax if p >= xmax, xmin if
  // p < xmin, else p; output sign(x) m, or 0 where with_zero and |x| < xmin/sqrt(2). Unsigned:
  // x <= 0 gives 0 (with_zero) or xmin. Gradients: g except where m was clipped to xmax
  // (STE); sum g sign(x) over the elements clipped to xmax (for xmax) and raised to
  // xmin (for xmin).
  bool (*uhlich_pow2_forward)(const float* x, const float* xmin, const float* xmax, int64_t groups,
                              int64_t group_size, bool is_signed, bool with_zero, float* out);
  void (*uhlich_pow2_backward)(const float* x, const float* grad, const float* xmin, const float* xmax,
                               int64_t groups, int64_t group_size, bool is_signed, bool with_zero, float* grad_x,
                               double* grad_xmin, double* grad_xmax);

  // HAWQ-V3 symmetric weights: n = 2^(B-1) - 1, s = max(max|w|, 1e-8)/n per group,
  // q = clamp(round(w (1/s)), -n - 1, n) s. B in 2..16 or 32 (pass-through). Stores s.
  // Identity backward (the authors' STE).
  bool (*symmetric_forward)(const float* w, const int32_t* bits, int64_t groups, int64_t group_size, float* out,
                            float* scale);

  // FracBits / BitPruning weights (real-valued bits b per group, 2 <= b <= 16; b >= 32
  // passes the group through): lo = floor(b), f = b - lo, M = max(max|w|, 1e-8),
  // n_k = 2^(k-1) - 1, Q_k = clamp(round(w (n_k/M)), -n_k - 1, n_k) (M/n_k) (HAWQ-V3's
  // symmetric quantizer at k bits), out = (1 - f) Q_lo + f Q_(lo+1); only Q_lo when f = 0.
  // Stores M per group.
  bool (*fracbits_weight_forward)(const float* w, const float* b, int64_t groups, int64_t group_size, float* out,
                                  float* max_abs);
  // Per group sum g (Q_(lo+1) - Q_lo): the derivative in b (the weight gradient is the
  // identity, the caller's). 0 for pass-through groups.
  void (*fracbits_weight_backward)(const float* w, const float* grad, const float* b, const float* max_abs,
                                   int64_t groups, int64_t group_size, double* grad_b);
  // FracBits activations (unsigned, PACT clip a, 1 <= b <= 16): n_k = 2^k - 1,
  // Q_k = round(clamp(x, 0, a) (n_k/a)) (a/n_k), out = (1 - f) Q_lo + f Q_(lo+1).
  bool (*fracbits_act_forward)(const float* x, float b, float alpha, int64_t n, float* out);
  // grad_x = g [0 <= x < a]; grad_alpha = sum g [x >= a] (PACT); grad_b = sum g (Q_(lo+1) - Q_lo).
  void (*fracbits_act_backward)(const float* x, const float* grad, float b, float alpha, int64_t n, float* grad_x,
                                double* grad_alpha, double* grad_b);
};

// The kernels for this CPU (AVX2+FMA when available, else generic).
const KernelTable& CpuKernels();

// Both tables, for tests that check they agree.
const KernelTable& GenericKernels();
// nullptr when the CPU lacks AVX2/FMA.
const KernelTable* Avx2KernelsIfSupported();
const KernelTable* Avx512KernelsIfSupported();

}  // namespace mpq::quant
