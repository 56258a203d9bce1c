// The FracBits interpolating quantizers (BitPruning's learned bitlengths) against
// float64 references; the bits gradient against finite differences of the forward
// itself (between two integers the output is linear in b, so the difference is exact
// up to float rounding); integer bits reproduce the plain quantizers.
#include "lib/quant/fracbits.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "lib/quant/pact.h"
#include "lib/quant/symmetric.h"
#include "tests/quant/reference.h"

namespace mpq::quant {
namespace {

class FracBitsTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::SeedFromTestName(); }
};

// One k-bit level of the signed weight quantizer in float64, with its tie distance.
struct Level {
  double value, tie, step, u;
};
Level SignedLevel(double w, int k, double m) {
  const double n = std::ldexp(1.0, k - 1) - 1, s = m / n, u = w / s;
  return {std::clamp(std::nearbyint(u), -n - 1, n) * s, testing::DistanceToRoundingBoundary(u), s, u};
}
Level UnsignedLevel(double x, int k, double a) {
  const double n = std::ldexp(1.0, k) - 1, u = std::clamp(x, 0.0, a) * n / a;
  return {std::nearbyint(u) * a / n, testing::DistanceToRoundingBoundary(u), a / n, u};
}
testing::ReferenceElement Mix(const Level& lo, const Level& hi, double f) {
  if (f == 0) return {lo.value, lo.tie, lo.step, lo.u};
  return {(1 - f) * lo.value + f * hi.value, std::min(lo.tie, hi.tie), (1 - f) * lo.step + f * hi.step, hi.u};
}

TEST_F(FracBitsTest, WeightsMatchFloat64ReferencePerChannel) {
  const std::vector<float> bits = {2.0f, 2.3f, 3.75f, 5.5f, 8.0f, 15.5f, 32.0f};
  const int64_t groups = static_cast<int64_t>(bits.size()), size = 700;
  const at::Tensor w = at::randn({groups, size}) * 0.4;
  const at::Tensor b = at::tensor(bits);
  const std::vector<double> wv = testing::ToVector(w);
  std::vector<testing::ReferenceElement> ref;
  for (int64_t g = 0; g < groups; ++g) {
    double m = 0;
    for (int64_t i = 0; i < size; ++i) m = std::max(m, std::abs(wv[g * size + i]));
    const int lo = static_cast<int>(std::floor(bits[g]));
    const double f = bits[g] - lo;
    for (int64_t i = 0; i < size; ++i) {
      const double x = wv[g * size + i];
      if (bits[g] >= 32) {
        ref.push_back({x, 1, 0, 0});
      } else {
        ref.push_back(Mix(SignedLevel(x, lo, m), SignedLevel(x, lo + 1, m), f));
      }
    }
  }
  testing::ExpectMatchesReference(FracBitsQuantizeWeight(w, b), ref);
}

TEST_F(FracBitsTest, ActivationsMatchFloat64Reference) {
  const at::Tensor x = at::randn({5000}) * 0.8 + 0.3;
  for (float bits : {1.0f, 1.5f, 2.25f, 4.0f, 7.9f}) {
    SCOPED_TRACE(bits);
    const double a = 1.3;
    const int lo = static_cast<int>(std::floor(bits));
    std::vector<testing::ReferenceElement> ref;
    for (double v : testing::ToVector(x)) ref.push_back(Mix(UnsignedLevel(v, lo, a), UnsignedLevel(v, lo + 1, a), bits - lo));
    testing::ExpectMatchesReference(FracBitsQuantizeActivation(x, at::full({1}, bits), at::full({1}, 1.3)), ref);
  }
}

TEST_F(FracBitsTest, IntegerBitsAreThePlainQuantizers) {
  const at::Tensor w = at::randn({6, 90}) * 0.2;
  const at::Tensor x = at::randn({3000}).abs();
  for (int k : {2, 3, 4, 8}) {
    SCOPED_TRACE(k);
    EXPECT_TRUE(FracBitsQuantizeWeight(w, at::full({6}, static_cast<double>(k)).to(at::kFloat))
                    .equal(SymmetricQuantize(w, at::full({6}, k, at::kInt))));
    const at::Tensor alpha = at::full({1}, 2.0);
    const at::Tensor ours = FracBitsQuantizeActivation(x, at::full({1}, static_cast<double>(k)).to(at::kFloat), alpha);
    EXPECT_TRUE(ours.equal(PactQuantize(x, alpha, k)));
  }
}

TEST_F(FracBitsTest, OutputIsContinuousInTheBitsAcrossAnInteger) {
  const at::Tensor w = at::randn({3, 200});
  const at::Tensor below = FracBitsQuantizeWeight(w, at::full({1}, 3.0f - 1e-6f));
  const at::Tensor at_three = FracBitsQuantizeWeight(w, at::full({1}, 3.0f));
  EXPECT_LT((below - at_three).abs().max().item<double>(), 1e-5);
}

TEST_F(FracBitsTest, WeightBitsGradientMatchesFiniteDifferencesAndWeightGradientIsIdentity) {
  const at::Tensor w = (at::randn({4, 300}) * 0.3).set_requires_grad(true);
  const at::Tensor b = at::tensor({2.4f, 3.5f, 4.1f, 6.7f}).set_requires_grad(true);
  const at::Tensor c = at::randn({4, 300});
  (FracBitsQuantizeWeight(w, b) * c).sum().backward();
  EXPECT_TRUE(w.grad().equal(c));
  const std::vector<double> got = testing::ToVector(b.grad());
  for (int64_t g = 0; g < 4; ++g) {
    auto loss = [&](double p) {
      at::Tensor bb = b.detach().clone().to(at::kDouble);
      bb[g] = p;
      return (FracBitsQuantizeWeight(w.detach(), bb.to(at::kFloat)).to(at::kDouble) * c).sum().item<double>();
    };
    const double numeric = testing::FiniteDifference(loss, b[g].item<double>(), 0.05);
    EXPECT_NEAR(got[g], numeric, 1e-3 * std::abs(numeric) + 1e-3) << "group " << g;
  }
}

TEST_F(FracBitsTest, ActivationGradientsMatchFiniteDifferencesAndPact) {
  const at::Tensor x = (at::randn({4000}) * 0.9 + 0.4).set_requires_grad(true);
  const at::Tensor b = at::full({1}, 3.3).set_requires_grad(true);
  const at::Tensor alpha = at::full({1}, 1.1).set_requires_grad(true);
  const at::Tensor c = at::randn({4000});
  (FracBitsQuantizeActivation(x, b, alpha) * c).sum().backward();
  auto loss = [&](double p) {
    return (FracBitsQuantizeActivation(x.detach(), at::full({1}, p).to(at::kFloat), alpha.detach()).to(at::kDouble) * c)
        .sum()
        .item<double>();
  };
  const double numeric = testing::FiniteDifference(loss, 3.3, 0.05);
  EXPECT_NEAR(b.grad().item<double>(), numeric, 1e-3 * std::abs(numeric) + 1e-3);
  const at::Tensor xd = x.detach();
  EXPECT_TRUE(x.grad().equal(at::where((xd >= 0) & (xd < 1.1f), c, at::zeros_like(c))));
  EXPECT_NEAR(alpha.grad().item<double>(), at::where(xd >= 1.1f, c, at::zeros_like(c)).sum().item<double>(), 1e-3);
}

TEST_F(FracBitsTest, FullPrecisionGroupsPassThroughWithoutBitsGradient) {
  const at::Tensor w = at::randn({2, 50}).set_requires_grad(true);
  const at::Tensor b = at::tensor({32.0f, 4.5f}).set_requires_grad(true);
  const at::Tensor q = FracBitsQuantizeWeight(w, b);
  EXPECT_TRUE(q[0].equal(w.detach()[0]));
  q.sum().backward();
  EXPECT_EQ(b.grad()[0].item<double>(), 0.0);
}

TEST_F(FracBitsTest, BadBitsNameTheValue) {
  const at::Tensor w = at::randn({3, 10});
  EXPECT_THAT([&] { FracBitsQuantizeWeight(w, at::full({1}, 1.5f)); },
              ::testing::ThrowsMessage<c10::Error>(::testing::HasSubstr("bits[0] = 1.5 is out of range; expected 2..16")));
  EXPECT_THAT([&] { FracBitsQuantizeWeight(w, at::full({2}, 4.0f)); },
              ::testing::ThrowsMessage<c10::Error>(::testing::HasSubstr("2 per-group values")));
  EXPECT_THAT([&] { FracBitsQuantizeWeight(w, at::full({1}, 4, at::kInt)); },
              ::testing::ThrowsMessage<c10::Error>(::testing::HasSubstr("floating-point")));
  EXPECT_THAT([&] { FracBitsQuantizeActivation(w, at::full({1}, 17.0f), at::ones({1})); },
              ::testing::ThrowsMessage<c10::Error>(::testing::HasSubstr("bits[0] = 17")));
  EXPECT_THAT([&] { FracBitsQuantizeActivation(w, at::full({1}, NAN), at::ones({1})); },
              ::testing::ThrowsMessage<c10::Error>(::testing::HasSubstr("out of range")));
  EXPECT_THAT([&] { FracBitsQuantizeActivation(w, at::full({1}, 3.0f), at::zeros({1})); },
              ::testing::ThrowsMessage<c10::Error>(::testing::HasSubstr("alpha[0] = 0 must be finite and > 0")));
}

}  // namespace
}  // namespace mpq::quant
