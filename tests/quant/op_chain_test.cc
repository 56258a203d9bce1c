// The op-chain versions (used on non-CPU devices and as benchmark baselines) give the
// same values and gradients as the fused kernels.
#include "lib/quant/op_chain.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <functional>

#include "lib/quant/quant.h"
#include "tests/quant/reference.h"

namespace mpq::quant {
namespace {

class OpChainTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::SeedFromTestName(); }
};

// Runs f on a fresh leaf copy of each input and returns (output, grads of inputs that
// require grad) for the loss sum(c * f(...)).
std::vector<at::Tensor> ValueAndGrads(const std::function<at::Tensor(std::vector<at::Tensor>&)>& f,
                                      const std::vector<at::Tensor>& inputs, const at::Tensor& c) {
  std::vector<at::Tensor> leaves;
  for (const at::Tensor& t : inputs) leaves.push_back(t.detach().clone().set_requires_grad(true));
  const at::Tensor out = f(leaves);
  (out * c).sum().backward();
  std::vector<at::Tensor> result = {out.detach()};
  for (const at::Tensor& l : leaves) result.push_back(l.grad().defined() ? l.grad() : at::zeros_like(l));
  return result;
}

void ExpectSame(const std::function<at::Tensor(std::vector<at::Tensor>&)>& fused,
                const std::function<at::Tensor(std::vector<at::Tensor>&)>& chain, const std::vector<at::Tensor>& in,
                double value_tol = 1e-5, double grad_tol = 1e-4) {
  const at::Tensor c = at::randn(fused(const_cast<std::vector<at::Tensor>&>(in)).sizes());
  const auto a = ValueAndGrads(fused, in, c), b = ValueAndGrads(chain, in, c);
  // Values: rounding ties may differ by one level on a handful of elements.
  const double mismatch = (a[0] - b[0]).abs().gt(value_tol).to(at::kDouble).mean().item<double>();
  EXPECT_LT(mismatch, 1e-3) << "fraction of differing values";
  for (size_t i = 1; i < a.size(); ++i) {
    EXPECT_TRUE(at::allclose(a[i], b[i], grad_tol, grad_tol)) << "gradient of input " << i - 1 << ": max diff "
                                                             << (a[i] - b[i]).abs().max().item<double>();
  }
}

TEST_F(OpChainTest, EveryQuantizerAgreesWithItsFusedKernel) {
  const at::Tensor w = at::randn({8, 50}) * 0.3;
  const at::Tensor x = at::randn({4000}) * 0.8 + 0.2;
  const at::Tensor bits = at::tensor({1, 2, 3, 4, 32, 2, 3, 4}, at::kInt), bits4 = at::tensor({1, 2, 3, 4, 32, 2, 3, 4}, at::kInt);
  ExpectSame([&](auto& t) { return LinQuantize(t[0], bits); }, [&](auto& t) { return op_chain::Lin(t[0], bits); }, {w});
  const at::Tensor bits2 = at::tensor({2, 3, 4, 8, 32, 2, 3, 16}, at::kInt);
  ExpectSame([&](auto& t) { return SymmetricQuantize(t[0], bits2); },
             [&](auto& t) { return op_chain::Symmetric(t[0], bits2); }, {w});
  ExpectSame([&](auto& t) { return DorefaQuantizeWeight(t[0], bits); },
             [&](auto& t) { return op_chain::DorefaWeight(t[0], bits); }, {w});
  ExpectSame([&](auto& t) { return DorefaQuantizeActivation(t[0], 3); },
             [&](auto& t) { return op_chain::DorefaActivation(t[0], 3); }, {x});
  ExpectSame([&](auto& t) { return PactQuantize(t[0], t[1], 3); },
             [&](auto& t) { return op_chain::Pact(t[0], t[1], 3); }, {x, at::full({1}, 0.9)});
  ExpectSame([&](auto& t) { return LsqQuantize(t[0], t[1], 3, true, 0.1); },
             [&](auto& t) { return op_chain::Lsq(t[0], t[1], 3, true, 0.1); }, {w, at::rand({8}) * 0.1 + 0.05});
  ExpectSame([&](auto& t) { return HwgqQuantizeWeight(t[0], bits4); },
             [&](auto& t) { return op_chain::HwgqWeight(t[0], bits4); }, {w});
  ExpectSame([&](auto& t) { return HwgqQuantizeActivation(t[0], 2); },
             [&](auto& t) { return op_chain::HwgqActivation(t[0], 2); }, {x});
  ExpectSame([&](auto& t) { return UhlichUniformQuantize(t[0], t[1], t[2], true); },
             [&](auto& t) { return op_chain::UhlichUniform(t[0], t[1], t[2], true); },
             {w, at::full({8}, 0.05), at::full({8}, 0.4)});
  ExpectSame([&](auto& t) { return UhlichPow2Quantize(t[0], t[1], t[2], true, true); },
             [&](auto& t) { return op_chain::UhlichPow2(t[0], t[1], t[2], true, true); },
             {w, at::full({1}, 1.0 / 64), at::full({1}, 0.5)});
  ExpectSame([&](auto& t) { return FracBitsQuantizeWeight(t[0], t[1]); },
             [&](auto& t) { return op_chain::FracBitsWeight(t[0], t[1]); },
             {w, at::tensor({2.0f, 2.5f, 3.25f, 4.0f, 32.0f, 5.9f, 7.5f, 8.0f})});
  ExpectSame([&](auto& t) { return FracBitsQuantizeActivation(t[0], t[1], t[2]); },
             [&](auto& t) { return op_chain::FracBitsActivation(t[0], t[1], t[2]); },
             {x, at::full({1}, 2.6), at::full({1}, 0.9)});
}

}  // namespace
}  // namespace mpq::quant
