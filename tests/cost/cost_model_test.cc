// Cost model: a hand-computed layer, automatic measurement through modules, and
// MobileNet-V1 against published MACs/parameters and IMPQ's FX8 C_C.
#include "lib/cost/cost_model.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/pooling.h>

#include "lib/nn/qact.h"
#include "lib/nn/qconv.h"

namespace mpq::cost {
namespace {

using nn::ActQuantizer;
using nn::QAct;
using nn::QActOptions;
using nn::QConv2d;
using nn::QConv2dOptions;
using nn::QLinear;
using nn::QLinearOptions;

// conv 3->4, 3x3, 8x8 output, weight bits {2, 4, 4, 8}, input activations 4 bits.
// D = 27 terms, P = 64 outputs per channel, ceil(log2 27) = 5:
//   MACs   = 4 * 27 * 64                                  = 6912
//   BitOps = 27 * 64 * 4 * (2 + 4 + 4 + 8)                = 124416
//   C_C    = 64 * [27*2*4 + 26*(2+4+5-1)]  = 64 * 476     = 30464   (B = 2)
//          + 2 * 64 * [27*4*4 + 26*(4+4+5-1)] = 2 * 47616 = 95232   (B = 4)
//          + 64 * [27*8*4 + 26*(8+4+5-1)] = 64 * 1280     = 81920   (B = 8)  -> 207616
//   weight bytes = 27 * 18 / 8 = 60.75; activation bytes = 3*8*8 * 4 / 8 = 96
//   B_w,eff = 18/4 = 4.5; CR = 16 / 4.5
LayerCost HandLayer() {
  LayerCost l;
  l.name = "conv";
  l.in_channels = 3;
  l.out_channels = 4;
  l.kernel_h = l.kernel_w = 3;
  l.out_h = l.out_w = 8;
  l.weight_bits = {2, 4, 4, 8};
  l.act_bits = 4;
  l.input_elements = 3 * 8 * 8;
  return l;
}

TEST(CostModelTest, HandComputedConvolution) {
  const CostReport r = ComputeCost({HandLayer()});
  EXPECT_EQ(r.totals.params, 108);
  EXPECT_DOUBLE_EQ(r.totals.macs, 6912);
  EXPECT_DOUBLE_EQ(r.totals.bitops, 124416);
  EXPECT_DOUBLE_EQ(r.totals.cc, 207616);
  EXPECT_DOUBLE_EQ(r.totals.weight_bytes, 60.75);
  EXPECT_DOUBLE_EQ(r.totals.act_bytes_sum, 96);
  EXPECT_DOUBLE_EQ(r.totals.bw_eff, 4.5);
  EXPECT_DOUBLE_EQ(r.totals.ba_eff, 4);
  EXPECT_DOUBLE_EQ(r.totals.compression_ratio, 16 / 4.5);
  // Per output channel (kernel-wise groups).
  EXPECT_EQ(r.layers[0].channel_cc, (std::vector<double>{30464, 47616, 47616, 81920}));
  EXPECT_EQ(r.layers[0].channel_bitops, (std::vector<double>{27 * 64 * 2 * 4, 27 * 64 * 4 * 4, 27 * 64 * 4 * 4, 27 * 64 * 8 * 4}));
  EXPECT_EQ(r.layers[0].channel_weight_bytes, (std::vector<double>{6.75, 13.5, 13.5, 27}));
}

TEST(CostModelTest, TwoLayersSumAndTakeTheActivationMaximum) {
  LayerCost fc;
  fc.name = "fc";
  fc.is_linear = true;
  fc.in_channels = 256;
  fc.out_channels = 10;
  fc.weight_bits.assign(10, 8);
  fc.act_bits = 6;
  fc.input_elements = 256;
  const CostReport r = ComputeCost({HandLayer(), fc});
  // fc: MACs 2560; BitOps 2560*48; act bytes 256*6/8 = 192 (> 96).
  EXPECT_DOUBLE_EQ(r.totals.macs, 6912 + 2560);
  EXPECT_DOUBLE_EQ(r.totals.bitops, 124416 + 2560.0 * 48);
  EXPECT_DOUBLE_EQ(r.totals.act_bytes_max, 192);
  EXPECT_DOUBLE_EQ(r.totals.act_bytes_sum, 288);
  EXPECT_DOUBLE_EQ(r.totals.first_layer_macs, 6912);
  EXPECT_DOUBLE_EQ(r.totals.ba_eff, (192.0 * 4 + 256 * 6) / (192 + 256));
}

TEST(CostModelTest, InvalidLayersAreErrorsNamingTheLayer) {
  LayerCost l = HandLayer();
  l.weight_bits = {2, 4};
  EXPECT_THAT([&] {
    try {
      ComputeCost({l});
    } catch (const c10::Error& e) {
      return std::string(e.what_without_backtrace());
    }
    return std::string();
  }(), ::testing::HasSubstr("layer 'conv': 2 weight bit-widths for 4 output channels"));
}

TEST(CostModelTest, MeasuresAModelThroughItsModules) {
  torch::nn::Sequential net(QAct(QActOptions(ActQuantizer::kDorefa).bits(4)),
                            QConv2d(QConv2dOptions(3, 4, 3).padding(1).bits(4)), torch::nn::ReLU(),
                            QAct(QActOptions(ActQuantizer::kPact).bits(6)), torch::nn::Flatten(),
                            QLinear(QLinearOptions(4 * 8 * 8, 10).bits(8)));
  net[1]->as<nn::QConv2dImpl>()->weight_bits.copy_(at::tensor({2, 4, 4, 8}, at::kInt));
  const CostReport r = MeasureModelCost(*net, [&](const at::Tensor& x) { return net->forward(x); }, {1, 3, 8, 8});
  ASSERT_EQ(r.layers.size(), 2u);
  EXPECT_EQ(r.layers[0].name, "1");
  EXPECT_EQ(r.layers[0].act_bits, 4);   // from the DoReFa QAct
  EXPECT_EQ(r.layers[1].act_bits, 6);   // from the PACT QAct, through Flatten (a view)
  EXPECT_DOUBLE_EQ(r.layers[0].cc, 207616);
  EXPECT_DOUBLE_EQ(r.layers[1].macs, 2560);
}

// The bits recorded are the bits applied: without a weight quantizer the weights stay
// float32, whatever the bits buffer holds (a 4 here would give 8x too few BitOps).
TEST(CostModelTest, UnquantizedWeightsCountAsFullPrecision) {
  QConv2d conv(QConv2dOptions(3, 4, 3).padding(1).weight_quantizer(nn::WeightQuantizer::kNone).bits(4));
  QConv2d lin4(QConv2dOptions(3, 4, 3).padding(1).bits(4));
  auto measure = [](QConv2d& m) {
    return MeasureModelCost(*m, [&](const at::Tensor& x) { return m->forward(x); }, {1, 3, 8, 8}, 8);
  };
  const CostReport none = measure(conv), four = measure(lin4);
  EXPECT_EQ(none.layers[0].weight_bits, std::vector<int64_t>(4, 32));
  EXPECT_DOUBLE_EQ(none.totals.bw_eff, 32);
  EXPECT_DOUBLE_EQ(four.totals.bw_eff, 4);
  EXPECT_DOUBLE_EQ(none.totals.bitops, 8 * four.totals.bitops);
}

TEST(CostModelTest, LayerFedByTheNetworkInputGetsInputBits) {
  QConv2d conv(QConv2dOptions(3, 4, 3).padding(1).bits(8));
  const CostReport r = MeasureModelCost(*conv, [&](const at::Tensor& x) { return conv->forward(x); }, {1, 3, 8, 8}, 8);
  EXPECT_EQ(r.layers[0].act_bits, 8);
}

// MobileNet-V1 (Howard et al. 2017), 224x224, width 1.0, every layer 8-bit weights and
// activations (IMPQ's FX8 baseline; seed 001 reports 52.4 Gbit-OPs).
torch::nn::Sequential MobileNetV1At8Bits() {
  torch::nn::Sequential net;
  auto block = [&](int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups) {
    net->push_back(QAct(QActOptions(ActQuantizer::kDorefa).bits(8)));
    net->push_back(QConv2d(QConv2dOptions(in, out, k).stride(stride).padding(k / 2).groups(groups).bits(8)));
    net->push_back(torch::nn::ReLU());
  };
  block(3, 32, 3, 2, 1);
  const int64_t cfg[][3] = {{32, 64, 1},   {64, 128, 2},  {128, 128, 1}, {128, 256, 2}, {256, 256, 1},
                            {256, 512, 2}, {512, 512, 1}, {512, 512, 1}, {512, 512, 1}, {512, 512, 1},
                            {512, 512, 1}, {512, 1024, 2}, {1024, 1024, 1}};
  for (const auto& c : cfg) {
    block(c[0], c[0], 3, c[2], c[0]);  // depthwise
    block(c[0], c[1], 1, 1, 1);        // pointwise
  }
  net->push_back(torch::nn::AdaptiveAvgPool2d(1));
  net->push_back(torch::nn::Flatten());
  net->push_back(QAct(QActOptions(ActQuantizer::kDorefa).bits(8)));
  net->push_back(QLinear(QLinearOptions(1024, 1000).bits(8)));
  return net;
}

TEST(CostModelTest, MobileNetV1MatchesPublishedSizeAndIMPQsFx8Cost) {
  torch::nn::Sequential net = MobileNetV1At8Bits();
  const CostReport r =
      MeasureModelCost(*net, [&](const at::Tensor& x) { return net->forward(x); }, {1, 3, 224, 224});
  ASSERT_EQ(r.layers.size(), 28u);
  // Howard et al.: 569M mult-adds, 4.2M parameters (biases excluded here: 4.23M weights).
  EXPECT_NEAR(r.totals.macs / 1e6, 569, 1.0);
  EXPECT_NEAR(r.totals.params / 1e6, 4.2, 0.05);
  // IMPQ Table (seed 001): FX8 = 52.4 Gbit-OPs. The DESIGN.md formula, every layer
  // counted, gives 49.46 (-5.6%); docs/cost_model.md discusses the residual.
  EXPECT_NEAR(r.totals.cc / 1e9, 49.46, 0.01);
  EXPECT_NEAR(r.totals.cc / 1e9, 52.4, 52.4 * 0.07);
  for (const LayerCost& l : r.layers) EXPECT_EQ(l.act_bits, 8) << l.name;
}

}  // namespace
}  // namespace mpq::cost
