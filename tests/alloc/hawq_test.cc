// HAWQ-V3 (lib/alloc/hawq.h): the ties the notebook writes by hand found from the graph,
// the program's budget checked against the cost model, the extremes of the budget, and
// the allocator end to end with a resume.
#include "lib/alloc/hawq.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "lib/alloc/allocation.h"
#include "lib/alloc/hessian_trace.h"
#include "lib/cost/cost_model.h"
#include "lib/models/resnet.h"
#include "lib/quant/symmetric.h"
#include "tests/alloc/tiny_net.h"

namespace mpq::alloc {
namespace {

std::vector<LayerTrace> UnitTraces(models::Model& m, double scale_by_depth = 0) {
  std::vector<LayerTrace> t;
  int64_t i = 0;
  for (const auto& item : m.named_modules("", false)) {
    const at::Tensor* w = nullptr;
    if (auto* c = item.value()->as<nn::QConv2dImpl>()) w = &c->weight;
    if (auto* f = item.value()->as<nn::QLinearImpl>()) w = &f->weight;
    if (w == nullptr) continue;
    LayerTrace l;
    l.layer = item.key();
    l.params = w->numel();
    l.trace = static_cast<double>(l.params) * (1 + scale_by_depth * static_cast<double>(i++ % 5));
    t.push_back(l);
  }
  return t;
}

std::shared_ptr<models::Model> ResNet18(const models::QuantConfig& q = {}) {
  models::ModelOptions o;
  o.quant = q;
  return models::MakeResNet18(o);
}

// The notebook's three constraints x4 == x6, x9 == x11, x14 == x16: each stage's first
// block's downsample follows that block's first convolution (they read one tensor).
TEST(HawqTest, ResNet18DownsampleShortcutsAreTiedToTheirBlocksFirstConvolution) {
  std::shared_ptr<models::Model> fp = ResNet18();
  const std::vector<std::pair<std::string, std::string>> ties = LayersReadingOneTensor(*fp, {1, 3, 64, 64});
  ASSERT_EQ(ties.size(), 3u);
  for (auto [a, b] : ties) {
    if (a.find("shortcut") == std::string::npos) std::swap(a, b);  // the forward runs the shortcut first
    ASSERT_NE(a.find("shortcut"), std::string::npos) << a;
    ASSERT_NE(b.find("conv1"), std::string::npos) << b;
    EXPECT_EQ(a.substr(0, a.find("shortcut")), b.substr(0, b.find("conv1"))) << a << " / " << b;  // same block
  }
}

class HawqProgramTest : public ::testing::TestWithParam<HawqBudget> {};

// The solution's cost, computed by the cost model from the allocation the allocator would
// apply, is within the budget defined from the cost model's own all-low and all-high
// allocations; first / last layers at 8 bits; ties honoured.
TEST_P(HawqProgramTest, SolutionMeetsTheBudgetTheCostModelComputes) {
  HawqOptions o;
  o.candidates = {2, 4, 8};
  o.budget = GetParam();
  std::shared_ptr<models::Model> fp = ResNet18();
  std::shared_ptr<models::Model> q = ResNet18(o.Quant());
  const std::vector<int64_t> shape = {1, 3, 64, 64};
  const auto ties = LayersReadingOneTensor(*fp, shape);
  q->eval();
  const cost::CostReport start = cost::MeasureModelCost(*q, [&](const at::Tensor& x) { return q->forward(x); }, shape);
  // Every layer's cost at `bits` for the free layers (first / last at 8), weights and inputs.
  auto cost_with = [&](const std::map<std::string, int64_t>& bits) {
    Allocation a = ReadAllocation(*q);
    std::map<std::string, int64_t> act;
    for (const cost::LayerCost& l : start.layers) act[l.act_layer] = bits.at(l.name);
    for (GroupBits& g : a.groups) {
      if (g.is_weight) g.bits = bits.at(g.layer);
      else if (act.count(g.layer)) g.bits = act.at(g.layer);
    }
    const cost::CostTotals t = cost::CostOfAllocation(start.layers, a).totals;
    return o.budget == HawqBudget::kBitOps ? t.bitops : t.weight_bytes;
  };
  auto uniform = [&](int64_t b) {
    std::map<std::string, int64_t> bits;
    for (size_t i = 0; i < start.layers.size(); ++i) {
      bits[start.layers[i].name] = i == 0 || i + 1 == start.layers.size() ? 8 : b;
    }
    return bits;
  };
  for (double r : {0.0, 0.3, 0.5, 0.75, 1.0}) {
    SCOPED_TRACE(r);
    o.budget_fraction = r;
    absl::StatusOr<HawqProgram> p = SolveHawqProgram(*q, shape, UnitTraces(*fp, 0.5), ties, o);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_TRUE(p->optimal);
    std::map<std::string, int64_t> bits;
    for (const HawqLayer& l : p->layers) bits[l.layer] = l.bits;
    const double low = cost_with(uniform(2)), high = cost_with(uniform(8));
    const double fixed = cost_with(uniform(2)) - p->cost_low;  // the first / last layers' share
    // Sums of the same ~20 doubles in another order (cost model vs program): 1e-9 of the total.
    EXPECT_NEAR(p->budget + fixed, low + r * (high - low), 1e-9 * high);
    EXPECT_LE(cost_with(bits), low + r * (high - low) + 1e-9 * high);
    EXPECT_NEAR(cost_with(bits), p->cost + fixed, 1e-9 * high);
    EXPECT_EQ(p->layers.front().bits, 8);
    EXPECT_EQ(p->layers.back().bits, 8);
    EXPECT_TRUE(p->layers.front().fixed && p->layers.back().fixed);
    for (const auto& [a, b] : ties) EXPECT_EQ(bits[a], bits[b]) << a << " " << b;
    std::set<int64_t> free_bits;
    for (const HawqLayer& l : p->layers) {
      if (!l.fixed) free_bits.insert(l.bits);
      // Omega falls with more bits: the quantization error of a symmetric quantizer.
      for (size_t k = 1; k < l.omega.size(); ++k) EXPECT_LT(l.omega[k], l.omega[k - 1]) << l.layer;
    }
    if (r == 0.0) {
      EXPECT_EQ(free_bits, std::set<int64_t>{2});
    }
    if (r == 1.0) {
      EXPECT_EQ(free_bits, std::set<int64_t>{8});
    }
  }
  // budget_bits: the budget is uniform 4-bit's cost, whatever budget_fraction says.
  o.budget_bits = 4;
  o.budget_fraction = 1.0;
  absl::StatusOr<HawqProgram> p = SolveHawqProgram(*q, shape, UnitTraces(*fp, 0.5), ties, o);
  ASSERT_TRUE(p.ok()) << p.status();
  std::map<std::string, int64_t> bits;
  for (const HawqLayer& l : p->layers) bits[l.layer] = l.bits;
  const double fixed = cost_with(uniform(2)) - p->cost_low;
  const double w4 = cost_with(uniform(4));
  EXPECT_NEAR(p->budget + fixed, w4, 1e-9 * w4);
  EXPECT_LE(cost_with(bits), w4 * (1 + 1e-9));
  EXPECT_GT(cost_with(bits), cost_with(uniform(2)));  // the budget is used, not left at all-2
}

INSTANTIATE_TEST_SUITE_P(Budgets, HawqProgramTest, ::testing::Values(HawqBudget::kBitOps, HawqBudget::kWeightSize),
                         [](const auto& info) { return std::string(info.param == HawqBudget::kBitOps ? "BitOps" : "Size"); });

// Omega is Tr / N ||Q_b(W) - W||^2 with the fine-tuning quantizer, per channel.
TEST(HawqTest, OmegaIsTheTraceWeightedQuantizationError) {
  HawqOptions o;
  o.candidates = {3, 6};
  std::shared_ptr<models::Model> fp = ResNet18();
  std::shared_ptr<models::Model> q = ResNet18(o.Quant());
  std::vector<LayerTrace> traces = UnitTraces(*fp, 1.0);
  absl::StatusOr<HawqProgram> p = SolveHawqProgram(*q, {1, 3, 64, 64}, traces, {}, o);
  ASSERT_TRUE(p.ok()) << p.status();
  std::map<std::string, const LayerTrace*> t;
  for (const LayerTrace& l : traces) t[l.layer] = &l;
  int checked = 0;
  for (const auto& item : q->named_modules("", false)) {
    auto* conv = item.value()->as<nn::QConv2dImpl>();
    if (conv == nullptr || item.key() != p->layers[5].layer) continue;
    ++checked;
    for (size_t k = 0; k < 2; ++k) {
      const at::Tensor w = conv->weight.detach().to(at::kDouble);
      // float64 reference of the symmetric quantizer, per output channel
      const at::Tensor n = at::full({}, std::ldexp(1.0, static_cast<int>(o.candidates[k]) - 1) - 1, at::kDouble);
      const at::Tensor s = w.abs().amax({1, 2, 3}, true) / n;
      const at::Tensor qw = at::clamp(at::round(w / s), -n - 1, n) * s;
      const double expected = t[item.key()]->trace / static_cast<double>(w.numel()) * (qw - w).square().sum().item<double>();
      EXPECT_NEAR(p->layers[5].omega[k], expected, 1e-4 * expected);  // float32 quantizer vs float64
    }
  }
  EXPECT_EQ(checked, 1);
}

TEST(HawqTest, AMissingTraceIsANamedError) {
  HawqOptions o;
  std::shared_ptr<models::Model> q = ResNet18(o.Quant());
  std::vector<LayerTrace> traces = UnitTraces(*q);
  traces.pop_back();
  absl::StatusOr<HawqProgram> p = SolveHawqProgram(*q, {1, 3, 64, 64}, traces, {}, o);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(std::string(p.status().message()).find("no Hessian trace for layer 'head.fc'"), std::string::npos)
      << p.status();
}

// A 1-channel float ResNet-20 (32x32 inputs), and the context HawqAllocator needs for
// it on `data`: one thread, no progress, the method's networks built as ResNet-20s.
std::shared_ptr<models::Model> FloatResNet20() {
  models::ModelOptions mo;
  mo.in_channels = 1;
  return models::MakeResNet20(mo);
}

AllocatorContext ResNet20Context(testing::Data& data, models::Model& fp) {
  AllocatorContext ctx;
  ctx.model = &fp;
  ctx.train = data.train.get();
  ctx.validation = data.val.get();
  ctx.calibration = data.calibration.get();
  ctx.training.threads = 1;
  ctx.training.progress = false;
  ctx.input_shape = {1, 1, 32, 32};
  ctx.make_model_with = [](const models::QuantConfig& q) -> absl::StatusOr<std::shared_ptr<models::Model>> {
    models::ModelOptions o;
    o.in_channels = 1;
    o.quant = q;
    return models::MakeResNet20(o);
  };
  return ctx;
}

// End to end on a 1-channel ResNet-20 and synthetic data; killed after fine-tuning (the
// store refuses point 1), run again: the traces and the program are read back, point 0
// is not reported twice, and the final allocation is the program's.
TEST(HawqTest, RunsEndToEndAndResumesAfterAKill) {
  testing::Data data = testing::MakeData(160, 64, 32, 32);
  at::manual_seed(5);
  std::shared_ptr<models::Model> fp = FloatResNet20();
  AllocatorContext ctx = ResNet20Context(data, *fp);
  ctx.state_dir = testing::TempDir("hawq_resume");
  std::vector<int64_t> points;
  bool refuse_point_1 = true;
  ctx.on_point = [&](const AllocationPoint& p) {
    if (p.index == 1 && refuse_point_1) return absl::UnavailableError("store down");
    points.push_back(p.index);
    return absl::OkStatus();
  };
  std::map<std::string, double> metrics;
  ctx.on_metrics = [&](int64_t point, const std::vector<std::pair<std::string, double>>& m) {
    EXPECT_EQ(point, 0);
    for (const auto& [k, v] : m) metrics[k] = v;
    return absl::OkStatus();
  };
  HawqOptions o;
  o.candidates = {2, 4};
  o.trace_max_iterations = 4;
  o.finetune_epochs = 1;
  absl::StatusOr<AllocatorResult> first = HawqAllocator(o).Run(ctx);
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(points, (std::vector<int64_t>{0}));
  EXPECT_EQ(metrics.size(), 20u * 4 + 20u * 2);  // 4 trace fields and 2 Omegas per layer
  for (const auto& [k, v] : metrics) {
    if (k.rfind(names::HessianTraceMetric("", "iterations"), 0) == 0) {
      EXPECT_EQ(v, 4) << k;  // tolerance 1e-3: the cap
    }
  }
  refuse_point_1 = false;
  absl::StatusOr<AllocatorResult> second = HawqAllocator(o).Run(ctx);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(points, (std::vector<int64_t>{0, 1}));
  ASSERT_NE(second->model, nullptr);
  const nlohmann::json details = nlohmann::json::parse(second->details_json);
  std::map<std::string, int64_t> chosen;
  for (const auto& l : details["program"]["layers"]) chosen[l["layer"]] = l["bits"];
  for (const GroupBits& g : second->allocation.groups) {
    if (g.is_weight) {
      EXPECT_EQ(g.bits, chosen.at(g.layer)) << g.layer;
    }
  }
  EXPECT_EQ(details["program"]["layers"].front()["bits"], 8);  // the first convolution
  EXPECT_EQ(details["program"]["layers"].back()["bits"], 8);   // the classifier
  EXPECT_TRUE(details["program"]["optimal"].get<bool>());
  // The trace pass at its cost: 4 iterations of one first-order pass and 20 per-layer
  // second-order backward passes over the calibration examples.
  const double passes = static_cast<double>(ctx.calibration->num_examples()) * (4 + 20 * 4);
  EXPECT_DOUBLE_EQ(details["sensitivity_example_passes"].get<double>(), passes);
  EXPECT_DOUBLE_EQ(details[names::kDetailsSensitivityEpochs].get<double>(),
                   passes / static_cast<double>(ctx.train->num_examples()));
}

TEST(HawqTest, RunsWithTheSameTrainedNetworkShareOneTracePass) {
  testing::Data data = testing::MakeData(96, 32, 32, 32);
  at::manual_seed(6);
  std::shared_ptr<models::Model> fp = FloatResNet20();
  AllocatorContext ctx = ResNet20Context(data, *fp);
  ctx.shared_dir = testing::TempDir("hawq_shared");
  HawqOptions o;
  o.candidates = {2, 4};
  o.trace_max_iterations = 2;
  o.finetune_epochs = 1;
  auto run = [&](const std::string& dir, double r) {
    ctx.state_dir = testing::TempDir(dir);
    HawqOptions ro = o;
    ro.budget_fraction = r;
    absl::StatusOr<AllocatorResult> res = HawqAllocator(ro).Run(ctx);
    EXPECT_TRUE(res.ok()) << res.status();
    return res.ok() ? nlohmann::json::parse(res->details_json) : nlohmann::json();
  };
  const nlohmann::json a = run("hawq_cache_a", 0.5);
  ASSERT_TRUE(a["trace_cache"].is_object());
  EXPECT_FALSE(a["trace_cache"]["hit"].get<bool>());
  const std::string key = a["trace_cache"]["key"];
  EXPECT_TRUE(std::filesystem::exists(ctx.shared_dir + "/hawq_traces/" + key + ".json"));

  // Another budget, the same network and calibration data: the traces are reused.
  const nlohmann::json b = run("hawq_cache_b", 0.25);
  EXPECT_TRUE(b["trace_cache"]["hit"].get<bool>());
  EXPECT_EQ(b["trace_cache"]["key"], key);
  EXPECT_EQ(b["traces"], a["traces"]);

  // The same inputs give the same digest; another network, or other trace options, do not.
  HutchinsonOptions ho;
  ho.max_iterations = o.trace_max_iterations;
  ho.tolerance = o.trace_tolerance;
  ho.products = o.trace_products;
  ho.seed = o.seed;
  EXPECT_EQ(*HutchinsonInputsDigest(*fp, *data.calibration, ho), key);
  HutchinsonOptions other = ho;
  other.max_iterations = 3;
  EXPECT_NE(*HutchinsonInputsDigest(*fp, *data.calibration, other), key);
  {
    at::NoGradGuard no_grad;
    fp->parameters().front().view(-1)[0].add_(1e-3);
  }
  EXPECT_NE(*HutchinsonInputsDigest(*fp, *data.calibration, ho), key);
  const nlohmann::json c = run("hawq_cache_c", 0.5);
  EXPECT_FALSE(c["trace_cache"]["hit"].get<bool>());
  EXPECT_NE(c["trace_cache"]["key"], key);
}

}  // namespace
}  // namespace mpq::alloc
