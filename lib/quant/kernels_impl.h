// kernels_impl.h — implementation of the KernelTable (kernels.h), included once per
// instruction set by kernels_avx2.cc and kernels_generic.cc with MPQ_KERNEL_NS set to
// the namespace of that build. Not a public header.
//
// Structure of every kernel: split each group into chunks of kChunk elements, run the
// chunks in parallel (at::parallel_for, from 2^16 elements up), process a chunk with at::vec::Vectorized<float>
// plus a scalar tail, and combine per-chunk partial sums in double. Rounding is
// round-half-to-even everywhere (Vectorized::round and std::nearbyint), like torch.round.
#ifndef MPQ_KERNEL_NS
#error "define MPQ_KERNEL_NS before including kernels_impl.h"
#endif

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lib/quant/kernels.h"

namespace mpq::quant::MPQ_KERNEL_NS {
namespace {

using Vec = at::vec::Vectorized<float>;

// For the per-vector helpers called inside MapChunk's loop: GCC left
// DorefaThresholdVector<7> out of line (a call per 16 weights, 30% of the DoReFa
// MobileNet-weight forward in perf).
#define MPQ_ALWAYS_INLINE inline __attribute__((always_inline))
constexpr int64_t W = Vec::size();
constexpr int64_t kChunk = 1 << 14;  // 64 KiB of floats per task: L2-resident

// Tensors below this many elements run on the calling thread: starting LibTorch's
// OpenMP team costs more than it saves there (ResNet-20's 64x64x3x3 weight, 36864
// elements: 11-20 us per forward on two threads vs 5-10 us on one, quantizer_benchmark).
constexpr int64_t kParallelMinElements = 1 << 16;

// at::parallel_for(begin, end, grain, f), or f(begin, end) on this thread when the
// tensor (`elements`) is small. (Handing out chunks dynamically, to balance this VM's
// unequal vCPUs, measured no better: contiguous halves keep the prefetchers busy.)
template <typename F>
void ParallelFor(int64_t begin, int64_t end, int64_t grain, int64_t elements, const F& f) {
  if (elements < kParallelMinElements) {
    if (begin < end) f(begin, end);
    return;
  }
  at::parallel_for(begin, end, grain, f);
}

// Calls fn(group, begin, end, task) for every chunk of every group, in parallel.
// Small groups are batched so that one task handles at least ~kChunk elements.
template <typename F>
void ForEachChunk(int64_t groups, int64_t group_size, F&& fn) {
  const int64_t per_group = std::max<int64_t>(1, (group_size + kChunk - 1) / kChunk);
  const int64_t grain = std::max<int64_t>(1, kChunk / std::max<int64_t>(group_size, 1));
  ParallelFor(0, groups * per_group, grain, groups * group_size, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t g = t / per_group, c = t % per_group;
      fn(g, c * kChunk, std::min(group_size, (c + 1) * kChunk), t);
    }
  });
}

int64_t NumTasks(int64_t groups, int64_t group_size) {
  return groups * std::max<int64_t>(1, (group_size + kChunk - 1) / kChunk);
}

// Sums per-task partials of `width` doubles into per-group totals.
std::vector<double> CombinePartials(const std::vector<double>& partials, int64_t groups, int64_t group_size,
                                    int width) {
  const int64_t per_group = std::max<int64_t>(1, (group_size + kChunk - 1) / kChunk);
  std::vector<double> totals(groups * width, 0.0);
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t c = 0; c < per_group; ++c) {
      for (int k = 0; k < width; ++k) totals[g * width + k] += partials[(g * per_group + c) * width + k];
    }
  }
  return totals;
}

float HorizontalSum(const Vec& v) {
  float lanes[W];
  v.store(lanes);
  float s = 0;
  for (int64_t i = 0; i < W; ++i) s += lanes[i];
  return s;
}

float HorizontalMax(const Vec& v) {
  float lanes[W];
  v.store(lanes);
  float m = lanes[0];
  for (int64_t i = 1; i < W; ++i) m = std::max(m, lanes[i]);
  return m;
}

// x - x is 0 for finite x and NaN for NaN or +-Inf. OR-ing the (d != d) masks keeps the
// loop-carried dependency to one 1-cycle OR per vector (an add chain would cost 4).
struct FiniteCheck {
  Vec bad = Vec(0.0f);
  bool tail_bad = false;
  void Add(const Vec& x) {
    const Vec d = x - x;
    bad = bad | (d != d);
  }
  void Add(float x) { tail_bad |= !std::isfinite(x); }
  bool Ok() const {
    float lanes[W];
    bad.store(lanes);
    for (int64_t i = 0; i < W; ++i) {
      if (lanes[i] != 0.0f) return false;  // all-ones bits read as NaN: != 0
    }
    return !tail_bad;
  }
};

// max|x| over p[b, e). Four independent accumulators hide vmaxps latency; finiteness
// needs no extra work because at::vec::maximum propagates NaN and Inf survives a max,
// so the result is non-finite exactly when an element is.
float RangeMaxAbs(const float* p, int64_t b, int64_t e, FiniteCheck& check) {
  Vec m0(0.0f), m1(0.0f), m2(0.0f), m3(0.0f);
  int64_t i = b;
  for (; i + 4 * W <= e; i += 4 * W) {
    m0 = at::vec::maximum(m0, Vec::loadu(p + i).abs());
    m1 = at::vec::maximum(m1, Vec::loadu(p + i + W).abs());
    m2 = at::vec::maximum(m2, Vec::loadu(p + i + 2 * W).abs());
    m3 = at::vec::maximum(m3, Vec::loadu(p + i + 3 * W).abs());
  }
  for (; i + W <= e; i += W) m0 = at::vec::maximum(m0, Vec::loadu(p + i).abs());
  const Vec m = at::vec::maximum(at::vec::maximum(m0, m1), at::vec::maximum(m2, m3));
  check.Add(m);
  float ms = HorizontalMax(m);
  for (; i < e; ++i) {
    check.Add(p[i]);
    ms = std::max(ms, std::abs(p[i]));
  }
  return ms;
}

// Over p[b, e): sum and sum of squares of (x - shift), and sum of |x|. Shifting by one
// of the group's own values makes constant groups exact and avoids the cancellation
// of sum x^2 - n mean^2.
void RangeMoments(const float* p, int64_t b, int64_t e, float shift, FiniteCheck& check, double* out) {
  const Vec vshift(shift);
  Vec s0(0.0f), s1(0.0f), q0(0.0f), q1(0.0f), a0(0.0f), a1(0.0f);
  int64_t i = b;
  for (; i + 2 * W <= e; i += 2 * W) {
    const Vec v0 = Vec::loadu(p + i), v1 = Vec::loadu(p + i + W);
    const Vec c0 = v0 - vshift, c1 = v1 - vshift;
    s0 = s0 + c0;
    s1 = s1 + c1;
    q0 = at::vec::fmadd(c0, c0, q0);
    q1 = at::vec::fmadd(c1, c1, q1);
    a0 = a0 + v0.abs();
    a1 = a1 + v1.abs();
  }
  // A non-finite element makes the sum of squares non-finite (NaN or Inf).
  check.Add(q0 + q1);
  double ts = HorizontalSum(s0 + s1), tsq = HorizontalSum(q0 + q1), tsa = HorizontalSum(a0 + a1);
  for (; i < e; ++i) {
    check.Add(p[i]);
    const double c = static_cast<double>(p[i]) - shift;
    ts += c;
    tsq += c * c;
    tsa += std::abs(p[i]);
  }
  out[0] = ts;
  out[1] = tsq;
  out[2] = tsa;
}

// Per-group max|x| for groups larger than a chunk (chunked, in parallel).
std::vector<float> MaxAbsPerGroup(const float* x, int64_t groups, int64_t group_size, std::atomic<bool>& finite) {
  std::vector<double> partials(NumTasks(groups, group_size), 0.0);
  ForEachChunk(groups, group_size, [&](int64_t g, int64_t b, int64_t e, int64_t task) {
    FiniteCheck check;
    partials[task] = RangeMaxAbs(x + g * group_size, b, e, check);
    if (!check.Ok()) finite = false;
  });
  const int64_t per_group = std::max<int64_t>(1, (group_size + kChunk - 1) / kChunk);
  std::vector<float> result(groups, 0.0f);
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t c = 0; c < per_group; ++c) {
      result[g] = std::max(result[g], static_cast<float>(partials[g * per_group + c]));
    }
  }
  return result;
}

// Per-group RangeMoments (shift = the group's first element), chunked, in parallel.
std::vector<double> MomentsPerGroup(const float* x, int64_t groups, int64_t group_size, std::atomic<bool>& finite) {
  std::vector<double> partials(NumTasks(groups, group_size) * 3, 0.0);
  ForEachChunk(groups, group_size, [&](int64_t g, int64_t b, int64_t e, int64_t task) {
    FiniteCheck check;
    const float* p = x + g * group_size;
    RangeMoments(p, b, e, p[0], check, &partials[task * 3]);
    if (!check.Ok()) finite = false;
  });
  return CombinePartials(partials, groups, group_size, 3);
}

// A per-group statistic followed by an elementwise pass that uses it. Groups that fit
// in one chunk (per-channel weights) compute the statistic and apply it in the same
// task, while the group is in cache: one pass over memory. Larger groups run a chunked
// reduction first (`large_stats`), then the apply pass.
template <typename SmallStat, typename LargeStats, typename Apply>
void StatThenApply(int64_t groups, int64_t group_size, SmallStat small_stat, LargeStats large_stats, Apply apply) {
  if (group_size <= kChunk) {
    const int64_t grain = std::max<int64_t>(1, kChunk / std::max<int64_t>(group_size, 1));
    ParallelFor(0, groups, grain, groups * group_size, [&](int64_t b, int64_t e) {
      for (int64_t g = b; g < e; ++g) {
        small_stat(g);
        apply(g, 0, group_size);
      }
    });
  } else {
    large_stats();
    ForEachChunk(groups, group_size, [&](int64_t g, int64_t b, int64_t e, int64_t) { apply(g, b, e); });
  }
}

// Applies op(Vec) -> Vec to [b, e) of in, writing out; `check` sees every input.
template <typename Op>
void MapChunk(const float* in, float* out, int64_t b, int64_t e, FiniteCheck& check, Op op) {
  int64_t i = b;
  for (; i + W <= e; i += W) {
    const Vec v = Vec::loadu(in + i);
    check.Add(v);
    op(v).store(out + i);
  }
  if (i < e) {
    const Vec v = Vec::loadu(in + i, e - i);  // zero-filled lanes: finite, and not stored
    check.Add(v);
    op(v).store(out + i, e - i);
  }
}

MPQ_ALWAYS_INLINE Vec Select(const Vec& mask, const Vec& if_true, const Vec& if_false) {
  return Vec::blendv(if_false, if_true, mask);
}

MPQ_ALWAYS_INLINE Vec BitsAsVec(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return Vec(f);
}

// tanh(x) = sign(x) (1 - 2 / (exp(2|x|) + 1)): one Sleef exp instead of Sleef's
// accurate tanh, which took 44% of the DoReFa weight kernel (perf). Absolute error
// ~1e-7 (float rounding of the subtraction), far below any quantization step; exp
// overflowing to +inf gives exactly 1.
MPQ_ALWAYS_INLINE Vec FastTanh(const Vec& x) {
  const Vec a = x.abs();
  const Vec t = Vec(1.0f) - Vec(2.0f) / ((a + a).exp() + Vec(1.0f));
  return t | (x & BitsAsVec(0x80000000u));  // t >= 0: copy x's sign bit
}

// 2^round(log2 a) for finite a >= 0 without log2/exp2: a = m 2^e with m in [1, 2), and
// log2 m >= 1/2 exactly when m > sqrt(2) (sqrt(2) is not a float, so there are no
// ties), i.e. when the mantissa bits are >= 0x3504F4 (the float below sqrt(2) is
// 0x3FB504F3). Adding 0x800000 - 0x3504F4 to the bits carries into the exponent exactly
// then, and masking keeps the exponent-only float: one integer add and one and. 0 and
// denormals below 2^-126 / sqrt(2) give 0; larger denormals give 2^-126.
MPQ_ALWAYS_INLINE Vec Pow2Round(const Vec& a) {
  constexpr uint32_t kCarry = 0x800000u - 0x3504F4u, kExponent = 0x7f800000u;
#if defined(CPU_CAPABILITY_AVX512)
  const __m512i bits = _mm512_add_epi32(_mm512_castps_si512(a), _mm512_set1_epi32(static_cast<int>(kCarry)));
  return _mm512_castsi512_ps(_mm512_and_si512(bits, _mm512_set1_epi32(static_cast<int>(kExponent))));
#elif defined(CPU_CAPABILITY_AVX2)
  const __m256i bits = _mm256_add_epi32(_mm256_castps_si256(a), _mm256_set1_epi32(static_cast<int>(kCarry)));
  return _mm256_and_ps(_mm256_castsi256_ps(bits), _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(kExponent))));
#else
  float lanes[W];
  a.store(lanes);
  for (int64_t i = 0; i < W; ++i) {
    uint32_t u;
    std::memcpy(&u, &lanes[i], sizeof u);
    u = (u + kCarry) & kExponent;
    std::memcpy(&lanes[i], &u, sizeof u);
  }
  return Vec::loadu(lanes);
#endif
}

// DoReFa weights at B = 2..4 bits without tanh. With n = 2^B - 1, h = (n - 1) / 2 and
// M = tanh(max|w|), the output is sign(w) (2 f + 1) / n (w = 0 counts as positive) where
// f = floor(tanh|w| n / (2M)) = #{c in 1..h : |w| >= atanh(2 M c / n)}: tanh is monotone,
// so comparing |w| with h thresholds replaces the tanh, scale and round of eq. 9. Each
// threshold is rounded up to the next float, so `|w| >= t` holds exactly when it holds
// for the real threshold: the result is eq. 9 evaluated exactly (no float tanh error);
// only ties at exact threshold values (measure zero) could differ from round-half-even.
struct DorefaThresholds {
  int h = 0;
  float t[8] = {};          // t[c] = the boundary between f = c - 1 and f = c (c = 1..h)
  float search[5][8] = {};  // binary search step s (1, 2, 4): search[s][f] = t[f + s]
  float magnitude[8] = {};  // (2 f + 1) / n for f = 0..7
};

DorefaThresholds MakeDorefaThresholds(int32_t bits, float max_abs) {
  DorefaThresholds r;
  const double n = std::ldexp(1.0, bits) - 1.0, m = std::tanh(static_cast<double>(max_abs));
  r.h = static_cast<int>((n - 1) / 2);
  for (int c = 1; c <= r.h; ++c) {
    const double exact = std::atanh(2.0 * m * c / n);
    float f = static_cast<float>(exact);
    if (static_cast<double>(f) < exact) f = std::nextafter(f, FLT_MAX);
    r.t[c] = f;
  }
  for (int step = 1; step <= 4; step *= 2) {
    for (int f = 0; f + step <= r.h; ++f) r.search[step][f] = r.t[f + step];
  }
  for (int f = 0; f < 8; ++f) r.magnitude[f] = static_cast<float>((2.0 * f + 1.0) / n);
  return r;
}

// H = h (1, 3 or 7): f by binary search over the h boundaries, log2(h + 1) steps of
// "f += s where |w| >= t[f + s]" (AVX2: the boundary per lane by one vpermps), or by
// counting (generic build).
template <int H>
MPQ_ALWAYS_INLINE Vec DorefaThresholdVector(const Vec& v, const DorefaThresholds& th) {
  const Vec a = v.abs();
#if defined(CPU_CAPABILITY_AVX512)
  // The first two search steps choose their boundary with a mask blend (1 cycle) instead
  // of a permute; only the last step (H = 7) and the magnitude use vpermps (the 8-entry
  // tables sit in the low half of a 16-float register, indices stay < 8). The sign is
  // copied from v + 0, which turns -0 into +0 (w = 0 counts as positive), by one
  // vpternlogd: 14 instructions per 16 weights instead of 17 (perf annotate).
  const __m512 signbit = _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(0x80000000u)));
  const __m512 signed_zero_free = _mm512_add_ps(v, _mm512_setzero_ps());
  __m512 magnitude;
  if constexpr (H == 1) {
    const __mmask16 k = _mm512_cmp_ps_mask(a, _mm512_set1_ps(th.t[1]), _CMP_GE_OQ);
    magnitude = _mm512_mask_blend_ps(k, _mm512_set1_ps(th.magnitude[0]), _mm512_set1_ps(th.magnitude[1]));
  } else {
    constexpr int kFirst = (H + 1) / 2;  // 2 or 4
    const __mmask16 k_first = _mm512_cmp_ps_mask(a, _mm512_set1_ps(th.t[kFirst]), _CMP_GE_OQ);
    constexpr int kSecond = kFirst / 2;  // 1 or 2
    const __m512 boundary2 = _mm512_mask_blend_ps(k_first, _mm512_set1_ps(th.t[kSecond]),
                                                  _mm512_set1_ps(th.t[kFirst + kSecond]));
    const __mmask16 k_second = _mm512_cmp_ps_mask(a, boundary2, _CMP_GE_OQ);
    __m512i f = _mm512_maskz_mov_epi32(k_first, _mm512_set1_epi32(kFirst));
    f = _mm512_mask_add_epi32(f, k_second, f, _mm512_set1_epi32(kSecond));
    if constexpr (H == 7) {
      const __m512 boundary3 = _mm512_permutexvar_ps(f, _mm512_castps256_ps512(_mm256_loadu_ps(th.search[1])));
      f = _mm512_mask_add_epi32(f, _mm512_cmp_ps_mask(a, boundary3, _CMP_GE_OQ), f, _mm512_set1_epi32(1));
    }
    magnitude = _mm512_permutexvar_ps(f, _mm512_castps256_ps512(_mm256_loadu_ps(th.magnitude)));
  }
  // magnitude | (signed_zero_free & signbit)
  return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(magnitude),
                                                       _mm512_castps_si512(signed_zero_free),
                                                       _mm512_castps_si512(signbit), 0xF8));
#else
  const Vec sign = (v < Vec(0.0f)) & BitsAsVec(0x80000000u);
#if defined(CPU_CAPABILITY_AVX2)
  constexpr int kFirst = (H + 1) / 2;
  __m256i f = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(th.t[kFirst]), _CMP_GE_OQ)),
                               _mm256_set1_epi32(kFirst));
  for (int step = kFirst / 2; step >= 1; step /= 2) {
    const __m256 boundary = _mm256_permutevar8x32_ps(_mm256_loadu_ps(th.search[step]), f);
    f = _mm256_add_epi32(f, _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(a, boundary, _CMP_GE_OQ)),
                                             _mm256_set1_epi32(step)));
  }
  const Vec magnitude = _mm256_permutevar8x32_ps(_mm256_loadu_ps(th.magnitude), f);
#else
  Vec count(0.0f);
  for (int c = 1; c <= H; ++c) count = count + ((a >= Vec(th.t[c])) & Vec(1.0f));
  const Vec magnitude = at::vec::fmadd(count, Vec(th.magnitude[1] - th.magnitude[0]), Vec(th.magnitude[0]));
#endif
  return magnitude | sign;
#endif
}

// ---------------------------------------------------------------- Lin (IMPQ)

bool LinForward(const float* w, const int32_t* bits, int64_t groups, int64_t group_size, float* out,
                float* scale) {
  std::atomic<bool> finite{true};
  auto small_stat = [&](int64_t g) {
    FiniteCheck check;
    scale[g] = 2.0f * RangeMaxAbs(w + g * group_size, 0, group_size, check);
    if (!check.Ok()) finite = false;
  };
  auto large_stats = [&] {
    const std::vector<float> max_abs = MaxAbsPerGroup(w, groups, group_size, finite);
    for (int64_t g = 0; g < groups; ++g) scale[g] = 2.0f * max_abs[g];
  };
  auto apply = [&](int64_t g, int64_t b, int64_t e) {
    const float* in = w + g * group_size;
    float* o = out + g * group_size;
    const float s = scale[g];
    if (bits[g] >= kFullPrecisionBits) {
      std::memcpy(o + b, in + b, (e - b) * sizeof(float));
      return;
    }
    if (s == 0.0f) {
      std::fill(o + b, o + e, 0.0f);
      return;
    }
    const float levels = std::ldexp(1.0f, bits[g]);
    // Two fused multiply-adds: (v inv - 1/2) and (index + 1/2) step, the latter exact as
    // before since step / 2 is step scaled by a power of two.
    const Vec inv(levels / s), step(s / levels), minus_half(-0.5f), half_step(0.5f * (s / levels)),
        lo(-levels / 2), hi(levels / 2 - 1);
    FiniteCheck unused;
    MapChunk(in, o, b, e, unused, [&](const Vec& v) {
      const Vec index = at::vec::clamp(at::vec::fmadd(v, inv, minus_half).round(), lo, hi);
      return at::vec::fmadd(index, step, half_step);
    });
  };
  StatThenApply(groups, group_size, small_stat, large_stats, apply);
  return finite;
}

// ---------------------------------------------------------------- symmetric (HAWQ-V3)

bool SymmetricForward(const float* w, const int32_t* bits, int64_t groups, int64_t group_size, float* out,
                      float* scale) {
  std::atomic<bool> finite{true};
  // scale = max(max|w|, 1e-8) / n with n = 2^(B-1) - 1, in float32 as the authors'
  // symmetric_linear_quantization_params computes it.
  auto set_scale = [&](int64_t g, float max_abs) {
    const float n = bits[g] >= kFullPrecisionBits ? 1.0f : std::ldexp(1.0f, bits[g] - 1) - 1.0f;
    scale[g] = std::max(max_abs, 1e-8f) / n;
  };
  auto small_stat = [&](int64_t g) {
    FiniteCheck check;
    set_scale(g, RangeMaxAbs(w + g * group_size, 0, group_size, check));
    if (!check.Ok()) finite = false;
  };
  auto large_stats = [&] {
    const std::vector<float> max_abs = MaxAbsPerGroup(w, groups, group_size, finite);
    for (int64_t g = 0; g < groups; ++g) set_scale(g, max_abs[g]);
  };
  auto apply = [&](int64_t g, int64_t b, int64_t e) {
    const float* in = w + g * group_size;
    float* o = out + g * group_size;
    if (bits[g] >= kFullPrecisionBits) {
      std::memcpy(o + b, in + b, (e - b) * sizeof(float));
      return;
    }
    const float n = std::ldexp(1.0f, bits[g] - 1) - 1.0f;
    // round(w (1/s)) as linear_quantize does (a product by the reciprocal, not w / s).
    const Vec inv(1.0f / scale[g]), step(scale[g]), lo(-n - 1), hi(n);
    FiniteCheck unused;
    MapChunk(in, o, b, e, unused, [&](const Vec& v) { return at::vec::clamp((v * inv).round(), lo, hi) * step; });
  };
  StatThenApply(groups, group_size, small_stat, large_stats, apply);
  return finite;
}

// ---------------------------------------------------------------- DoReFa

bool DorefaWeightForward(const float* w, const int32_t* bits, int64_t groups, int64_t group_size, float* out,
                         float* stat) {
  std::atomic<bool> finite{true};
  auto small_stat = [&](int64_t g) {
    FiniteCheck check;
    const float* p = w + g * group_size;
    if (bits[g] == 1) {
      double moments[3];
      RangeMoments(p, 0, group_size, p[0], check, moments);
      stat[g] = static_cast<float>(moments[2] / group_size);
    } else {
      stat[g] = RangeMaxAbs(p, 0, group_size, check);
    }
    if (!check.Ok()) finite = false;
  };
  auto large_stats = [&] {
    const std::vector<float> max_abs = MaxAbsPerGroup(w, groups, group_size, finite);
    std::vector<double> moments;
    if (std::any_of(bits, bits + groups, [](int32_t b) { return b == 1; })) {
      moments = MomentsPerGroup(w, groups, group_size, finite);
    }
    for (int64_t g = 0; g < groups; ++g) {
      stat[g] = bits[g] == 1 ? static_cast<float>(moments[g * 3 + 2] / group_size) : max_abs[g];
    }
  };
  auto apply = [&](int64_t g, int64_t b, int64_t e) {
    const float* in = w + g * group_size;
    float* o = out + g * group_size;
    FiniteCheck unused;
    if (bits[g] >= kFullPrecisionBits) {
      std::memcpy(o + b, in + b, (e - b) * sizeof(float));
    } else if (bits[g] == 1) {
      const Vec mean_abs(stat[g]), zero(0.0f);
      MapChunk(in, o, b, e, unused, [&](const Vec& v) {
        return Select(v > zero, mean_abs, Select(v < zero, zero - mean_abs, zero));
      });
    } else if (stat[g] == 0.0f) {
      std::fill(o + b, o + e, 0.0f);
    } else if (bits[g] <= 4) {
      const DorefaThresholds th = MakeDorefaThresholds(bits[g], stat[g]);
      if (th.h == 1) {
        MapChunk(in, o, b, e, unused, [&](const Vec& v) { return DorefaThresholdVector<1>(v, th); });
      } else if (th.h == 3) {
        MapChunk(in, o, b, e, unused, [&](const Vec& v) { return DorefaThresholdVector<3>(v, th); });
      } else {
        MapChunk(in, o, b, e, unused, [&](const Vec& v) { return DorefaThresholdVector<7>(v, th); });
      }
    } else {
      const float n = std::ldexp(1.0f, bits[g]) - 1.0f;
      const float m = std::tanh(stat[g]);  // max|tanh(w)| = tanh(max|w|)
      const Vec a(n / (2.0f * m)), half_n(n / 2.0f), two_over_n(2.0f / n);
      MapChunk(in, o, b, e, unused, [&](const Vec& v) {
        return at::vec::fmadd(at::vec::fmadd(FastTanh(v), a, half_n).round(), two_over_n, Vec(-1.0f));
      });
    }
  };
  StatThenApply(groups, group_size, small_stat, large_stats, apply);
  return finite;
}

void DorefaWeightBackward(const float* w, const float* grad, const int32_t* bits, const float* stat, int64_t groups,
                          int64_t group_size, float* grad_w) {
  // Partials: sum g t per task, and the indices of elements at the maximum |w|.
  const int64_t tasks = NumTasks(groups, group_size);
  std::vector<double> sum_gt(tasks, 0.0);
  std::vector<std::vector<int64_t>> ties(tasks);
  ForEachChunk(groups, group_size, [&](int64_t g, int64_t b, int64_t e, int64_t task) {
    const float* in = w + g * group_size;
    const float* gr = grad + g * group_size;
    float* o = grad_w + g * group_size;
    if (bits[g] >= kFullPrecisionBits || bits[g] == 1 || stat[g] == 0.0f) {
      if (bits[g] == 1 || bits[g] >= kFullPrecisionBits) {
        std::memcpy(o + b, gr + b, (e - b) * sizeof(float));
      } else {
        std::fill(o + b, o + e, 0.0f);
      }
      return;
    }
    const float inv_m = 1.0f / std::tanh(stat[g]);
    const Vec vinv(inv_m), one(1.0f);
    Vec acc(0.0f);
    int64_t i = b;
    for (; i + W <= e; i += W) {
      const Vec t = FastTanh(Vec::loadu(in + i));
      const Vec gv = Vec::loadu(gr + i);
      acc = at::vec::fmadd(gv, t, acc);
      (gv * vinv * (one - t * t)).store(o + i);
    }
    double s = HorizontalSum(acc);
    for (; i < e; ++i) {
      const float t = std::tanh(in[i]);
      s += static_cast<double>(gr[i]) * t;
      o[i] = gr[i] * inv_m * (1.0f - t * t);
    }
    for (int64_t k = b; k < e; ++k) {
      if (std::abs(in[k]) == stat[g]) ties[task].push_back(k);
    }
    sum_gt[task] = s;
  });
  // d/dM of sum_i g_i t_i/M = -sum g t / M^2, routed to the tied maxima evenly.
  const std::vector<double> totals = CombinePartials(sum_gt, groups, group_size, 1);
  const int64_t per_group = std::max<int64_t>(1, (group_size + kChunk - 1) / kChunk);
  for (int64_t g = 0; g < groups; ++g) {
    if (bits[g] == 1 || bits[g] >= kFullPrecisionBits || stat[g] == 0.0f) continue;
    std::vector<int64_t> tied;
    for (int64_t c = 0; c < per_group; ++c) {
      const auto& t = ties[g * per_group + c];
      tied.insert(tied.end(), t.begin(), t.end());
    }
    const double m = std::tanh(static_cast<double>(stat[g]));
    for (int64_t k : tied) {
      const float t = std::tanh(w[g * group_size + k]);
      const double sign = t > 0 ? 1.0 : (t < 0 ? -1.0 : 0.0);
      grad_w[g * group_size + k] -=
          static_cast<float>(totals[g] / (m * m) * sign * (1.0 - static_cast<double>(t) * t) / tied.size());
    }
  }
}

bool DorefaActForward(const float* x, int32_t bits, int64_t n, float* out) {
  std::atomic<bool> finite{true};
  const float levels = std::ldexp(1.0f, bits) - 1.0f;
  const Vec vl(levels), inv(1.0f / levels), zero(0.0f), one(1.0f);
  ForEachChunk(1, n, [&](int64_t, int64_t b, int64_t e, int64_t) {
    FiniteCheck check;
    MapChunk(x, out, b, e, check, [&](const Vec& v) { return (at::vec::clamp(v, zero, one) * vl).round() * inv; });
    if (!check.Ok()) finite = false;
  });
  return finite;
}

void DorefaActBackward(const float* x, const float* grad, int64_t n, float* grad_x) {
  const Vec zero(0.0f), one(1.0f);
  ForEachChunk(1, n, [&](int64_t, int64_t b, int64_t e, int64_t) {
    int64_t i = b;
    for (; i + W <= e; i += W) {
      const Vec v = Vec::loadu(x + i);
      (Vec::loadu(grad + i) & ((v >= zero) & (v <= one))).store(grad_x + i);
    }
    for (; i < e; ++i) grad_x[i] = (x[i] >= 0.0f && x[i] <= 1.0f) ? grad[i] : 0.0f;
  });
}

// ---------------------------------------------------------------- PACT

bool PactForward(const float* x, float alpha, int32_t bits, int64_t n, float* out) {
  std::atomic<bool> finite{true};
  const float levels = std::ldexp(1.0f, bits) - 1.0f;
  const Vec scale(levels / alpha), step(alpha / levels), zero(0.0f), a(alpha);
  ForEachChunk(1, n, [&](int64_t, int64_t b, int64_t e, int64_t) {
    FiniteCheck check;
    MapChunk(x, out, b, e, check, [&](const Vec& v) { return (at::vec::clamp(v, zero, a) * scale).round() * step; });
    if (!check.Ok()) finite = false;
  });
  return finite;
}

void PactBackward(const float* x, const float* grad, float alpha, int64_t n, float* grad_x, double* grad_alpha) {
  std::vector<double> partials(NumTasks(1, n), 0.0);
  const Vec zero(0.0f), a(alpha);
  ForEachChunk(1, n, [&](int64_t, int64_t b, int64_t e, int64_t task) {
    Vec acc(0.0f);
    int64_t i = b;
    for (; i + W <= e; i += W) {
      const Vec v = Vec::loadu(x + i), g = Vec::loadu(grad + i);
      (g & ((v >= zero) & (v < a))).store(grad_x + i);
      acc = acc + (g & (v >= a));
    }
    double s = HorizontalSum(acc);
    for (; i < e; ++i) {
      grad_x[i] = (x[i] >= 0.0f && x[i] < alpha) ? grad[i] : 0.0f;
      if (x[i] >= alpha) s += grad[i];
    }
    partials[task] = s;
  });
  *grad_alpha = CombinePartials(partials, 1, n, 1)[0];
}

// ---------------------------------------------------------------- LSQ

bool LsqForward(const float* v, const float* step, int64_t groups, int64_t group_size, float qn, float qp,
                float* out) {
  std::atomic<bool> finite{true};
  ForEachChunk(groups, group_size, [&](int64_t g, int64_t b, int64_t e, int64_t) {
    const Vec inv(1.0f / step[g]), s(step[g]), lo(-qn), hi(qp);
    FiniteCheck check;
    MapChunk(v + g * group_size, out + g * group_size, b, e, check,
             [&](const Vec& x) { return at::vec::clamp(x * inv, lo, hi).round() * s; });
    if (!check.Ok()) finite = false;
  });
  return finite;
}

void LsqBackward(const float* v, const float* grad, const float* step, int64_t groups, int64_t group_size, float qn,
                 float qp, float* grad_v, double* grad_step) {
  std::vector<double> partials(NumTasks(groups, group_size), 0.0);
  ForEachChunk(groups, group_size, [&](int64_t g, int64_t b, int64_t e, int64_t task) {
    const float* x = v + g * group_size;
    const float* gr = grad + g * group_size;
    float* o = grad_v + g * group_size;
    const float inv_s = 1.0f / step[g];
    const Vec inv(inv_s), lo(-qn), hi(qp);
    Vec acc(0.0f);
    int64_t i = b;
    for (; i + W <= e; i += W) {
      const Vec q = Vec::loadu(x + i) * inv, gv = Vec::loadu(gr + i);
      const Vec below = q < lo, above = q > hi;
      const Vec inside_term = q.round() - q;
      const Vec term = Select(below, lo, Select(above, hi, inside_term));
      acc = at::vec::fmadd(gv, term, acc);
      Vec::blendv(gv, Vec(0.0f), below | above).store(o + i);
    }
    double s = HorizontalSum(acc);
    for (; i < e; ++i) {
      const float q = x[i] * inv_s;
      const bool below = q < -qn, above = q > qp;
      const float term = below ? -qn : (above ? qp : std::nearbyint(q) - q);
      s += static_cast<double>(gr[i]) * term;
      o[i] = (below || above) ? 0.0f : gr[i];
    }
    partials[task] = s;
  });
  const std::vector<double> totals = CombinePartials(partials, groups, group_size, 1);
  std::copy(totals.begin(), totals.end(), grad_step);
}

// ---------------------------------------------------------------- HWGQ (EdMIPS)

bool HwgqWeightForward(const float* w, const int32_t* bits, const float* step_coefficient, int64_t groups,
                       int64_t group_size, float* out, float* step) {
  std::atomic<bool> finite{true};
  // Unbiased std from shifted sums, times EdMIPS's coefficient.
  auto step_from = [&](int64_t g, const double* moments) {
    const double n = static_cast<double>(group_size);
    const double var = group_size > 1 ? std::max(0.0, (moments[1] - moments[0] * moments[0] / n) / (n - 1)) : 0.0;
    step[g] = bits[g] >= kFullPrecisionBits ? 0.0f : static_cast<float>(step_coefficient[g] * std::sqrt(var));
  };
  auto small_stat = [&](int64_t g) {
    FiniteCheck check;
    const float* p = w + g * group_size;
    double moments[3];
    RangeMoments(p, 0, group_size, p[0], check, moments);
    if (!check.Ok()) finite = false;
    step_from(g, moments);
  };
  auto large_stats = [&] {
    const std::vector<double> moments = MomentsPerGroup(w, groups, group_size, finite);
    for (int64_t g = 0; g < groups; ++g) step_from(g, &moments[g * 3]);
  };
  auto apply = [&](int64_t g, int64_t b, int64_t e) {
    const float* in = w + g * group_size;
    float* o = out + g * group_size;
    if (bits[g] >= kFullPrecisionBits) {
      std::memcpy(o + b, in + b, (e - b) * sizeof(float));
      return;
    }
    if (step[g] == 0.0f) {
      std::fill(o + b, o + e, 0.0f);
      return;
    }
    const float thr = (std::ldexp(1.0f, bits[g]) / 2.0f - 0.5f) * step[g];
    const Vec inv(1.0f / step[g]), s(step[g]), half(0.5f), minus_half_step(-0.5f * step[g]), lo(-thr), hi(thr);
    FiniteCheck unused;
    MapChunk(in, o, b, e, unused, [&](const Vec& v) {
      return at::vec::clamp(at::vec::fmadd(at::vec::fmadd(v, inv, half).round(), s, minus_half_step), lo, hi);
    });
  };
  StatThenApply(groups, group_size, small_stat, large_stats, apply);
  return finite;
}

bool HwgqActForward(const float* x, float step, int32_t bits, int64_t n, float* out) {
  std::atomic<bool> finite{true};
  const float thr = step * (std::ldexp(1.0f, bits) - 1.0f);
  const Vec inv(1.0f / step), s(step), zero(0.0f), hi(thr);
  ForEachChunk(1, n, [&](int64_t, int64_t b, int64_t e, int64_t) {
    FiniteCheck check;
    MapChunk(x, out, b, e, check, [&](const Vec& v) { return (at::vec::clamp(v, zero, hi) * inv).round() * s; });
    if (!check.Ok()) finite = false;
  });
  return finite;
}

void HwgqActBackward(const float* x, const float* grad, float step, int32_t bits, int64_t n, float* grad_x) {
  const float thr = step * (std::ldexp(1.0f, bits) - 1.0f);
  const Vec zero(0.0f), hi(thr);
  ForEachChunk(1, n, [&](int64_t, int64_t b, int64_t e, int64_t) {
    int64_t i = b;
    for (; i + W <= e; i += W) {
      const Vec v = Vec::loadu(x + i);
      (Vec::loadu(grad + i) & ((v >= zero) & (v <= hi))).store(grad_x + i);
    }
    for (; i < e; ++i) grad_x[i] = (x[i] >= 0.0f && x[i] <= thr) ? grad[i] : 0.0f;
  });
}

// ---------------------------------------------------------------- Uhlich et al.

bool UhlichUniformForward(const float* x, const float* d, const float* qmax, int64_t groups, int64_t group_size,
                          bool is_signed, float* out) {
  std::atomic<bool> finite{true};
  ForEachChunk(groups, group_size, [&](int64_t g, int64_t b, int64_t e, int64_t) {
    const Vec inv(1.0f / d[g]), s(d[g]), lo(is_signed ? -qmax[g] : 0.0f), hi(qmax[g]);
    FiniteCheck check;
    MapChunk(x + g * group_size, out + g * group_size, b, e, check,
             [&](const Vec& v) { return (at::vec::clamp(v, lo, hi) * inv).round() * s; });
    if (!check.Ok()) finite = false;
  });
  return finite;
}

void UhlichUniformBackward(const float* x, const float* grad, const float* d, const float* qmax, int64_t groups,
                           int64_t group_size, bool is_signed, float* grad_x, double* grad_d, double* grad_qmax) {
  std::vector<double> partials(NumTasks(groups, group_size) * 2, 0.0);
  ForEachChunk(groups, group_size, [&](int64_t g, int64_t b, int64_t e, int64_t task) {
    const float* in = x + g * group_size;
    const float* gr = grad + g * group_size;
    float* o = grad_x + g * group_size;
    const float inv_d = 1.0f / d[g], lo_s = is_signed ? -qmax[g] : 0.0f, hi_s = qmax[g];
    const Vec inv(inv_d), lo(lo_s), hi(hi_s), zero(0.0f);
    Vec acc_d(0.0f), acc_q(0.0f);
    int64_t i = b;
    for (; i + W <= e; i += W) {
      const Vec v = Vec::loadu(in + i), gv = Vec::loadu(gr + i);
      const Vec u = at::vec::clamp(v, lo, hi) * inv;
      acc_d = at::vec::fmadd(gv, u.round() - u, acc_d);
      const Vec above = v > hi, below = v < lo;
      acc_q = acc_q + (gv & above);
      if (is_signed) acc_q = acc_q - (gv & below);
      Vec::blendv(gv, zero, above | below).store(o + i);
    }
    double sd = HorizontalSum(acc_d), sq = HorizontalSum(acc_q);
    for (; i < e; ++i) {
      const float u = std::clamp(in[i], lo_s, hi_s) * inv_d;
      sd += static_cast<double>(gr[i]) * (std::nearbyint(u) - u);
      const bool above = in[i] > hi_s, below = in[i] < lo_s;
      if (above) sq += gr[i];
      if (below && is_signed) sq -= gr[i];
      o[i] = (above || below) ? 0.0f : gr[i];
    }
    partials[task * 2] = sd;
    partials[task * 2 + 1] = sq;
  });
  const std::vector<double> totals = CombinePartials(partials, groups, group_size, 2);
  for (int64_t g = 0; g < groups; ++g) {
    grad_d[g] = totals[g * 2];
    grad_qmax[g] = totals[g * 2 + 1];
  }
}

// The masks of the power-of-two quantizer's regions that the backward needs, for one
// vector; a = |x| (signed) or max(x, 0) (unsigned).
struct Pow2Masks {
  Vec raised;   // p < xmin (and not clipped or zeroed): output xmin
  Vec clipped;  // p >= xmax: output xmax
};

// With zero, magnitudes below xmin / sqrt 2 quantize to 0 (sony/ai-research-code
// parametric_quantization.py: x_threshold = x_min / sqrt(2)).
constexpr float kPow2ZeroFraction = 0.70710678118654752f;

Pow2Masks Pow2RegionMasks(const Vec& x, const Vec& xmin, const Vec& xmax, bool is_signed, bool with_zero) {
  const Vec zero(0.0f);
  const Vec a = is_signed ? x.abs() : at::vec::maximum(x, zero);
  const Vec p = Pow2Round(a);  // 0 for a = 0
  Pow2Masks r;
  r.clipped = p >= xmax;
  // Zeroed (with_zero and a < xmin / sqrt 2, as the authors' pow2 quantizer; unsigned:
  // also x <= 0) takes precedence over raised.
  Vec zeroed = with_zero ? (a < xmin * Vec(kPow2ZeroFraction)) : zero;
  if (!is_signed && with_zero) zeroed = zeroed | (x <= zero);
  r.raised = Vec::blendv(p < xmin, zero, r.clipped | zeroed);
  return r;
}

// The forward's value (the regions as in Pow2RegionMasks): Pow2Round(0) = 0, so
// "clipped to xmax where p >= xmax, else raised to xmin" is
// p >= xmax ? xmax : max(p, xmin) (also when a learned xmin exceeds xmax); then zeroing
// and the sign.
MPQ_ALWAYS_INLINE Vec Pow2Value(const Vec& x, const Vec& xmin, const Vec& xmax, const Vec& half_xmin, bool is_signed, bool with_zero) {
  const Vec zero(0.0f);
  const Vec a = is_signed ? x.abs() : at::vec::maximum(x, zero);
  const Vec p = Pow2Round(a);
  Vec value = Select(p >= xmax, xmax, at::vec::maximum(p, xmin));
  if (is_signed) value = value | (x & BitsAsVec(0x80000000u));
  if (with_zero) {
    Vec zeroed = a < half_xmin;
    if (!is_signed) zeroed = zeroed | (x <= zero);
    value = Vec::blendv(value, zero, zeroed);
  }
  return value;
}

bool UhlichPow2Forward(const float* x, const float* xmin, const float* xmax, int64_t groups, int64_t group_size,
                       bool is_signed, bool with_zero, float* out) {
  std::atomic<bool> finite{true};
  ForEachChunk(groups, group_size, [&](int64_t g, int64_t b, int64_t e, int64_t) {
    const Vec lo(xmin[g]), hi(xmax[g]), half_lo(kPow2ZeroFraction * xmin[g]);
    FiniteCheck check;
    MapChunk(x + g * group_size, out + g * group_size, b, e, check,
             [&](const Vec& v) { return Pow2Value(v, lo, hi, half_lo, is_signed, with_zero); });
    if (!check.Ok()) finite = false;
  });
  return finite;
}

void UhlichPow2Backward(const float* x, const float* grad, const float* xmin, const float* xmax, int64_t groups,
                        int64_t group_size, bool is_signed, bool with_zero, float* grad_x, double* grad_xmin,
                        double* grad_xmax) {
  std::vector<double> partials(NumTasks(groups, group_size) * 2, 0.0);
  ForEachChunk(groups, group_size, [&](int64_t g, int64_t b, int64_t e, int64_t task) {
    const Vec lo(xmin[g]), hi(xmax[g]), zero(0.0f), one(1.0f);
    const float* in = x + g * group_size;
    const float* gr = grad + g * group_size;
    float* o = grad_x + g * group_size;
    Vec acc_min(0.0f), acc_max(0.0f);
    auto step = [&](const Vec& v, const Vec& gv, Vec* dx) {
      const Pow2Masks r = Pow2RegionMasks(v, lo, hi, is_signed, with_zero);
      // sign(x) g for signed quantizers; unsigned outputs are >= 0.
      const Vec signed_g = is_signed ? (gv ^ (v & BitsAsVec(0x80000000u))) : gv;
      acc_min = acc_min + (signed_g & r.raised);
      acc_max = acc_max + (signed_g & r.clipped);
      // STE: pass g except where clipped to xmax (and, unsigned, where x <= 0).
      Vec blocked = r.clipped;
      if (!is_signed) blocked = blocked | (v <= zero);
      *dx = Vec::blendv(gv, zero, blocked);
    };
    int64_t i = b;
    for (; i + W <= e; i += W) {
      Vec dx;
      step(Vec::loadu(in + i), Vec::loadu(gr + i), &dx);
      dx.store(o + i);
    }
    if (i < e) {
      // Zero-filled tail lanes: x = 0 with g = 0 contribute nothing to the sums.
      Vec dx;
      step(Vec::loadu(in + i, e - i), Vec::loadu(gr + i, e - i), &dx);
      dx.store(o + i, e - i);
    }
    partials[task * 2] = HorizontalSum(acc_min);
    partials[task * 2 + 1] = HorizontalSum(acc_max);
  });
  const std::vector<double> totals = CombinePartials(partials, groups, group_size, 2);
  for (int64_t g = 0; g < groups; ++g) {
    grad_xmin[g] = totals[g * 2];
    grad_xmax[g] = totals[g * 2 + 1];
  }
}

// ---------------------------------------------------------------- FracBits (BitPruning)

// One k-bit level set of the interpolating quantizers: round(clamp(v * scale)) * step.
struct FracLevel {
  float scale = 1, step = 1, lo = 0, hi = 0;
};
struct FracLevels {
  FracLevel a, b;    // floor(bits) and floor(bits) + 1
  float f = 0;       // bits - floor(bits): the weight of level b
  bool pass = false;  // full precision: identity
};

// Signed symmetric levels from max|w| (HAWQ-V3's symmetric quantizer at k bits).
FracLevel SignedLevel(int k, float max_abs) {
  const float n = std::ldexp(1.0f, k - 1) - 1.0f;
  const float s = std::max(max_abs, 1e-8f) / n;
  return {1.0f / s, s, -n - 1.0f, n};
}
FracLevels WeightLevels(float bits, float max_abs) {
  FracLevels l;
  if (bits >= static_cast<float>(kFullPrecisionBits)) {
    l.pass = true;
    return l;
  }
  const int lo = static_cast<int>(std::floor(bits));
  l.f = bits - static_cast<float>(lo);
  l.a = SignedLevel(lo, max_abs);
  l.b = SignedLevel(lo + 1, max_abs);
  return l;
}
// Unsigned levels of a PACT clip: scale n_k/a, step a/n_k, range [0, n_k] after clamping x to [0, a].
FracLevel UnsignedLevel(int k, float alpha) {
  const float n = std::ldexp(1.0f, k) - 1.0f;
  return {n / alpha, alpha / n, 0.0f, n};
}
FracLevels ActLevels(float bits, float alpha) {
  FracLevels l;
  const int lo = static_cast<int>(std::floor(bits));
  l.f = bits - static_cast<float>(lo);
  l.a = UnsignedLevel(lo, alpha);
  l.b = UnsignedLevel(lo + 1, alpha);
  return l;
}

MPQ_ALWAYS_INLINE Vec SignedQ(const Vec& v, const Vec& scale, const Vec& step, const Vec& lo, const Vec& hi) {
  return at::vec::clamp((v * scale).round(), lo, hi) * step;
}
inline float SignedQ(float v, const FracLevel& l) { return std::clamp(std::nearbyint(v * l.scale), l.lo, l.hi) * l.step; }

bool FracBitsWeightForward(const float* w, const float* bits, int64_t groups, int64_t group_size, float* out,
                           float* max_abs) {
  std::atomic<bool> finite{true};
  auto small_stat = [&](int64_t g) {
    FiniteCheck check;
    max_abs[g] = RangeMaxAbs(w + g * group_size, 0, group_size, check);
    if (!check.Ok()) finite = false;
  };
  auto large_stats = [&] {
    const std::vector<float> m = MaxAbsPerGroup(w, groups, group_size, finite);
    std::copy(m.begin(), m.end(), max_abs);
  };
  auto apply = [&](int64_t g, int64_t b, int64_t e) {
    const float* in = w + g * group_size;
    float* o = out + g * group_size;
    const FracLevels l = WeightLevels(bits[g], max_abs[g]);
    if (l.pass) {
      std::memcpy(o + b, in + b, (e - b) * sizeof(float));
      return;
    }
    const Vec sa(l.a.scale), ta(l.a.step), la(l.a.lo), ha(l.a.hi);
    FiniteCheck unused;
    if (l.f == 0.0f) {
      MapChunk(in, o, b, e, unused, [&](const Vec& v) { return SignedQ(v, sa, ta, la, ha); });
      return;
    }
    const Vec sb(l.b.scale), tb(l.b.step), lb(l.b.lo), hb(l.b.hi), wa(1.0f - l.f), wb(l.f);
    MapChunk(in, o, b, e, unused,
             [&](const Vec& v) { return wa * SignedQ(v, sa, ta, la, ha) + wb * SignedQ(v, sb, tb, lb, hb); });
  };
  StatThenApply(groups, group_size, small_stat, large_stats, apply);
  return finite;
}

void FracBitsWeightBackward(const float* w, const float* grad, const float* bits, const float* max_abs,
                            int64_t groups, int64_t group_size, double* grad_b) {
  std::vector<double> partials(NumTasks(groups, group_size), 0.0);
  ForEachChunk(groups, group_size, [&](int64_t g, int64_t b, int64_t e, int64_t task) {
    const FracLevels l = WeightLevels(bits[g], max_abs[g]);
    if (l.pass) return;
    const float* in = w + g * group_size;
    const float* gr = grad + g * group_size;
    const Vec sa(l.a.scale), ta(l.a.step), la(l.a.lo), ha(l.a.hi), sb(l.b.scale), tb(l.b.step), lb(l.b.lo),
        hb(l.b.hi);
    Vec acc(0.0f);
    int64_t i = b;
    for (; i + W <= e; i += W) {
      const Vec v = Vec::loadu(in + i);
      acc = at::vec::fmadd(Vec::loadu(gr + i), SignedQ(v, sb, tb, lb, hb) - SignedQ(v, sa, ta, la, ha), acc);
    }
    double s = HorizontalSum(acc);
    for (; i < e; ++i) s += static_cast<double>(gr[i]) * (SignedQ(in[i], l.b) - SignedQ(in[i], l.a));
    partials[task] = s;
  });
  const std::vector<double> totals = CombinePartials(partials, groups, group_size, 1);
  std::copy(totals.begin(), totals.end(), grad_b);
}

MPQ_ALWAYS_INLINE Vec UnsignedQ(const Vec& y, const Vec& scale, const Vec& step) { return (y * scale).round() * step; }

bool FracBitsActForward(const float* x, float bits, float alpha, int64_t n, float* out) {
  std::atomic<bool> finite{true};
  const FracLevels l = ActLevels(bits, alpha);
  const Vec zero(0.0f), a(alpha), sa(l.a.scale), ta(l.a.step), sb(l.b.scale), tb(l.b.step), wa(1.0f - l.f), wb(l.f);
  ForEachChunk(1, n, [&](int64_t, int64_t b, int64_t e, int64_t) {
    FiniteCheck check;
    if (l.f == 0.0f) {
      MapChunk(x, out, b, e, check, [&](const Vec& v) { return UnsignedQ(at::vec::clamp(v, zero, a), sa, ta); });
    } else {
      MapChunk(x, out, b, e, check, [&](const Vec& v) {
        const Vec y = at::vec::clamp(v, zero, a);
        return wa * UnsignedQ(y, sa, ta) + wb * UnsignedQ(y, sb, tb);
      });
    }
    if (!check.Ok()) finite = false;
  });
  return finite;
}

void FracBitsActBackward(const float* x, const float* grad, float bits, float alpha, int64_t n, float* grad_x,
                         double* grad_alpha, double* grad_b) {
  const FracLevels l = ActLevels(bits, alpha);
  std::vector<double> partials(NumTasks(1, n) * 2, 0.0);
  const Vec zero(0.0f), a(alpha), sa(l.a.scale), ta(l.a.step), sb(l.b.scale), tb(l.b.step);
  ForEachChunk(1, n, [&](int64_t, int64_t b, int64_t e, int64_t task) {
    Vec acc_a(0.0f), acc_b(0.0f);
    int64_t i = b;
    for (; i + W <= e; i += W) {
      const Vec v = Vec::loadu(x + i), g = Vec::loadu(grad + i);
      (g & ((v >= zero) & (v < a))).store(grad_x + i);
      acc_a = acc_a + (g & (v >= a));
      const Vec y = at::vec::clamp(v, zero, a);
      acc_b = at::vec::fmadd(g, UnsignedQ(y, sb, tb) - UnsignedQ(y, sa, ta), acc_b);
    }
    double s_a = HorizontalSum(acc_a), s_b = HorizontalSum(acc_b);
    for (; i < e; ++i) {
      grad_x[i] = (x[i] >= 0.0f && x[i] < alpha) ? grad[i] : 0.0f;
      if (x[i] >= alpha) s_a += grad[i];
      const float y = std::clamp(x[i], 0.0f, alpha);
      s_b += static_cast<double>(grad[i]) *
             (std::nearbyint(y * l.b.scale) * l.b.step - std::nearbyint(y * l.a.scale) * l.a.step);
    }
    partials[task * 2] = s_a;
    partials[task * 2 + 1] = s_b;
  });
  const std::vector<double> totals = CombinePartials(partials, 1, n, 2);
  *grad_alpha = totals[0];
  *grad_b = totals[1];
}

}  // namespace

const KernelTable& Table() {
  static const KernelTable table = {
      MPQ_KERNEL_ISA_NAME,
      LinForward,
      DorefaWeightForward,
      DorefaWeightBackward,
      DorefaActForward,
      DorefaActBackward,
      PactForward,
      PactBackward,
      LsqForward,
      LsqBackward,
      HwgqWeightForward,
      HwgqActForward,
      HwgqActBackward,
      UhlichUniformForward,
      UhlichUniformBackward,
      UhlichPow2Forward,
      UhlichPow2Backward,
      SymmetricForward,
      FracBitsWeightForward,
      FracBitsWeightBackward,
      FracBitsActForward,
      FracBitsActBackward,
  };
  return table;
}

}  // namespace mpq::quant::MPQ_KERNEL_NS
