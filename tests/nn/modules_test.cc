// QConv2d, QLinear, QAct and the EdMIPS mixed modules: wiring against plain ATen ops,
// pass-through, learned parameters receiving gradients, and save/load round trips.
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/serialize.h>

#include <cstdlib>
#include <string>

#include "lib/nn/mixq.h"
#include "lib/nn/qact.h"
#include "lib/nn/qconv.h"
#include "lib/quant/quant.h"
#include "tests/quant/reference.h"

namespace mpq::nn {
namespace {

using ::testing::HasSubstr;

class ModulesTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::SeedFromTestName(); }
  std::string TempFile(const std::string& name) {
    const char* dir = std::getenv("TEST_TMPDIR");
    return std::string(dir ? dir : "/tmp") + "/" + name;
  }
};

TEST_F(ModulesTest, QConv2dIsAConvolutionOfTheQuantizedWeight) {
  QConv2d conv(QConv2dOptions(6, 8, 3).padding(1).stride(2).bits(3));
  conv->weight_bits[2] = 1;
  const at::Tensor x = at::randn({2, 6, 9, 9});
  const at::Tensor want = at::conv2d(x, quant::LinQuantize(conv->weight, conv->weight_bits), {}, 2, 1);
  EXPECT_TRUE(at::allclose(conv(x), want, 1e-5, 1e-6));
  EXPECT_EQ(conv->weight_bits.numel(), 8);  // per output channel by default
}

TEST_F(ModulesTest, ThirtyTwoBitsIsTheFloatLayer) {
  QConv2d conv(QConv2dOptions(4, 4, 3).bits(32));
  QLinear fc(QLinearOptions(10, 3).bits(32).granularity(Granularity::kPerTensor));
  const at::Tensor x = at::randn({2, 4, 5, 5}), v = at::randn({2, 10});
  EXPECT_TRUE(conv(x).equal(at::conv2d(x, conv->weight)));
  EXPECT_TRUE(fc(v).equal(at::linear(v, fc->weight, fc->bias)));
  QAct act(QActOptions(ActQuantizer::kPact).bits(32));
  EXPECT_TRUE(act(x).equal(x));
}

TEST_F(ModulesTest, EveryWeightQuantizerTrainsItsParameters) {
  for (WeightQuantizer q : {WeightQuantizer::kLin, WeightQuantizer::kDorefa, WeightQuantizer::kLsq,
                            WeightQuantizer::kHwgq, WeightQuantizer::kUhlich, WeightQuantizer::kSymmetric,
                            WeightQuantizer::kFracBits}) {
    SCOPED_TRACE(Name(q));
    QConv2d conv(QConv2dOptions(3, 4, 3).weight_quantizer(q).bits(4));
    if (q == WeightQuantizer::kUhlich) {
      // qmax starts at max|w|: nothing clips and its gradient is exactly 0. Shrink it.
      at::NoGradGuard no_grad;
      conv->named_parameters()["weight_qmax"].mul_(0.5);
    }
    conv(at::randn({2, 3, 6, 6})).square().sum().backward();
    for (const auto& p : conv->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
    }
  }
}

TEST_F(ModulesTest, EveryActivationQuantizerRunsAndTrains) {
  for (ActQuantizer q : {ActQuantizer::kDorefa, ActQuantizer::kPact, ActQuantizer::kLsq, ActQuantizer::kHwgq,
                         ActQuantizer::kUhlich, ActQuantizer::kFracBits}) {
    SCOPED_TRACE(Name(q));
    QAct act(QActOptions(q).bits(q == ActQuantizer::kHwgq ? 2 : 4).alpha_init(2.0));
    const at::Tensor x = (at::randn({8, 16}).relu() * 1.5).set_requires_grad(true);
    const at::Tensor y = act(x);
    // Uhlich's bit-width follows from the learned d and qmax ([1] sec. 3): `bits` only
    // initialises them, and d's power-of-two rounding may add a bit.
    const int64_t bits = q == ActQuantizer::kUhlich
                             ? quant::UhlichUniformBits(quant::RoundToPowerOfTwo(act->step), act->qmax, false).item<int64_t>()
                             : act->current_bits();
    EXPECT_LE(std::get<0>(at::_unique(y.detach())).numel(), int64_t{1} << bits);
    y.square().sum().backward();
    EXPECT_TRUE(x.grad().defined());
    for (const auto& p : act->named_parameters()) EXPECT_TRUE(p.value().grad().defined()) << p.key();
  }
}

// BitPruning's modules: real-valued bits start at the integer bits and quantize exactly
// as the plain quantizers there; set_bits moves both; 32 passes through.
TEST_F(ModulesTest, FracBitsModulesStartAtTheirIntegerBits) {
  QConv2d conv(QConv2dOptions(3, 4, 3).weight_quantizer(WeightQuantizer::kFracBits).bits(3));
  ASSERT_TRUE(conv->quantization.fbits.defined());
  EXPECT_TRUE(conv->quantization.fbits.equal(at::full({4}, 3.0f)));
  EXPECT_TRUE(conv->quantized_weight().equal(quant::SymmetricQuantize(conv->weight, at::full({4}, 3, at::kInt))));
  QConv2d fp(QConv2dOptions(3, 4, 3).weight_quantizer(WeightQuantizer::kFracBits).bits(32));
  EXPECT_TRUE(fp->quantized_weight().equal(fp->weight));
  QAct act(QActOptions(ActQuantizer::kFracBits).bits(4).alpha_init(2.0));
  const at::Tensor x = at::randn({500}).relu() * 1.5;
  EXPECT_TRUE(act(x).equal(quant::PactQuantize(x, act->alpha, 4)));
  act->set_bits(2);
  EXPECT_EQ(act->fbits.item<float>(), 2.0f);
  EXPECT_TRUE(act(x).equal(quant::PactQuantize(x, act->alpha, 2)));
  EXPECT_THROW(QConv2d(QConv2dOptions(3, 4, 3).weight_quantizer(WeightQuantizer::kFracBits).bits(1)), c10::Error);
  EXPECT_THROW(QAct(QActOptions(ActQuantizer::kFracBits).is_signed(true)), c10::Error);
}

TEST_F(ModulesTest, SignedInputsNeedASignedQuantizer) {
  try {
    QAct act(QActOptions(ActQuantizer::kPact).is_signed(true));
    FAIL();
  } catch (const c10::Error& e) {
    EXPECT_THAT(e.what_without_backtrace(), HasSubstr("pact quantizes unsigned activations only"));
  }
  QAct lsq(QActOptions(ActQuantizer::kLsq).is_signed(true).bits(4));
  const at::Tensor y = lsq(at::randn({100}));
  EXPECT_LT(y.min().item<double>(), 0);
}

TEST_F(ModulesTest, BadBitsAreErrorsNamingTheValue) {
  EXPECT_THROW(QConv2d(QConv2dOptions(3, 4, 3).bits(0)), c10::Error);
  QAct act(QActOptions(ActQuantizer::kDorefa));
  try {
    act->set_bits(17);
    FAIL();
  } catch (const c10::Error& e) {
    EXPECT_THAT(e.what_without_backtrace(), HasSubstr("bits = 17 out of range"));
  }
}

TEST_F(ModulesTest, SaveAndLoadKeepBitsAndLearnedQuantizerParameters) {
  QConv2d conv(QConv2dOptions(3, 5, 3).weight_quantizer(WeightQuantizer::kUhlich).bits(4));
  QAct act(QActOptions(ActQuantizer::kPact).bits(4));
  {
    at::NoGradGuard no_grad;
    conv->weight_bits.copy_(at::tensor({1, 2, 3, 4, 32}, at::kInt));
    conv->named_parameters()["weight_qmax"].mul_(0.7);
    conv->named_parameters()["weight_d"].mul_(1.3);
    act->alpha.fill_(3.25);
    act->set_bits(3);
  }
  torch::save(conv, TempFile("conv.pt"));
  torch::save(act, TempFile("act.pt"));
  QConv2d conv2(QConv2dOptions(3, 5, 3).weight_quantizer(WeightQuantizer::kUhlich).bits(8));
  QAct act2(QActOptions(ActQuantizer::kPact).bits(8));
  torch::load(conv2, TempFile("conv.pt"));
  torch::load(act2, TempFile("act.pt"));
  EXPECT_TRUE(conv2->weight_bits.equal(conv->weight_bits));
  for (const auto& p : conv->named_parameters()) EXPECT_TRUE(p.value().equal(conv2->named_parameters()[p.key()])) << p.key();
  EXPECT_EQ(act2->current_bits(), 3);
  EXPECT_EQ(act2->alpha.item<double>(), 3.25);
  const at::Tensor x = at::randn({1, 3, 6, 6}).relu();
  EXPECT_TRUE(conv2(act2(x)).equal(conv(act(x))));
}

// [1] eq. 9: one convolution over sum_i p_i Q_i(W) equals sum_i p_i conv(x, Q_i(W)).
TEST_F(ModulesTest, CompositeConvEqualsTheWeightedSumOfParallelConvs) {
  MixQConv2d mix(MixQConv2dOptions(4, 6, 3).padding(1));
  {
    at::NoGradGuard no_grad;
    mix->alpha.copy_(at::tensor({0.3f, -0.2f, 1.1f, 0.05f}));
  }
  const at::Tensor x = at::randn({2, 4, 7, 7});
  const at::Tensor p = at::softmax(mix->alpha.detach(), 0);
  at::Tensor parallel = at::zeros({2, 6, 7, 7});
  for (int64_t i = 0; i < 4; ++i) {
    const at::Tensor q = quant::HwgqQuantizeWeight(mix->weight.detach(), at::full({1}, i + 1, at::kInt));
    parallel += p[i] * at::conv2d(x, q, {}, 1, 1);
  }
  EXPECT_TRUE(at::allclose(mix(x), parallel, 1e-4, 1e-5));
  EXPECT_EQ(mix->selected_bits(), 3);
  EXPECT_NEAR(mix->expected_weight_bits().item<double>(), (p * at::arange(1, 5)).sum().item<double>(), 1e-6);
}

TEST_F(ModulesTest, MixedActivationIsTheSoftmaxMixtureAndAlphaLearns) {
  MixQAct act;
  const at::Tensor x = at::randn({64}).relu();
  const at::Tensor p = at::softmax(act->alpha.detach(), 0);
  at::Tensor want = at::zeros({64});
  for (int64_t i = 0; i < 3; ++i) want += p[i] * quant::HwgqQuantizeActivation(x, i + 2);
  const at::Tensor y = act(x);
  EXPECT_TRUE(at::allclose(y, want, 1e-6, 1e-7));
  (y.sum() + act->expected_bits()).backward();
  EXPECT_GT(act->alpha.grad().abs().sum().item<double>(), 0);
}

}  // namespace
}  // namespace mpq::nn
