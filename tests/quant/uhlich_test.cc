// Uhlich et al. quantizers against float64 references; parameter gradients against
// finite differences of the straight-through surrogate (round frozen).
#include "lib/quant/uhlich.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/quant/reference.h"

namespace mpq::quant {
namespace {

class UhlichTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::SeedFromTestName(); }
};

TEST_F(UhlichTest, UniformMatchesFloat64Reference) {
  const at::Tensor x = at::randn({4, 2500});
  const at::Tensor d = at::tensor({0.05f, 0.1f, 0.02f, 0.25f}), qmax = at::tensor({1.0f, 1.5f, 0.7f, 2.0f});
  for (bool is_signed : {true, false}) {
    SCOPED_TRACE(is_signed);
    const std::vector<double> xv = testing::ToVector(x), dv = testing::ToVector(d), qv = testing::ToVector(qmax);
    std::vector<testing::ReferenceElement> ref;
    for (size_t i = 0; i < xv.size(); ++i) {
      const size_t g = i / 2500;
      const double u = std::clamp(xv[i], is_signed ? -qv[g] : 0.0, qv[g]) / dv[g];
      ref.push_back({dv[g] * std::nearbyint(u), testing::DistanceToRoundingBoundary(u), dv[g], u});
    }
    testing::ExpectMatchesReference(UhlichUniformQuantize(x, d, qmax, is_signed), ref);
  }
}

TEST_F(UhlichTest, UniformGradientsMatchFiniteDifferencesOfTheSurrogate) {
  const at::Tensor x = (at::randn({3000}) * 0.8).set_requires_grad(true);
  const at::Tensor d = at::full({1}, 0.07).set_requires_grad(true);
  const at::Tensor qmax = at::full({1}, 1.1).set_requires_grad(true);
  const at::Tensor c = at::randn({3000});
  (UhlichUniformQuantize(x, d, qmax, true) * c).sum().backward();
  const std::vector<double> xv = testing::ToVector(x), cv = testing::ToVector(c);
  std::vector<double> delta(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    const double u = std::clamp(xv[i], -1.1, 1.1) / 0.07;
    delta[i] = std::nearbyint(u) - u;
  }
  auto loss = [&](double dd, double q) {
    double l = 0;
    for (size_t i = 0; i < xv.size(); ++i) l += cv[i] * dd * (std::clamp(xv[i], -q, q) / dd + delta[i]);
    return l;
  };
  const double dd_numeric = testing::FiniteDifference([&](double p) { return loss(p, 1.1); }, 0.07, 1e-7);
  const double dq_numeric = testing::FiniteDifference([&](double p) { return loss(0.07, p); }, 1.1, 1e-7);
  EXPECT_NEAR(d.grad().item<double>(), dd_numeric, 1e-3 * std::abs(dd_numeric) + 1e-3);
  EXPECT_NEAR(qmax.grad().item<double>(), dq_numeric, 1e-3 * std::abs(dq_numeric) + 1e-3);
  const at::Tensor xd = x.detach();
  EXPECT_TRUE(x.grad().equal(at::where((xd >= -1.1f) & (xd <= 1.1f), c, at::zeros_like(c))));
}

TEST_F(UhlichTest, Pow2MatchesReferenceAndRoutesClippedGradients) {
  const at::Tensor x = (at::randn({2000}) * 0.5).set_requires_grad(true);
  const at::Tensor xmin = at::full({1}, 1.0 / 64).set_requires_grad(true);
  const at::Tensor xmax = at::full({1}, 0.5).set_requires_grad(true);
  const at::Tensor q = UhlichPow2Quantize(x, xmin, xmax, true, true);
  const std::vector<double> xv = testing::ToVector(x), qv = testing::ToVector(q), cv_unused;
  const at::Tensor c = at::randn({2000});
  const std::vector<double> cv = testing::ToVector(c);
  double want_min = 0, want_max = 0;
  std::vector<double> want_dx(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    const double a = std::abs(xv[i]), sign = xv[i] < 0 ? -1 : 1;
    double m;
    if (a < (1.0 / 64) / std::sqrt(2.0)) {  // zero below xmin / sqrt 2 (the authors')
      m = 0;
    } else {
      const double p = std::exp2(std::nearbyint(std::log2(a)));
      m = p >= 0.5 ? 0.5 : (p < 1.0 / 64 ? 1.0 / 64 : p);
      if (p >= 0.5) want_max += sign * cv[i];
      if (p < 1.0 / 64) want_min += sign * cv[i];
    }
    want_dx[i] = (a < (1.0 / 64) / std::sqrt(2.0) || std::exp2(std::nearbyint(std::log2(a))) < 0.5) ? cv[i] : 0.0;
    // log2 of values within 1e-6 of a sqrt(2) boundary could round either way in float32.
    const double l = std::log2(a);
    if (std::abs(l - std::floor(l) - 0.5) < 1e-5) continue;
    ASSERT_NEAR(qv[i], sign * m, 1e-7) << "x = " << xv[i];
  }
  (q * c).sum().backward();
  EXPECT_NEAR(xmin.grad().item<double>(), want_min, 1e-4);
  EXPECT_NEAR(xmax.grad().item<double>(), want_max, 1e-4);
  testing::ExpectAllClose(testing::ToVector(x.grad()), want_dx, 0, 0, "dx");
}

// The kernel rounds in the log domain with integer arithmetic on the float's bits
// (kernels_impl.h Pow2Round): the two floats around each sqrt(2) 2^k boundary go to 2^k
// and 2^(k+1), +-, and unsigned inputs <= 0 or below xmin / sqrt 2 go to 0.
TEST_F(UhlichTest, Pow2RoundsExactlyAtTheSqrt2Boundaries) {
  const float below_sqrt2 = 1.41421353816986083984375f;  // 0x3FB504F3 < sqrt(2)
  const float above_sqrt2 = std::nextafter(below_sqrt2, 2.0f);
  std::vector<float> x, want;
  for (int k = -6; k <= 3; ++k) {
    for (float sign : {1.0f, -1.0f}) {
      x.push_back(sign * std::ldexp(below_sqrt2, k));
      want.push_back(sign * std::ldexp(1.0f, k));
      x.push_back(sign * std::ldexp(above_sqrt2, k));
      want.push_back(sign * std::ldexp(1.0f, k + 1));
    }
  }
  const at::Tensor q = UhlichPow2Quantize(at::tensor(x), at::full({1}, 1.0 / 128), at::full({1}, 32.0), true, false);
  const std::vector<double> got = testing::ToVector(q);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(got[i], want[i]) << "x = " << x[i];

  // xmin = 1/64: threshold 1/64 / sqrt 2 = 0.01105; 0.0079 rounds to 2^-7 but is below it.
  const at::Tensor u = UhlichPow2Quantize(at::tensor({-3.0f, -0.0f, 0.0f, 0.004f, 0.0079f, 0.011f, 0.0111f, 0.3f, 100.0f}),
                                          at::full({1}, 1.0 / 64), at::full({1}, 4.0), false, true);
  const std::vector<double> expected = {0, 0, 0, 0, 0, 0, 1.0 / 64, 0.25, 4.0};
  EXPECT_EQ(testing::ToVector(u), expected);
}

TEST_F(UhlichTest, PowerOfTwoRoundingIsExact) {
  // Every float in [2^-20, 2^20) on a log grid: the value is exactly a power of two, so
  // two parameters rounding to the same power compare equal (xmin <= xmax holds).
  const at::Tensor v = at::exp2(at::linspace(-20, 20, 4001, at::kFloat)).set_requires_grad(true);
  const at::Tensor p = RoundToPowerOfTwo(v);
  const at::Tensor exact = at::exp2(at::round(at::log2(v.detach())));
  EXPECT_TRUE(p.detach().equal(exact));
  EXPECT_TRUE(RoundToPowerOfTwo(at::full({1}, 0.1f)).equal(at::full({1}, 0.125f)));
}

TEST_F(UhlichTest, BitsInferredFromParametersFollowThePaper) {
  // qmax/d = 7: signed ceil(log2 8 + 1) = 4, unsigned 3.
  EXPECT_EQ(UhlichUniformBits(at::full({1}, 0.125), at::full({1}, 0.875), true).item<int>(), 4);
  EXPECT_EQ(UhlichUniformBits(at::full({1}, 0.125), at::full({1}, 0.875), false).item<int>(), 3);
  // xmax/xmin = 2^7: ceil(log2(7 + 1) + 1) = 4.
  EXPECT_EQ(UhlichPow2Bits(at::full({1}, 1.0 / 128), at::full({1}, 1.0)).item<int>(), 4);
}

TEST_F(UhlichTest, StepFromBitsAndPowerOfTwoRoundingCarryGradients) {
  const at::Tensor b = at::full({1}, 3.7).set_requires_grad(true);  // rounds to 4
  const at::Tensor qmax = at::full({1}, 1.4).set_requires_grad(true);
  const at::Tensor d = UhlichStepFromBits(b, qmax, true);
  EXPECT_NEAR(d.item<double>(), 1.4 / 7, 1e-6);
  d.sum().backward();
  // d = qmax / (2^(b-1) - 1) with round as identity: dd/db = -qmax ln2 2^(b-1) / (2^(b-1) - 1)^2 at b = 4.
  EXPECT_NEAR(b.grad().item<double>(), -1.4 * std::log(2.0) * 8 / 49, 1e-5);
  EXPECT_NEAR(qmax.grad().item<double>(), 1.0 / 7, 1e-6);

  const at::Tensor v = at::full({1}, 0.3).set_requires_grad(true);
  const at::Tensor p = RoundToPowerOfTwo(v);
  EXPECT_NEAR(p.item<double>(), 0.25, 1e-7);
  p.sum().backward();
  EXPECT_NEAR(v.grad().item<double>(), 0.25 / 0.3, 1e-5);
}

TEST_F(UhlichTest, InvalidParametersAreErrors) {
  const at::Tensor x = at::randn({4, 5});
  EXPECT_THROW(UhlichUniformQuantize(x, at::full({1}, 0.0), at::full({1}, 1.0), true), c10::Error);
  EXPECT_THROW(UhlichUniformQuantize(x, at::full({3}, 0.1), at::full({3}, 1.0), true), c10::Error);
  EXPECT_THROW(UhlichPow2Quantize(x, at::full({1}, 2.0), at::full({1}, 1.0), true, true), c10::Error);
}

}  // namespace
}  // namespace mpq::quant
