// BitPruning: the regularizer's value and gradient for each cost (the BitOps form
// checked against lib/cost's BitOps at integer bits), projection, rounding and
// freezing, and the allocator: a larger lambda ends at fewer bits, points are reported
// once, and a run paused in either phase and resumed equals an uninterrupted one.
#include "lib/alloc/bitpruning.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>
#include <numeric>

#include <nlohmann/json.hpp>

#include "lib/alloc/allocation.h"
#include "lib/alloc/trained_state.h"
#include "lib/cost/cost_model.h"
#include "lib/models/resnet.h"
#include "tests/alloc/tiny_net.h"

namespace mpq::alloc {
namespace {

std::shared_ptr<models::Model> FracBitsResNet20(nn::Granularity g) {
  BitPruningOptions o;
  o.granularity = g;
  models::ModelOptions mo;
  mo.in_channels = 1;
  mo.quant = o.Quant();
  return models::MakeResNet20(mo);
}

const std::vector<int64_t> kInput = {1, 1, 32, 32};

// Sets every bitlength to a seeded value in [lo, hi] (integers when `integer`).
void RandomBits(const std::vector<FracBitsQuantizer>& qs, bool integer, double lo = 2, double hi = 8) {
  at::NoGradGuard no_grad;
  for (const FracBitsQuantizer& q : qs) {
    at::Tensor v = at::rand(q.fbits.sizes()) * (hi - lo) + lo;
    if (integer) v = v.round();
    q.fbits.detach().copy_(v);
  }
  ProjectBits(qs, 2, 1, 16);
}

TEST(BitPruningTest, FindsEveryQuantizedLayerAndActivation) {
  auto net = FracBitsResNet20(nn::Granularity::kPerChannel);
  absl::StatusOr<std::vector<FracBitsQuantizer>> qs = FindFracBitsQuantizers(*net, kInput);
  ASSERT_TRUE(qs.ok()) << qs.status();
  int weights = 0, acts = 0;
  for (const FracBitsQuantizer& q : *qs) (q.is_weight ? weights : acts)++;
  EXPECT_EQ(weights, 20);  // 19 convolutions (shortcut "A": no projection), the classifier
  EXPECT_EQ(acts, 19);     // every quantized layer's input but the first convolution's (the image)
  EXPECT_TRUE((*qs)[0].is_weight);
  EXPECT_EQ((*qs)[0].fbits.numel(), 16);  // per output channel
  EXPECT_EQ((*qs)[0].elements_per_group, 9.0);
}

TEST(BitPruningTest, BitsAndMemoryPenaltiesAreNormalisedMeans) {
  at::manual_seed(1);
  auto net = FracBitsResNet20(nn::Granularity::kPerChannel);
  const std::vector<FracBitsQuantizer> qs = *FindFracBitsQuantizers(*net, kInput);
  RandomBits(qs, false);
  double mean_of_means = 0, weighted = 0, elements = 0;
  for (const FracBitsQuantizer& q : qs) {
    mean_of_means += q.fbits.mean().item<double>() / qs.size();
    weighted += q.fbits.sum().item<double>() * q.elements_per_group;
    elements += q.elements_per_group * q.fbits.numel();
  }
  const BitPenalty bits = *BitPenalty::Make(*net, kInput, qs, BitCost::kBits, 8);
  const BitPenalty memory = *BitPenalty::Make(*net, kInput, qs, BitCost::kMemory, 8);
  EXPECT_NEAR(bits().item<double>(), mean_of_means, 1e-4);
  EXPECT_NEAR(bits.MeanBits(), mean_of_means, 1e-4);
  EXPECT_NEAR(memory().item<double>(), weighted / elements, 1e-4);
  // Gradients: 1 / (quantizers x groups) and N_g / sum N; each set sums to 1.
  for (const BitPenalty* p : {&bits, &memory}) {
    for (const FracBitsQuantizer& q : qs) q.fbits.mutable_grad() = at::Tensor();
    (*p)().backward();
    double total = 0;
    for (const FracBitsQuantizer& q : qs) total += q.fbits.grad().sum().item<double>();
    EXPECT_NEAR(total, 1.0, 1e-5);
    const FracBitsQuantizer& first = qs[0];
    const double want = p == &bits ? 1.0 / (qs.size() * first.fbits.numel()) : first.elements_per_group / elements;
    EXPECT_NEAR(first.fbits.grad()[3].item<double>(), want, 1e-7);
  }
}

TEST(BitPruningTest, BitOpsPenaltyIsTheCostModelsBitOpsAtIntegerBits) {
  at::manual_seed(2);
  auto net = FracBitsResNet20(nn::Granularity::kPerTensor);
  const std::vector<FracBitsQuantizer> qs = *FindFracBitsQuantizers(*net, kInput);
  RandomBits(qs, true);
  net->eval();
  const cost::CostTotals t =
      cost::MeasureModelCost(*net, [&](const at::Tensor& x) { return net->forward(x); }, kInput).totals;
  const BitPenalty p = *BitPenalty::Make(*net, kInput, qs, BitCost::kBitOps, 8);
  EXPECT_NEAR(p().item<double>() * 2 * 8 * t.macs, t.bitops, 1e-5 * t.bitops);
  // The gradient in a layer's weight bits is its MACs times its input's bits (normalised).
  p().backward();
  const cost::CostReport r = cost::MeasureModelCost(*net, [&](const at::Tensor& x) { return net->forward(x); }, kInput);
  for (const cost::LayerCost& l : r.layers) {
    for (const FracBitsQuantizer& q : qs) {
      if (q.name != l.name) continue;
      EXPECT_NEAR(q.fbits.grad().item<double>() * 2 * 8 * t.macs, l.macs * l.act_bits, 1e-4 * l.macs) << l.name;
    }
  }
}

TEST(BitPruningTest, ScaledGradientsMoveKernelWiseLayersAsFastAsLayerWiseOnes) {
  auto layer = FracBitsResNet20(nn::Granularity::kPerTensor);
  auto kernel = FracBitsResNet20(nn::Granularity::kPerChannel);
  const std::vector<FracBitsQuantizer> ql = *FindFracBitsQuantizers(*layer, kInput);
  const std::vector<FracBitsQuantizer> qk = *FindFracBitsQuantizers(*kernel, kInput);
  ASSERT_EQ(ql.size(), qk.size());
  for (BitCost cost : {BitCost::kBits, BitCost::kMemory}) {
    SCOPED_TRACE(Name(cost));
    for (const auto* qs : {&ql, &qk}) {
      for (const FracBitsQuantizer& q : *qs) q.fbits.mutable_grad() = at::Tensor();
    }
    (*BitPenalty::Make(*layer, kInput, ql, cost, 8))().backward();
    (*BitPenalty::Make(*kernel, kInput, qk, cost, 8))().backward();
    ScaleBitsGradients(ql);
    ScaleBitsGradients(qk);
    // Every channel of a kernel-wise layer gets the gradient of the layer-wise bitlength.
    for (size_t i = 0; i < ql.size(); ++i) {
      EXPECT_TRUE(at::allclose(qk[i].fbits.grad(), ql[i].fbits.grad().expand_as(qk[i].fbits), 1e-5, 1e-9)) << ql[i].name;
    }
  }
}

TEST(BitPruningTest, ProjectionClampsAndRoundingFreezes) {
  auto net = FracBitsResNet20(nn::Granularity::kPerChannel);
  const std::vector<FracBitsQuantizer> qs = *FindFracBitsQuantizers(*net, kInput);
  const FracBitsQuantizer& w = qs[0];
  const FracBitsQuantizer& a = qs.back();
  {
    at::NoGradGuard no_grad;
    w.fbits.detach().copy_(at::linspace(0.5, 9.5, 16));
    a.fbits.detach().fill_(0.2);
  }
  ProjectBits(qs, 2, 1, 8);
  EXPECT_FLOAT_EQ(w.fbits[0].item<float>(), 2.0f);
  EXPECT_FLOAT_EQ(w.fbits[15].item<float>(), 8.0f);
  EXPECT_FLOAT_EQ(a.fbits.item<float>(), 1.0f);
  EXPECT_TRUE(w.bits.equal(w.fbits.detach().round().to(at::kInt)));
  {
    at::NoGradGuard no_grad;
    w.fbits.detach().fill_(3.4);
    w.fbits.detach()[1] = 5.6;
  }
  RoundAndFreeze(qs);
  EXPECT_FALSE(w.fbits.requires_grad());
  EXPECT_EQ(w.fbits[0].item<float>(), 3.0f);
  EXPECT_EQ(w.bits[1].item<int>(), 6);
  // Frozen integer bits quantize exactly as the plain symmetric quantizer at those bits.
  auto* conv = dynamic_cast<const nn::QConv2dImpl*>(w.module);
  ASSERT_NE(conv, nullptr);
  nn::WeightQuantization sym = conv->quantization;
  sym.kind = nn::WeightQuantizer::kSymmetric;
  EXPECT_TRUE(conv->quantized_weight().equal(nn::QuantizeWeight(sym, conv->weight)));
}

TEST(BitPruningTest, AppliedAllocationsMoveTheBitlengthsAndTrainedStateLeavesThem) {
  auto net = FracBitsResNet20(nn::Granularity::kPerChannel);
  const std::vector<FracBitsQuantizer> qs = *FindFracBitsQuantizers(*net, kInput);
  Allocation a = ReadAllocation(*net);
  for (GroupBits& g : a.groups) g.bits = g.is_weight ? 3 : 5;
  ASSERT_TRUE(ApplyAllocation(*net, a).ok());
  for (const FracBitsQuantizer& q : qs) {
    EXPECT_TRUE(q.fbits.detach().equal(at::full(q.fbits.sizes(), q.is_weight ? 3.0f : 5.0f))) << q.name;
  }
  // Copying a trained network's weights in keeps the bitlengths (quantizer state).
  auto other = FracBitsResNet20(nn::Granularity::kPerChannel);
  ASSERT_TRUE(CopyTrainedState(*other, *net).ok());
  EXPECT_EQ(qs[0].fbits[0].item<float>(), 3.0f);
}

// A ResNet-20 on synthetic 1-channel data: FP starting model, the allocator's context.
struct Rig {
  testing::Data data;
  std::shared_ptr<models::Model> fp;
  AllocatorContext ctx;
  std::vector<int64_t> points;
  explicit Rig(const std::string& state) : data(testing::MakeData(160, 64, 32, 32)) {
    at::manual_seed(11);
    models::ModelOptions o;
    o.in_channels = 1;
    fp = models::MakeResNet20(o);
    ctx.model = fp.get();
    ctx.train = data.train.get();
    ctx.validation = data.val.get();
    ctx.calibration = data.calibration.get();
    ctx.training.threads = 1;
    ctx.training.progress = false;
    ctx.input_shape = kInput;
    ctx.state_dir = state.empty() ? "" : testing::TempDir(state);
    ctx.make_model_with = [](const models::QuantConfig& q) -> absl::StatusOr<std::shared_ptr<models::Model>> {
      models::ModelOptions mo;
      mo.in_channels = 1;
      mo.quant = q;
      return models::MakeResNet20(mo);
    };
    ctx.on_point = [this](const AllocationPoint& p) {
      points.push_back(p.index);
      return absl::OkStatus();
    };
  }
};

double MeanAllocatedBits(const Allocation& a) {
  double sum = 0;
  for (const GroupBits& g : a.groups) sum += static_cast<double>(g.bits);
  return sum / static_cast<double>(a.groups.size());
}

TEST(BitPruningTest, LargerLambdaEndsAtFewerBits) {
  BitPruningOptions o;
  o.epochs = 2;
  o.finetune_epochs = 1;
  o.bits_lr = 0.5;
  std::vector<double> mean_bits;
  for (double lambda : {0.0, 20.0}) {
    o.lambda = lambda;
    Rig rig("");
    absl::StatusOr<AllocatorResult> r = BitPruningAllocator(o).Run(rig.ctx);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->completed);
    EXPECT_EQ(rig.points, (std::vector<int64_t>{0, 1, 2, 3}));
    for (const GroupBits& g : r->allocation.groups) {
      EXPECT_GE(g.bits, g.is_weight ? 2 : 1) << g.layer;
      EXPECT_LE(g.bits, 8) << g.layer;
    }
    const nlohmann::json details = nlohmann::json::parse(r->details_json);
    EXPECT_NEAR(details["mean_bits"].get<double>(), MeanAllocatedBits(r->allocation), 1e-9)
        << "per-tensor groups: the mean over quantizers is the mean over groups";
    mean_bits.push_back(MeanAllocatedBits(r->allocation));
  }
  EXPECT_GT(mean_bits[0], 7.0);  // without the regularizer the bits stay near their start
  EXPECT_LT(mean_bits[1], mean_bits[0] - 1.0) << "lambda 20 should remove more than a bit on average";
}

TEST(BitPruningTest, RunPausedInEachPhaseEqualsUninterruptedRun) {
  BitPruningOptions o;
  o.epochs = 2;
  o.finetune_epochs = 2;
  o.lambda = 5;
  o.bits_lr = 0.3;
  o.cost = BitCost::kBitOps;
  Rig whole("bitpruning_whole");
  absl::StatusOr<AllocatorResult> a = BitPruningAllocator(o).Run(whole.ctx);
  ASSERT_TRUE(a.ok()) << a.status();
  Rig parts("bitpruning_parts");
  parts.ctx.training.stop_after_epochs = 1;
  absl::StatusOr<AllocatorResult> r = BitPruningAllocator(o).Run(parts.ctx);  // learning epoch 1
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->completed);
  r = BitPruningAllocator(o).Run(parts.ctx);  // learning epoch 2, fine-tuning epoch 1
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->completed);
  r = BitPruningAllocator(o).Run(parts.ctx);  // fine-tuning epoch 2
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->completed);
  const auto sa = testing::ModuleState(*a->model), sb = testing::ModuleState(*r->model);
  ASSERT_EQ(sa.size(), sb.size());
  for (const auto& [name, t] : sa) EXPECT_TRUE(t.equal(sb.at(name))) << name;
  EXPECT_EQ(a->details_json, r->details_json);
  EXPECT_EQ(whole.points, parts.points);
  const size_t reported = parts.points.size();
  parts.ctx.training.stop_after_epochs = 0;
  ASSERT_TRUE(BitPruningAllocator(o).Run(parts.ctx).ok());
  EXPECT_EQ(parts.points.size(), reported) << "a finished state reports nothing again";
}

TEST(BitPruningTest, OptionsAreCheckedAgainstTheRun) {
  MethodContext run;
  EXPECT_TRUE(BitPruningOptions::Parse(nullptr, run).ok());
  const nlohmann::json bad_cost = {{"cost", "latency"}};
  absl::StatusOr<std::shared_ptr<const MethodOptions>> r = BitPruningOptions::Parse(&bad_cost, run);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("bitpruning.cost"), std::string::npos) << r.status();
  const nlohmann::json start_above_max = {{"initial_bits", 8}, {"bits_max", 6}};
  r = BitPruningOptions::Parse(&start_above_max, run);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("initial_bits"), std::string::npos) << r.status();
  const nlohmann::json unknown = {{"lambada", 1}};
  EXPECT_FALSE(BitPruningOptions::Parse(&unknown, run).ok());
  run.quant.weight_bits = 4;
  r = BitPruningOptions::Parse(nullptr, run);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("full-precision"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace mpq::alloc
