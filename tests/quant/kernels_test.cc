// The AVX-512, AVX2 and generic builds of every kernel agree, on sizes that exercise
// vector bodies, scalar tails and several parallel chunks.
#include "lib/quant/kernels.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "tests/quant/reference.h"

namespace mpq::quant {
namespace {

class KernelIsaTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override {
    testing::SeedFromTestName();
    avx2_ = Avx2KernelsIfSupported();
    avx512_ = Avx512KernelsIfSupported();
    if (avx2_ == nullptr) GTEST_SKIP() << "CPU without AVX2/FMA: only the generic build runs here";
  }
  const KernelTable& generic_ = GenericKernels();
  const KernelTable* avx2_ = nullptr;
  const KernelTable* avx512_ = nullptr;
};

// Both builds round half to even and use the same operation order, so results are
// equal up to FMA contraction (one rounding fewer): allow 1 ulp-scale differences.
void ExpectClose(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  int bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::abs(a[i] - b[i]) > 1e-5f * (1 + std::abs(a[i])) && ++bad <= 3) {
      ADD_FAILURE() << what << "[" << i << "]: wide build " << a[i] << " generic " << b[i];
    }
  }
}

// Every kernel of `k` on groups x size elements of x (and upstream gradient g), with
// per-group parameters cycling through three settings (bits 2, 4, 32).
std::vector<std::vector<float>> RunAll(const KernelTable& k, int64_t groups, int64_t size, const at::Tensor& x,
                                       const at::Tensor& g) {
  const int64_t n = groups * size;
  const float* xp = x.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  auto cycle = [&](std::vector<float> three) {
    std::vector<float> v(groups);
    for (int64_t i = 0; i < groups; ++i) v[i] = three[i % 3];
    return v;
  };
  std::vector<int32_t> bits(groups);
  for (int64_t i = 0; i < groups; ++i) bits[i] = std::vector<int32_t>{2, 4, 32}[i % 3];
  const std::vector<float> step = cycle({0.05f, 0.1f, 0.2f}), qmax = cycle({0.8f, 1.0f, 1.2f}),
                           lo = cycle({1.0f / 64, 1.0f / 32, 1.0f / 16});
  const std::vector<float> coefficients = cycle({0.996f, 0.336f, 0.0f});
  std::vector<std::vector<float>> outs;
  std::vector<float> out(n), aux(groups), gx(n);
  std::vector<double> d1(groups), d2(groups);
  k.lin_forward(xp, bits.data(), groups, size, out.data(), aux.data());
  outs.push_back(out);
  k.symmetric_forward(xp, bits.data(), groups, size, out.data(), aux.data());
  outs.push_back(out);
  k.dorefa_weight_forward(xp, bits.data(), groups, size, out.data(), aux.data());
  outs.push_back(out);
  k.dorefa_weight_backward(xp, gp, bits.data(), aux.data(), groups, size, gx.data());
  outs.push_back(gx);
  k.hwgq_weight_forward(xp, bits.data(), coefficients.data(), groups, size, out.data(), aux.data());
  outs.push_back(out);
  k.lsq_forward(xp, step.data(), groups, size, 8, 7, out.data());
  outs.push_back(out);
  k.lsq_backward(xp, gp, step.data(), groups, size, 8, 7, gx.data(), d1.data());
  outs.push_back(gx);
  outs.push_back(std::vector<float>(d1.begin(), d1.end()));
  k.uhlich_uniform_forward(xp, step.data(), qmax.data(), groups, size, true, out.data());
  outs.push_back(out);
  k.uhlich_uniform_backward(xp, gp, step.data(), qmax.data(), groups, size, true, gx.data(), d1.data(), d2.data());
  outs.push_back(gx);
  outs.push_back(std::vector<float>(d1.begin(), d1.end()));
  outs.push_back(std::vector<float>(d2.begin(), d2.end()));
  k.uhlich_pow2_forward(xp, lo.data(), qmax.data(), groups, size, true, true, out.data());
  outs.push_back(out);
  k.dorefa_act_forward(xp, 3, n, out.data());
  outs.push_back(out);
  k.pact_forward(xp, 0.9f, 3, n, out.data());
  outs.push_back(out);
  double da = 0;
  k.pact_backward(xp, gp, 0.9f, n, gx.data(), &da);
  outs.push_back(gx);
  outs.push_back({static_cast<float>(da)});
  k.hwgq_act_forward(xp, 0.538f, 2, n, out.data());
  outs.push_back(out);
  const std::vector<float> fbits = cycle({2.5f, 4.0f, 32.0f});
  k.fracbits_weight_forward(xp, fbits.data(), groups, size, out.data(), aux.data());
  outs.push_back(out);
  k.fracbits_weight_backward(xp, gp, fbits.data(), aux.data(), groups, size, d1.data());
  outs.push_back(std::vector<float>(d1.begin(), d1.end()));
  k.fracbits_act_forward(xp, 2.75f, 0.9f, n, out.data());
  outs.push_back(out);
  double fa = 0, fb = 0;
  k.fracbits_act_backward(xp, gp, 2.75f, 0.9f, n, gx.data(), &fa, &fb);
  outs.push_back(gx);
  outs.push_back({static_cast<float>(fa), static_cast<float>(fb)});
  return outs;
}

TEST_P(KernelIsaTest, ForwardAndBackwardAgree) {
  const int64_t groups = 3, size = GetParam(), n = groups * size;
  const at::Tensor x = at::randn({n}) * 0.6;
  const at::Tensor g = at::randn({n});
  const auto a = RunAll(*avx2_, groups, size, x, g), b = RunAll(generic_, groups, size, x, g);
  for (size_t i = 0; i < a.size(); ++i) ExpectClose(a[i], b[i], ("avx2 output " + std::to_string(i)).c_str());
  if (avx512_ == nullptr) return;  // CPU without AVX-512: nothing more to compare
  const auto c = RunAll(*avx512_, groups, size, x, g);
  for (size_t i = 0; i < c.size(); ++i) ExpectClose(c[i], b[i], ("avx512 output " + std::to_string(i)).c_str());
}

// 100003: 300009 elements, above kParallelMinElements, so the kernels run on several threads.
INSTANTIATE_TEST_SUITE_P(Sizes, KernelIsaTest, ::testing::Values(1, 7, 8, 37, 16384, 16384 * 2 + 5, 100003));

// Per-chunk partial sums are combined in chunk order, so results must not depend on how
// many threads ran the chunks (a run is reproducible on any machine). Large groups
// (chunked) and many small groups (one task per batch of groups), both above the size
// where the kernels go parallel.
TEST(KernelThreadsTest, ResultsDoNotDependOnTheThreadCount) {
  testing::SeedFromTestName();
  const int previous = at::get_num_threads();
  for (const auto& [groups, size] : std::vector<std::pair<int64_t, int64_t>>{{3, 100003}, {96, 1500}}) {
    const at::Tensor x = at::randn({groups * size}) * 0.6;
    const at::Tensor g = at::randn({groups * size});
    at::set_num_threads(1);
    const auto one = RunAll(CpuKernels(), groups, size, x, g);
    at::set_num_threads(2);
    const auto two = RunAll(CpuKernels(), groups, size, x, g);
    for (size_t i = 0; i < one.size(); ++i) {
      EXPECT_EQ(one[i], two[i]) << "output " << i << " with " << groups << " groups of " << size;
    }
  }
  at::set_num_threads(previous);
}

TEST(KernelDispatchTest, PicksTheWidestBuildTheCpuHas) {
  EXPECT_STREQ(CpuKernels().isa,
               Avx512KernelsIfSupported() ? "avx512" : (Avx2KernelsIfSupported() ? "avx2" : "generic"));
}

}  // namespace
}  // namespace mpq::quant
