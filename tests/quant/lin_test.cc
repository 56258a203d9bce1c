// IMPQ "Lin" quantizer against a float64 reference of the formula in lin.h.
#include "lib/quant/lin.h"

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

// `authors`: the authors' LinQuant (gsujankumar/IMPQ, utils/QuantModules.py): the clamp
// is on w/s, to +-(1/2 - 1e-6), and there is no integer clamp. Otherwise lin.h's formula.
std::vector<ReferenceElement> LinReference(const at::Tensor& w, const std::vector<int64_t>& bits,
                                           bool authors = false) {
  const std::vector<double> v = testing::ToVector(w);
  const int64_t groups = static_cast<int64_t>(bits.size()), size = w.numel() / groups;
  const double half = authors ? 0.5 - 1e-6 : 0.5;
  std::vector<ReferenceElement> out(v.size());
  for (int64_t g = 0; g < groups; ++g) {
    double max_abs = 0;
    for (int64_t i = 0; i < size; ++i) max_abs = std::max(max_abs, std::abs(v[g * size + i]));
    const double s = 2 * max_abs, levels = std::ldexp(1.0, static_cast<int>(bits[g]));
    for (int64_t i = 0; i < size; ++i) {
      ReferenceElement& e = out[g * size + i];
      const double x = v[g * size + i];
      if (bits[g] == 32) {
        e.value = x;
      } else if (s > 0) {
        const double u = std::clamp(x / s, -half, half) * levels - 0.5;
        double index = std::nearbyint(u);  // torch.round: half to even
        if (!authors) index = std::clamp(index, -levels / 2, levels / 2 - 1);
        e.value = (index + 0.5) / levels * s;
        e.tie = testing::DistanceToRoundingBoundary(u);
        e.step = s / levels;
        e.u = u;
      }
    }
  }
  return out;
}

class LinQuantizeTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::SeedFromTestName(); }
};

TEST_F(LinQuantizeTest, PerChannelMatchesFloat64Reference) {
  const at::Tensor w = at::randn({32, 16, 3, 3});
  std::vector<int64_t> bits;
  for (int64_t c = 0; c < 32; ++c) bits.push_back(1 + c % 8);
  const at::Tensor q = LinQuantize(w, at::tensor(bits, at::kInt));
  testing::ExpectMatchesReference(q, LinReference(w, bits));
}

TEST_F(LinQuantizeTest, PerTensorMatchesFloat64ReferenceOnALargeTensor) {
  // Larger than one parallel chunk (16384), with a ragged tail.
  const at::Tensor w = at::randn({3, 50001}) * 0.05;
  for (int64_t b : {1, 2, 4, 8, 16}) {
    SCOPED_TRACE(b);
    testing::ExpectMatchesReference(LinQuantize(w, at::full({1}, b, at::kInt)), LinReference(w, {b}));
  }
}

// No deviation from the reference code: the same level for every weight, the largest
// and smallest of each channel included, at every bit-width 1..16.
TEST_F(LinQuantizeTest, MatchesTheAuthorsFormulaAtEveryBitWidth) {
  for (int64_t b = 1; b <= 16; ++b) {
    at::Tensor w = at::randn({6, 50});
    w.select(1, 0).copy_(w.abs().amax(1) + 0.1);     // each channel's largest is positive
    w.select(1, 1).copy_(-w.select(1, 0));            // and its negative is there too
    SCOPED_TRACE(b);
    const at::Tensor q = LinQuantize(w, at::full({6}, b, at::kInt));
    const std::vector<ReferenceElement> ref = LinReference(w, std::vector<int64_t>(6, b), /*authors=*/true);
    testing::ExpectMatchesReference(q, ref);
    // The edges are near-ties (which the comparison above forgives): checked exactly, to
    // 1e-6 relative (float32 result against float64, ~1e-7 apart on any x86-64).
    for (int64_t c = 0; c < 6; ++c) {
      const double top = ref[c * 50].value, bottom = ref[c * 50 + 1].value;
      EXPECT_NEAR(q[c][0].item<double>(), top, 1e-6 * std::abs(top));
      EXPECT_NEAR(q[c][1].item<double>(), bottom, 1e-6 * std::abs(bottom));
      const double s = 2 * w[c][0].item<double>(), levels = std::ldexp(1.0, static_cast<int>(b));
      EXPECT_NEAR(top, s * (levels - 1) / (2 * levels), 1e-9 * s);  // the top of the 2^B levels
    }
  }
}

TEST_F(LinQuantizeTest, EachChannelUsesAtMostTwoToTheBLevels) {
  const at::Tensor w = at::randn({8, 500});
  const at::Tensor bits = at::tensor({1, 2, 3, 4, 1, 2, 3, 4}, at::kInt);
  const at::Tensor q = LinQuantize(w, bits);
  for (int64_t c = 0; c < 8; ++c) {
    const std::vector<double> row = testing::ToVector(q[c]);
    EXPECT_LE(std::set<double>(row.begin(), row.end()).size(), size_t{1} << bits[c].item<int>()) << c;
    // Mid-rise: never exactly zero, never beyond the channel's max |w|.
    for (double x : row) EXPECT_NE(x, 0.0);
    EXPECT_LE(q[c].abs().max().item<double>(), w[c].abs().max().item<double>() + 1e-6);
  }
}

TEST_F(LinQuantizeTest, ThirtyTwoBitsPassesThroughExactly) {
  const at::Tensor w = at::randn({4, 10});
  const at::Tensor q = LinQuantize(w, at::tensor({32, 2, 32, 3}, at::kInt));
  EXPECT_TRUE(q[0].equal(w[0]));
  EXPECT_TRUE(q[2].equal(w[2]));
  EXPECT_FALSE(q[1].equal(w[1]));
}

TEST_F(LinQuantizeTest, AllZeroAndConstantChannels) {
  at::Tensor w = at::zeros({3, 9});
  w[1].fill_(0.7);
  w[2].fill_(-0.7);
  const at::Tensor q = LinQuantize(w, at::full({3}, 3, at::kInt));
  EXPECT_TRUE(q[0].equal(at::zeros({9})));
  // Constant c: s = 2|c|; +c maps to the top level (L/2 - 1/2)/L s = c (1 - 1/L), -c to the bottom.
  EXPECT_NEAR(q[1][0].item<double>(), 0.7 * (1 - 1.0 / 8), 1e-6);
  EXPECT_NEAR(q[2][0].item<double>(), -0.7 * (1 - 1.0 / 8), 1e-6);
}

TEST_F(LinQuantizeTest, GradientIsStraightThrough) {
  const at::Tensor w = at::randn({6, 20}).set_requires_grad(true);
  const at::Tensor upstream = at::randn({6, 20});
  (LinQuantize(w, at::full({6}, 2, at::kInt)) * upstream).sum().backward();
  EXPECT_TRUE(w.grad().equal(upstream));
}

TEST_F(LinQuantizeTest, BadArgumentsNameTheValue) {
  const at::Tensor w = at::randn({4, 3});
  auto message = [&](const at::Tensor& x, const at::Tensor& bits) {
    try {
      LinQuantize(x, bits);
    } catch (const c10::Error& e) {
      return std::string(e.what_without_backtrace());
    }
    return std::string("no error");
  };
  EXPECT_THAT(message(w, at::tensor({2, 0, 2, 2}, at::kInt)), HasSubstr("bits[1] = 0 is out of range"));
  EXPECT_THAT(message(w, at::full({1}, 17, at::kInt)), HasSubstr("bits[0] = 17"));
  EXPECT_THAT(message(w, at::full({3}, 2, at::kInt)), HasSubstr("expected 1 (per tensor) or 4"));
  EXPECT_THAT(message(w, at::full({1}, 2.0)), HasSubstr("integer tensor"));
  at::Tensor bad = w.clone();
  bad[2][1] = std::nan("");
  EXPECT_THAT(message(bad, at::full({1}, 2, at::kInt)), HasSubstr("contains NaN or Inf"));
  bad[2][1] = INFINITY;
  EXPECT_THAT(message(bad, at::full({4}, 2, at::kInt)), HasSubstr("contains NaN or Inf"));
  EXPECT_THAT(message(w.to(at::kDouble), at::full({1}, 2, at::kInt)), HasSubstr("expected a float32 tensor"));
}

TEST_F(LinQuantizeTest, NonContiguousInputIsQuantizedByValue) {
  const at::Tensor w = at::randn({10, 6});
  const at::Tensor t = w.t();  // [6, 10], not contiguous
  testing::ExpectMatchesReference(LinQuantize(t, at::full({6}, 3, at::kInt)),
                                  LinReference(t.contiguous(), std::vector<int64_t>(6, 3)));
}

}  // namespace
}  // namespace mpq::quant
