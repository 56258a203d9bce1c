// DoReFa weight and activation quantizers against float64 references; the weight
// gradient against finite differences of the straight-through surrogate.
#include "lib/quant/dorefa.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "tests/quant/reference.h"

namespace mpq::quant {
namespace {

using testing::ReferenceElement;

// Reference of dorefa.h in float64. `frozen` (when given) replaces round(u) - u per
// element: the straight-through surrogate whose derivative the backward implements.
std::vector<ReferenceElement> WeightReference(const std::vector<double>& v, int64_t groups, int64_t bits,
                                              const std::vector<double>* frozen = nullptr,
                                              std::vector<double>* offsets = nullptr) {
  const int64_t size = static_cast<int64_t>(v.size()) / groups;
  std::vector<ReferenceElement> out(v.size());
  if (offsets) offsets->assign(v.size(), 0.0);
  for (int64_t g = 0; g < groups; ++g) {
    double max_abs = 0, mean_abs = 0;
    for (int64_t i = 0; i < size; ++i) {
      max_abs = std::max(max_abs, std::abs(v[g * size + i]));
      mean_abs += std::abs(v[g * size + i]) / size;
    }
    const double m = std::tanh(max_abs), n = std::ldexp(1.0, static_cast<int>(bits)) - 1;
    for (int64_t i = 0; i < size; ++i) {
      const int64_t k = g * size + i;
      ReferenceElement& e = out[k];
      if (bits == 1) {
        e.value = v[k] > 0 ? mean_abs : (v[k] < 0 ? -mean_abs : 0.0);
        continue;
      }
      if (m == 0) continue;
      const double u = (std::tanh(v[k]) / (2 * m) + 0.5) * n;
      const double offset = frozen ? (*frozen)[k] : std::nearbyint(u) - u;
      if (offsets) (*offsets)[k] = offset;
      e.value = 2 * (u + offset) / n - 1;
      e.tie = testing::DistanceToRoundingBoundary(u);
      e.step = 2 / n;
      e.u = u;
      e.magnitude = 1;  // 2 q - 1 cancels near 0
    }
  }
  return out;
}

class DorefaTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::SeedFromTestName(); }
};

TEST_F(DorefaTest, WeightMatchesFloat64ReferencePerTensorAndPerChannel) {
  const at::Tensor w = at::randn({16, 72}) * 0.3;
  for (int64_t b : {1, 2, 3, 4, 8}) {
    SCOPED_TRACE(b);
    testing::ExpectMatchesReference(DorefaQuantizeWeight(w, at::full({1}, b, at::kInt)),
                                    WeightReference(testing::ToVector(w), 1, b));
    testing::ExpectMatchesReference(DorefaQuantizeWeight(w, at::full({16}, b, at::kInt)),
                                    WeightReference(testing::ToVector(w), 16, b));
  }
  // Per tensor over 36928 elements: the chunked path (max over 4 chunks, then the levels).
  const at::Tensor big = at::randn({64, 577}) * 0.3;
  for (int64_t b : {1, 4, 8}) {
    testing::ExpectMatchesReference(DorefaQuantizeWeight(big, at::full({1}, b, at::kInt)),
                                    WeightReference(testing::ToVector(big), 1, b));
  }
}

// d/dw_j of sum_i c_i q_i(w) with round frozen, by central differences in float64,
// against the kernel's analytic gradient (which includes the path through max|tanh|).
TEST_F(DorefaTest, WeightGradientMatchesFiniteDifferencesOfTheSurrogate) {
  for (int64_t groups : {1, 3}) {
    SCOPED_TRACE(groups);
    const at::Tensor w = (at::randn({3, 5}) * 0.5).set_requires_grad(true);
    const at::Tensor c = at::randn({3, 5});
    (DorefaQuantizeWeight(w, at::full({groups}, 3, at::kInt)) * c).sum().backward();
    const std::vector<double> v = testing::ToVector(w), cv = testing::ToVector(c);
    std::vector<double> offsets;
    WeightReference(v, groups, 3, nullptr, &offsets);
    std::vector<double> numeric(v.size());
    for (size_t j = 0; j < v.size(); ++j) {
      numeric[j] = testing::FiniteDifference(
          [&](double p) {
            std::vector<double> shifted = v;
            shifted[j] = p;
            double loss = 0;
            const auto q = WeightReference(shifted, groups, 3, &offsets);
            for (size_t i = 0; i < q.size(); ++i) loss += cv[i] * q[i].value;
            return loss;
          },
          v[j], 1e-6);
    }
    // float32 gradient vs float64 differences: agree to ~1e-5 relative.
    testing::ExpectAllClose(testing::ToVector(w.grad()), numeric, 1e-4, 1e-5, "dL/dw");
  }
}

TEST_F(DorefaTest, TiedMaximaShareTheGradientThroughTheMax) {
  const at::Tensor w = at::tensor({0.8f, -0.8f, 0.3f, 0.1f}).set_requires_grad(true);
  const at::Tensor c = at::tensor({1.0f, 2.0f, -1.0f, 0.5f});
  (DorefaQuantizeWeight(w, at::full({1}, 2, at::kInt)) * c).sum().backward();
  // Surrogate derivative: c_j (1 - t_j^2)/M, minus at each of the two maxima
  // sign(t_j)(1 - t_j^2) sum_i c_i t_i / (2 M^2).
  const double m = std::tanh(0.8), dt = 1 - m * m;
  const double sum_ct = 1.0 * m + 2.0 * -m - 1.0 * std::tanh(0.3) + 0.5 * std::tanh(0.1);
  const std::vector<double> g = testing::ToVector(w.grad());
  EXPECT_NEAR(g[0], 1.0 * dt / m - dt * sum_ct / (2 * m * m), 1e-5);
  EXPECT_NEAR(g[1], 2.0 * dt / m + dt * sum_ct / (2 * m * m), 1e-5);
  EXPECT_NEAR(g[2], -1.0 * (1 - std::pow(std::tanh(0.3), 2)) / m, 1e-5);
}

TEST_F(DorefaTest, BinaryWeightsAreSignTimesMeanWithIdentityGradient) {
  const at::Tensor w = at::randn({4, 9}).set_requires_grad(true);
  const at::Tensor q = DorefaQuantizeWeight(w, at::full({4}, 1, at::kInt));
  const at::Tensor mean_abs = w.detach().abs().mean(1, true);
  EXPECT_TRUE(at::allclose(q, at::sign(w.detach()) * mean_abs));
  const at::Tensor c = at::randn({4, 9});
  (q * c).sum().backward();
  EXPECT_TRUE(w.grad().equal(c));
}

// At 2..4 bits the kernel compares |w| with the level boundaries instead of computing
// tanh (kernels_impl.h): the floats on either side of every boundary, and +-0, must get
// exactly eq. 9's level as float64 decides it, in both a per-tensor and a per-channel
// group and through the vector body and the scalar tail.
TEST_F(DorefaTest, LevelsAreExactOnBothSidesOfEveryBoundary) {
  for (int64_t b : {2, 3, 4}) {
    SCOPED_TRACE(b);
    const double n = std::ldexp(1.0, static_cast<int>(b)) - 1, max_abs = 1.5, m = std::tanh(max_abs);
    std::vector<float> v = {1.5f, 0.0f, -0.0f, -1.5f};
    for (int c = 1; 2 * c < n; ++c) {
      const double boundary = std::atanh(2 * m * c / n);
      float above = static_cast<float>(boundary);
      if (above < boundary) above = std::nextafter(above, 2.0f);
      const float below = std::nextafter(above, 0.0f);
      for (float x : {above, below, -above, -below}) v.push_back(x);
    }
    const at::Tensor w = at::tensor(v);
    for (const at::Tensor& groups : {at::full({1}, b, at::kInt)}) {
      const std::vector<double> got = testing::ToVector(DorefaQuantizeWeight(w, groups));
      for (size_t i = 0; i < v.size(); ++i) {
        const double u = (std::tanh(static_cast<double>(v[i])) / (2 * m) + 0.5) * n;
        EXPECT_EQ(got[i], static_cast<float>(2 * std::nearbyint(u) / n - 1)) << "w = " << v[i];
      }
    }
    // Two channels, each with its own maximum 1.5: the same levels per channel.
    const at::Tensor two = at::stack({w, w});
    const std::vector<double> per_channel = testing::ToVector(DorefaQuantizeWeight(two, at::full({2}, b, at::kInt)));
    const std::vector<double> per_tensor = testing::ToVector(DorefaQuantizeWeight(w, at::full({1}, b, at::kInt)));
    for (size_t i = 0; i < v.size(); ++i) {
      EXPECT_EQ(per_channel[i], per_tensor[i]);
      EXPECT_EQ(per_channel[v.size() + i], per_tensor[i]);
    }
  }
}

TEST_F(DorefaTest, ZeroTensorAndPassThrough) {
  EXPECT_TRUE(DorefaQuantizeWeight(at::zeros({2, 5}), at::full({1}, 4, at::kInt)).equal(at::zeros({2, 5})));
  const at::Tensor w = at::randn({2, 5});
  EXPECT_TRUE(DorefaQuantizeWeight(w, at::full({1}, 32, at::kInt)).equal(w));
}

TEST_F(DorefaTest, ActivationMatchesReferenceAndMasksTheGradient) {
  const at::Tensor x = (at::randn({1000}) * 0.8 + 0.4).set_requires_grad(true);
  for (int64_t b : {1, 2, 4, 8}) {
    const double n = std::ldexp(1.0, static_cast<int>(b)) - 1;
    std::vector<ReferenceElement> ref;
    for (double v : testing::ToVector(x)) {
      const double u = std::clamp(v, 0.0, 1.0) * n;
      ref.push_back({std::nearbyint(u) / n, testing::DistanceToRoundingBoundary(u), 1 / n, u});
    }
    testing::ExpectMatchesReference(DorefaQuantizeActivation(x, b), ref);
  }
  const at::Tensor c = at::randn({1000});
  (DorefaQuantizeActivation(x, 3) * c).sum().backward();
  const at::Tensor inside = (x.detach() >= 0) & (x.detach() <= 1);
  EXPECT_TRUE(x.grad().equal(at::where(inside, c, at::zeros_like(c))));
}

}  // namespace
}  // namespace mpq::quant
