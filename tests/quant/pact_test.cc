// PACT against a float64 reference; gradients as the PACT paper defines them.
#include "lib/quant/pact.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/quant/reference.h"

namespace mpq::quant {
namespace {

using ::testing::HasSubstr;

class PactTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::SeedFromTestName(); }
};

TEST_F(PactTest, MatchesFloat64Reference) {
  const at::Tensor x = at::randn({4, 3000}) * 3 + 1;
  const double alpha = 2.5;
  for (int64_t b : {1, 2, 4, 8}) {
    SCOPED_TRACE(b);
    const double n = std::ldexp(1.0, static_cast<int>(b)) - 1;
    std::vector<testing::ReferenceElement> ref;
    for (double v : testing::ToVector(x)) {
      const double u = std::clamp(v, 0.0, alpha) * n / alpha;
      ref.push_back({std::nearbyint(u) * alpha / n, testing::DistanceToRoundingBoundary(u), alpha / n, u});
    }
    testing::ExpectMatchesReference(PactQuantize(x, at::full({1}, alpha), b), ref);
  }
}

// PACT eq. 3: dx = g [0 <= x < a]; da = sum g [x >= a]. The alpha gradient equals the
// finite difference of sum c clamp(x, 0, a), the unquantized clip PACT differentiates.
TEST_F(PactTest, GradientsFollowThePaper) {
  const at::Tensor x = (at::randn({5000}) * 2).set_requires_grad(true);
  const at::Tensor alpha = at::full({1}, 1.5).set_requires_grad(true);
  const at::Tensor c = at::randn({5000});
  (PactQuantize(x, alpha, 3) * c).sum().backward();
  const at::Tensor xd = x.detach();
  EXPECT_TRUE(x.grad().equal(at::where((xd >= 0) & (xd < 1.5), c, at::zeros_like(c))));
  const std::vector<double> xv = testing::ToVector(x), cv = testing::ToVector(c);
  const double numeric = testing::FiniteDifference(
      [&](double a) {
        double loss = 0;
        for (size_t i = 0; i < xv.size(); ++i) loss += cv[i] * std::clamp(xv[i], 0.0, a);
        return loss;
      },
      1.5, 1e-7);
  EXPECT_NEAR(alpha.grad().item<double>(), numeric, 1e-3 * std::abs(numeric) + 1e-3);
}

TEST_F(PactTest, BadAlphaIsAnError) {
  const at::Tensor x = at::randn({10});
  try {
    PactQuantize(x, at::full({1}, -1.0), 4);
    FAIL() << "negative alpha accepted";
  } catch (const c10::Error& e) {
    EXPECT_THAT(e.what_without_backtrace(), HasSubstr("alpha[0] = -1 must be finite and > 0"));
  }
  EXPECT_THROW(PactQuantize(x, at::full({2}, 1.0), 4), c10::Error);
  EXPECT_THROW(PactQuantize(x, at::full({1}, 1.0), 0), c10::Error);
}

}  // namespace
}  // namespace mpq::quant
