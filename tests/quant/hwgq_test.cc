// EdMIPS HWGQ quantizers against float64 references.
#include "lib/quant/hwgq.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/quant/hwgq_tables.h"
#include "tests/quant/reference.h"

namespace mpq::quant {
namespace {

class HwgqTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::SeedFromTestName(); }
};

std::vector<testing::ReferenceElement> WeightReference(const at::Tensor& w, int64_t groups, int64_t bits) {
  const std::vector<double> v = testing::ToVector(w);
  const int64_t size = w.numel() / groups;
  std::vector<testing::ReferenceElement> out(v.size());
  for (int64_t g = 0; g < groups; ++g) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < size; ++i) mean += v[g * size + i] / size;
    for (int64_t i = 0; i < size; ++i) var += std::pow(v[g * size + i] - mean, 2) / (size - 1);  // unbiased
    const double step = HwgqWeightCoefficient(bits) * std::sqrt(var);
    const double thr = (std::ldexp(1.0, static_cast<int>(bits)) / 2 - 0.5) * step;
    for (int64_t i = 0; i < size; ++i) {
      const double u = v[g * size + i] / step + 0.5;
      out[g * size + i] = {std::clamp((std::nearbyint(u) - 0.5) * step, -thr, thr),
                           testing::DistanceToRoundingBoundary(u), step, u};
    }
  }
  return out;
}

TEST_F(HwgqTest, WeightMatchesFloat64ReferenceForEveryBitWidth) {
  const at::Tensor w = at::randn({8, 300}) * 0.1 + 0.01;
  for (int64_t b = 1; b <= 4; ++b) {
    SCOPED_TRACE(b);
    testing::ExpectMatchesReference(HwgqQuantizeWeight(w, at::full({1}, b, at::kInt)), WeightReference(w, 1, b));
    testing::ExpectMatchesReference(HwgqQuantizeWeight(w, at::full({8}, b, at::kInt)), WeightReference(w, 8, b));
  }
  // Per tensor over 36928 elements: the chunked path (statistic from 4 partial sums).
  const at::Tensor big = at::randn({64, 577}) * 0.1 + 0.01;
  testing::ExpectMatchesReference(HwgqQuantizeWeight(big, at::full({1}, 2, at::kInt)), WeightReference(big, 1, 2));
}

TEST_F(HwgqTest, WeightHasTwoToTheBSymmetricLevelsAndIdentityGradient) {
  const at::Tensor w = at::randn({5000}).set_requires_grad(true);
  const at::Tensor q = HwgqQuantizeWeight(w, at::full({1}, 2, at::kInt));
  const at::Tensor levels = std::get<0>(at::_unique(q.detach()));
  ASSERT_EQ(levels.numel(), 4);
  EXPECT_NEAR(levels[0].item<double>(), -levels[3].item<double>(), 1e-6);
  const at::Tensor c = at::randn({5000});
  (q * c).sum().backward();
  EXPECT_TRUE(w.grad().equal(c));
}

TEST_F(HwgqTest, ConstantChannelGivesZeros) {
  at::Tensor w = at::randn({2, 10});
  w[1].fill_(0.3);
  const at::Tensor q = HwgqQuantizeWeight(w, at::full({2}, 2, at::kInt));
  EXPECT_TRUE(q[1].equal(at::zeros({10})));
}

TEST_F(HwgqTest, ActivationMatchesReferenceAndMasksTheGradient) {
  const at::Tensor x = (at::randn({4000}) * 0.7 + 0.3).set_requires_grad(true);
  for (int64_t b = 1; b <= 4; ++b) {
    SCOPED_TRACE(b);
    const double step = HwgqActivationStep(b), thr = step * (std::ldexp(1.0, static_cast<int>(b)) - 1);
    std::vector<testing::ReferenceElement> ref;
    for (double v : testing::ToVector(x)) {
      const double u = std::clamp(v, 0.0, thr) / step;
      ref.push_back({std::nearbyint(u) * step, testing::DistanceToRoundingBoundary(u), step, u});
    }
    testing::ExpectMatchesReference(HwgqQuantizeActivation(x, b), ref);
  }
  const at::Tensor c = at::randn({4000});
  (HwgqQuantizeActivation(x, 2) * c).sum().backward();
  const double thr = 0.538 * 3;
  const at::Tensor xd = x.detach();
  EXPECT_TRUE(x.grad().equal(at::where((xd >= 0) & (xd <= static_cast<float>(thr)), c, at::zeros_like(c))));
}

TEST_F(HwgqTest, BitsWithoutAnEdmipsConstantAreRejected) {
  try {
    HwgqQuantizeWeight(at::randn({4}), at::full({1}, 5, at::kInt));
    FAIL();
  } catch (const c10::Error& e) {
    EXPECT_THAT(e.what_without_backtrace(), ::testing::HasSubstr("bits[0] = 5 is out of range; expected 1..4"));
  }
  EXPECT_THROW(HwgqQuantizeActivation(at::randn({4}), 8), c10::Error);
}

}  // namespace
}  // namespace mpq::quant
