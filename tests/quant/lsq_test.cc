// LSQ against a float64 reference; the step gradient against finite differences of
// the straight-through surrogate, including the 1/sqrt(N Qp) gradient scale.
#include "lib/quant/lsq.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/quant/reference.h"

namespace mpq::quant {
namespace {

struct Levels {
  double qn, qp;
};
Levels LevelsOf(int64_t b, bool is_signed) {
  return is_signed ? Levels{std::ldexp(1.0, b - 1), std::ldexp(1.0, b - 1) - 1} : Levels{0, std::ldexp(1.0, b) - 1};
}

class LsqTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::SeedFromTestName(); }
};

TEST_F(LsqTest, MatchesFloat64ReferencePerChannelSignedAndUnsigned) {
  const at::Tensor v = at::randn({6, 400});
  const at::Tensor step = at::rand({6}) * 0.2 + 0.05;
  for (bool is_signed : {true, false}) {
    for (int64_t b : {2, 3, 4, 8}) {
      SCOPED_TRACE(::testing::Message() << "signed " << is_signed << " bits " << b);
      const Levels l = LevelsOf(b, is_signed);
      const std::vector<double> vv = testing::ToVector(v), sv = testing::ToVector(step);
      std::vector<testing::ReferenceElement> ref;
      for (size_t i = 0; i < vv.size(); ++i) {
        const double s = sv[i / 400], u = std::clamp(vv[i] / s, -l.qn, l.qp);
        ref.push_back({std::nearbyint(u) * s, testing::DistanceToRoundingBoundary(u), s, u});
      }
      testing::ExpectMatchesReference(LsqQuantize(v, step, b, is_signed, 1.0), ref);
    }
  }
}

TEST_F(LsqTest, StepGradientMatchesFiniteDifferencesOfTheSurrogate) {
  const at::Tensor v = at::randn({2, 300}).set_requires_grad(true);
  const at::Tensor step = at::tensor({0.3f, 0.45f}).set_requires_grad(true);
  const at::Tensor c = at::randn({2, 300});
  const int64_t b = 3;
  const double gs = LsqGradScale(300, b, true);
  (LsqQuantize(v, step, b, true, gs) * c).sum().backward();
  const Levels l = LevelsOf(b, true);
  const std::vector<double> vv = testing::ToVector(v), cv = testing::ToVector(c), sv = testing::ToVector(step);
  for (int g = 0; g < 2; ++g) {
    // Surrogate: s (clamp(v/s) + delta) with delta = round(u0) - u0 frozen at s0.
    std::vector<double> delta(300);
    for (int i = 0; i < 300; ++i) {
      const double u = vv[g * 300 + i] / sv[g];
      delta[i] = (u < -l.qn || u > l.qp) ? 0.0 : std::nearbyint(u) - u;
    }
    const double numeric = testing::FiniteDifference(
        [&](double s) {
          double loss = 0;
          for (int i = 0; i < 300; ++i) loss += cv[g * 300 + i] * s * (std::clamp(vv[g * 300 + i] / s, -l.qn, l.qp) + delta[i]);
          return loss;
        },
        sv[g], 1e-7);
    EXPECT_NEAR(step.grad()[g].item<double>(), gs * numeric, 1e-3 * std::abs(gs * numeric) + 1e-4) << g;
  }
  const at::Tensor u = v.detach() / step.detach().reshape({2, 1});
  const at::Tensor inside = (u >= -l.qn) & (u <= l.qp);
  EXPECT_TRUE(v.grad().equal(at::where(inside, c, at::zeros_like(c))));
}

TEST_F(LsqTest, InitialStepAndGradScaleFollowThePaper) {
  const at::Tensor v = at::randn({1000});
  EXPECT_NEAR(LsqInitialStep(v, 4, true).item<double>(), 2 * v.abs().mean().item<double>() / std::sqrt(7.0), 1e-6);
  EXPECT_DOUBLE_EQ(LsqGradScale(1000, 4, false), 1.0 / std::sqrt(1000.0 * 15));
}

TEST_F(LsqTest, SignedOneBitIsRejected) {
  try {
    LsqQuantize(at::randn({4}), at::full({1}, 0.1), 1, true, 1.0);
    FAIL();
  } catch (const c10::Error& e) {
    EXPECT_THAT(e.what_without_backtrace(), ::testing::HasSubstr("bits = 1 is out of range; expected 2..16"));
  }
}

}  // namespace
}  // namespace mpq::quant
