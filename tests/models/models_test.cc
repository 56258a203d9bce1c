// The model zoo against published parameter counts and MACs, and the configurations
// the experiments use (Fashion-MNIST input, quantized layers, shortcut options).
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "lib/cost/cost_model.h"
#include "lib/models/registry.h"
#include "lib/models/resnet.h"

namespace mpq::models {
namespace {

int64_t ParameterCount(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const at::Tensor& p : m.parameters()) n += p.numel();
  return n;
}

class ZooTest : public ::testing::TestWithParam<const char*> {};

// Parameters (incl. BN and biases) within 2% and MACs within 3% of the published
// figures: our BN-after-every-conv layouts differ from some originals by a few
// thousand BN parameters, and MAC counts differ in whether pooling is included.
TEST_P(ZooTest, MatchesPublishedParametersAndMacs) {
  const ModelEntry* entry = *FindModel(GetParam());
  ModelOptions o;
  o.num_classes = entry->default_classes;
  o.image_size = entry->default_image_size;
  std::shared_ptr<Model> net = entry->make(o);
  net->eval();
  const cost::CostReport cost = cost::MeasureModelCost(
      *net, [&](const at::Tensor& x) { return net->forward(x); }, {1, 3, o.image_size, o.image_size});
  const double params_m = ParameterCount(*net) / 1e6, macs_m = cost.totals.macs / 1e6;
  RecordProperty("params_m", std::to_string(params_m));
  RecordProperty("macs_m", std::to_string(macs_m));
  EXPECT_NEAR(params_m, entry->published_params_m, 0.02 * entry->published_params_m) << entry->published_source;
  EXPECT_NEAR(macs_m, entry->published_macs_m, 0.03 * entry->published_macs_m) << entry->published_source;
}

// The registry's min_image_size is what the runner checks specs against: the network
// computes at it and, where it is above 1, fails one pixel below.
TEST_P(ZooTest, SmallestInputSizeIsTheRegistrysMinimum) {
  const ModelEntry* entry = *FindModel(GetParam());
  auto forward = [&](int64_t size) {
    ModelOptions o;
    o.image_size = size;
    std::shared_ptr<Model> net = entry->make(o);
    net->eval();
    at::NoGradGuard no_grad;
    return net->forward(at::zeros({1, 3, size, size})).sizes().vec();
  };
  EXPECT_EQ(forward(entry->min_image_size), (std::vector<int64_t>{1, 10}));
  if (entry->min_image_size > 1) {
    EXPECT_ANY_THROW(forward(entry->min_image_size - 1));
  }
}

INSTANTIATE_TEST_SUITE_P(Registry, ZooTest,
                         ::testing::Values("resnet20", "vgg_small", "mobilenet_v1", "mobilenet_v2", "resnet18", "resnet50", "alexnet",
                                           "googlenet", "inception_v3"),
                         [](const auto& info) { return std::string(info.param); });

TEST(ZooTest, RegistryListsEveryModelAndRejectsUnknownNames) {
  EXPECT_EQ(Models().size(), 9u);
  EXPECT_THAT(FindModel("resnet21").status().message(), ::testing::HasSubstr("valid: resnet20, vgg_small"));
}

TEST(ZooTest, CifarNetsTakeFashionMnistPaddedTo32AndTrainQuantized) {
  for (const char* name : {"resnet20", "vgg_small"}) {
    SCOPED_TRACE(name);
    ModelOptions o;
    o.in_channels = 1;
    o.quant.weight_bits = 4;
    o.quant.act_quantizer = nn::ActQuantizer::kPact;
    o.quant.act_bits = 4;
    std::shared_ptr<Model> net = (*FindModel(name))->make(o);
    const at::Tensor y = net->forward(at::randn({2, 1, 32, 32}));
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 10}));
    y.sum().backward();
    for (const auto& p : net->named_parameters()) EXPECT_TRUE(p.value().grad().defined()) << p.key();
  }
}

TEST(ZooTest, ResNet20ShortcutOptions) {
  ModelOptions a, b;
  b.shortcut = "B";
  const int64_t pa = ParameterCount(*MakeResNet20(a)), pb = ParameterCount(*MakeResNet20(b));
  EXPECT_GT(pb, pa);  // B adds two 1x1 projections with BN
  ModelOptions bad;
  bad.shortcut = "C";
  EXPECT_THROW(MakeResNet20(bad), c10::Error);
}

TEST(ZooTest, FirstAndLastLayersFollowTheQuantizationPolicy) {
  ModelOptions o;
  o.quant.weight_bits = 2;
  o.quant.act_quantizer = nn::ActQuantizer::kHwgq;
  o.quant.act_bits = 2;
  o.quant.quantize_first_and_last = false;  // EdMIPS
  std::shared_ptr<Model> net = MakeResNet20(o);
  const cost::CostReport cost =
      cost::MeasureModelCost(*net, [&](const at::Tensor& x) { return net->forward(x); }, {1, 3, 32, 32});
  ASSERT_EQ(cost.layers.size(), 20u);  // 19 convs + FC (option A: no projections)
  EXPECT_EQ(cost.layers.front().weight_bits[0], 32);
  EXPECT_EQ(cost.layers.front().act_bits, 8);  // the image
  EXPECT_EQ(cost.layers.back().weight_bits[0], 32);
  EXPECT_EQ(cost.layers.back().act_bits, 32);
  EXPECT_EQ(cost.layers[1].weight_bits[0], 2);
  EXPECT_EQ(cost.layers[1].act_bits, 2);
}

// The quantizing QActs of a network, by name.
std::vector<std::string> QuantizingActs(torch::nn::Module& net) {
  std::vector<std::string> out;
  for (const auto& item : net.named_modules()) {
    const auto* a = dynamic_cast<const nn::QActImpl*>(item.value().get());
    if (a != nullptr && a->options.quantizer() != nn::ActQuantizer::kNone) out.push_back(item.key());
  }
  return out;
}

// IMPQ's code quantizes every ReLU's output (act_placement relu): the residual path and
// the block outputs are quantized, the classifier reads the pool of the last one, and
// the cost model counts each layer at the bits it actually reads.
TEST(ZooTest, ReluPlacementQuantizesEveryReluOutputAndTheResidualPath) {
  ModelOptions o;
  o.quant.weight_bits = 4;
  o.quant.act_quantizer = nn::ActQuantizer::kPact;
  o.quant.act_bits = 3;
  std::shared_ptr<Model> conv_input = MakeResNet20(o);
  o.quant.act_placement = ActPlacement::kReluOutput;
  std::shared_ptr<Model> relu = MakeResNet20(o);

  const std::vector<std::string> a = QuantizingActs(*conv_input), b = QuantizingActs(*relu);
  EXPECT_EQ(a.size(), 19u);  // 18 block convs + the classifier's input
  EXPECT_EQ(b.size(), 19u);  // the first unit's ReLU, and per block conv1's and the sum's
  EXPECT_NE(std::find(a.begin(), a.end(), "head.act"), a.end());
  EXPECT_EQ(std::find(b.begin(), b.end(), "head.act"), b.end());
  EXPECT_NE(std::find(b.begin(), b.end(), "body.0.out_act"), b.end());
  EXPECT_NE(std::find(b.begin(), b.end(), "body.1.out_act"), b.end());
  EXPECT_NE(std::find(b.begin(), b.end(), "body.1.conv1.out_act"), b.end());

  // The last block's output (residual sum included) lies on PACT's grid alpha k / (2^3 - 1).
  relu->eval();
  at::manual_seed(3);
  at::NoGradGuard no_grad;
  const at::Tensor x = at::randn({2, 3, 32, 32});
  auto body = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(relu->named_children()["body"]);
  ASSERT_TRUE(body);
  const at::Tensor block_out = body->forward(x);  // the last block's output
  const double alpha = 6.0, levels = 7;
  const at::Tensor k = block_out * (levels / alpha);
  // 1e-4: k up to 7 computed in float32 (relative error ~1e-7), far below half a level.
  EXPECT_LT((k - k.round()).abs().max().item<double>(), 1e-4);

  const auto cost_of = [](Model& m) {
    return cost::MeasureModelCost(m, [&](const at::Tensor& in) { return m.forward(in); }, {1, 3, 32, 32});
  };
  const cost::CostReport ca = cost_of(*conv_input), cb = cost_of(*relu);
  ASSERT_EQ(cb.layers.size(), 20u);
  EXPECT_EQ(cb.layers.front().act_bits, 8);
  for (size_t i = 1; i + 1 < cb.layers.size(); ++i) EXPECT_EQ(cb.layers[i].act_bits, 3) << cb.layers[i].name;
  EXPECT_EQ(cb.layers.back().act_bits, 32);  // the pooled average of 3-bit values is not 3-bit
  EXPECT_EQ(ca.layers.back().act_bits, 3);
  EXPECT_GT(cb.totals.ba_eff, ca.totals.ba_eff);
}

// Max pooling keeps the bits of what it pools: VGG-small's convs after a pool read the
// quantized ReLU output.
TEST(ZooTest, ReluPlacementCountsBitsThroughMaxPooling) {
  ModelOptions o;
  o.quant.weight_bits = 4;
  o.quant.act_quantizer = nn::ActQuantizer::kPact;
  o.quant.act_bits = 4;
  o.quant.act_placement = ActPlacement::kReluOutput;
  std::shared_ptr<Model> net = (*FindModel("vgg_small"))->make(o);
  const cost::CostReport c =
      cost::MeasureModelCost(*net, [&](const at::Tensor& in) { return net->forward(in); }, {1, 3, 32, 32});
  ASSERT_EQ(c.layers.size(), 7u);
  for (size_t i = 1; i < c.layers.size(); ++i) EXPECT_EQ(c.layers[i].act_bits, 4) << c.layers[i].name;
}

}  // namespace
}  // namespace mpq::models
