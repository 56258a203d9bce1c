// HAWQ-V3's symmetric weight quantizer against a float64 reference of the formula in
// symmetric.h (the authors' symmetric_linear_quantization_params + SymmetricQuantFunction).
#include "lib/quant/symmetric.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "tests/quant/reference.h"

namespace mpq::quant {
namespace {

using ::testing::HasSubstr;
using testing::ReferenceElement;

std::vector<ReferenceElement> SymmetricReference(const at::Tensor& w, const std::vector<int64_t>& bits) {
  const std::vector<double> v = testing::ToVector(w);
  const int64_t groups = static_cast<int64_t>(bits.size()), size = w.numel() / groups;
  std::vector<ReferenceElement> out(v.size());
  for (int64_t g = 0; g < groups; ++g) {
    double max_abs = 0;
    for (int64_t i = 0; i < size; ++i) max_abs = std::max(max_abs, std::abs(v[g * size + i]));
    const double n = std::ldexp(1.0, static_cast<int>(bits[g]) - 1) - 1;
    const double s = std::max(max_abs, 1e-8) / n;
    for (int64_t i = 0; i < size; ++i) {
      ReferenceElement& e = out[g * size + i];
      const double x = v[g * size + i];
      if (bits[g] == 32) {
        e.value = x;
        continue;
      }
      const double u = x / s;
      e.value = std::clamp(std::nearbyint(u), -n - 1, n) * s;
      e.tie = testing::DistanceToRoundingBoundary(u);
      e.step = s;
      e.u = u;
    }
  }
  return out;
}

class SymmetricQuantizeTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::SeedFromTestName(); }
};

TEST_F(SymmetricQuantizeTest, PerChannelMatchesFloat64Reference) {
  const at::Tensor w = at::randn({32, 16, 3, 3});
  std::vector<int64_t> bits;
  for (int64_t c = 0; c < 32; ++c) bits.push_back(2 + c % 7);
  testing::ExpectMatchesReference(SymmetricQuantize(w, at::tensor(bits, at::kInt)), SymmetricReference(w, bits));
}

TEST_F(SymmetricQuantizeTest, PerTensorMatchesFloat64ReferenceOnALargeTensor) {
  // Larger than one parallel chunk (16384), with a ragged tail.
  const at::Tensor w = at::randn({3, 50001}) * 0.05;
  for (int64_t b : {2, 3, 4, 8, 16}) {
    SCOPED_TRACE(b);
    testing::ExpectMatchesReference(SymmetricQuantize(w, at::full({1}, b, at::kInt)), SymmetricReference(w, {b}));
  }
}

TEST_F(SymmetricQuantizeTest, EachChannelUsesTwoNPlusOneLevelsWithAnExactZeroAndItsMaximum) {
  const at::Tensor w = at::randn({6, 2000});
  const at::Tensor bits = at::tensor({2, 3, 4, 2, 3, 4}, at::kInt);
  const at::Tensor q = SymmetricQuantize(w, bits);
  for (int64_t c = 0; c < 6; ++c) {
    const std::vector<double> row = testing::ToVector(q[c]);
    const int64_t n = (int64_t{1} << (bits[c].item<int>() - 1)) - 1;
    const std::set<double> levels(row.begin(), row.end());
    EXPECT_EQ(levels.size(), static_cast<size_t>(2 * n + 1)) << c;  // 2000 normals reach every level
    EXPECT_EQ(levels.count(0.0), 1u) << c;
    // The channel's largest |w| is a level (to float32 rounding of s n).
    const double max_abs = w[c].abs().max().item<double>();
    EXPECT_NEAR(q[c].abs().max().item<double>(), max_abs, 1e-6 * max_abs) << c;
  }
}

TEST_F(SymmetricQuantizeTest, ThirtyTwoBitsPassesThroughAndZeroChannelsStayZero) {
  at::Tensor w = at::randn({4, 10});
  w[3].zero_();
  const at::Tensor q = SymmetricQuantize(w, at::tensor({32, 2, 32, 3}, at::kInt));
  EXPECT_TRUE(q[0].equal(w[0]));
  EXPECT_TRUE(q[2].equal(w[2]));
  EXPECT_FALSE(q[1].equal(w[1]));
  EXPECT_TRUE(q[3].equal(w[3]));
}

TEST_F(SymmetricQuantizeTest, GradientIsTheIdentity) {
  const at::Tensor w = at::randn({5, 7}).requires_grad_(true);
  const at::Tensor g = at::randn({5, 7});
  SymmetricQuantize(w, at::full({5}, 3, at::kInt)).backward(g);
  EXPECT_TRUE(w.grad().equal(g));
}

TEST_F(SymmetricQuantizeTest, OneBitAndNonFiniteInputAreNamedErrors) {
  const at::Tensor w = at::randn({2, 3});
  EXPECT_THAT([&] { SymmetricQuantize(w, at::full({2}, 1, at::kInt)); },
              ::testing::ThrowsMessage<c10::Error>(HasSubstr("SymmetricQuantize")));
  at::Tensor bad = w.clone();
  bad[1][2] = NAN;
  EXPECT_THAT([&] { SymmetricQuantize(bad, at::full({2}, 4, at::kInt)); },
              ::testing::ThrowsMessage<c10::Error>(HasSubstr("NaN")));
}

}  // namespace
}  // namespace mpq::quant
