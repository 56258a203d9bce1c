// Sensitivity (IMPQ's E_W, E_A) against a brute-force computation: one example and one
// class at a time, autograd gradients of d = Z_i - Z_top with respect to the weights and
// the activations; and the reduction step's selection rule.
#include "lib/alloc/sensitivity.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <csignal>
#include <map>

#include "lib/alloc/impq.h"
#include "lib/nn/layer_record.h"
#include "lib/runtime/interrupt.h"
#include "tests/alloc/tiny_net.h"

namespace mpq::alloc {
namespace {

using testing::Data;
using testing::MakeData;
using testing::TinyNet;

// Brute force: {layer -> per-channel E} and {act layer -> E}, as doubles, and for each
// value a bound on how far two float32 computations of it can lie apart.
//
// Why a derived bound and not a fixed tolerance: each term is g^2 / (12 d^2) with d a
// difference of two float32 logits. A dot product of n float32 terms is exact to
// gamma_n = n u / (1 - n u) times the sum of the absolute products (Higham, Accuracy and
// Stability of Numerical Algorithms, 2nd ed., eq. 3.5; u = 2^-24), so d carries an error
// of up to 2 gamma_n S, S = max_i sum_j |W_ij h_j| + |b_i| of the classifier, and 1/d^2
// a relative error of 4 gamma_n S / |d|: unbounded as d -> 0 (the runner-up close to
// the top class). g^2 adds 2 gamma_n. n = 1024 is the longest accumulation in either
// computation (the classifier's 4*16*16 inputs; conv1's 32*32 positions summed into its
// weight gradient). Both sides make such errors, hence the factor 2. This is the
// worst case (rounding errors rarely add up); the test prints how much of it was used.
// A fixed 1e-4 passed on one CPU and failed on another (1.4e-4): the summation order of
// the float32 kernels differs between CPUs (AVX2 and AVX-512 paths of LibTorch's BLAS).
struct Reference {
  std::map<std::string, std::vector<double>> weights, weight_bounds;
  std::map<std::string, double> acts, act_bounds;
  int64_t examples = 0;
};

constexpr double kGamma1024 = 1024.0 * 0x1p-24 / (1 - 1024.0 * 0x1p-24);

Reference BruteForce(TinyNet& net, data::DataLoader& loader, int64_t eval_top) {
  Reference ref;
  net.eval();
  const std::vector<std::pair<std::string, at::Tensor>> params = {
      {"conv1", net.conv1->weight}, {"conv2", net.conv2->weight}, {"fc", net.fc->weight}};
  for (const auto& [name, w] : params) {
    ref.weights[name].assign(w.size(0), 0.0);
    ref.weight_bounds[name].assign(w.size(0), 0.0);
  }
  loader.StartEpoch(0);
  data::Batch batch;
  while (*loader.Next(&batch)) {
    for (int64_t n = 0; n < batch.images.size(0); ++n) {
      nn::LayerRecorder recorder;
      const at::Tensor z = net.forward(batch.images.slice(0, n, n + 1)).squeeze(0);
      const at::Tensor a1 = recorder.activations()[0].output, a2 = recorder.activations()[1].output;
      const at::Tensor order = z.detach().argsort(0, true);
      const int64_t top = order[0].item<int64_t>();
      const double logit_scale =
          (at::matmul(net.fc->weight.detach().abs().to(at::kDouble), a2.detach().abs().flatten().to(at::kDouble)) +
           net.fc->bias.detach().abs().to(at::kDouble))
              .max()
              .item<double>();
      const int64_t classes = eval_top > 0 ? eval_top : z.size(0);
      for (int64_t k = 1; k < classes; ++k) {
        const int64_t i = order[k].item<int64_t>();
        const at::Tensor d = z[i] - z[top];
        const double d2 = d.item<double>() * d.item<double>();
        const double relative_bound = 2 * (2 * kGamma1024 + 4 * kGamma1024 * logit_scale / std::abs(d.item<double>()));
        const std::vector<at::Tensor> g = torch::autograd::grad(
            {d}, {net.conv1->weight, net.conv2->weight, net.fc->weight, a1, a2}, {}, /*retain_graph=*/true);
        for (size_t p = 0; p < params.size(); ++p) {
          const at::Tensor sq = g[p].to(at::kDouble).pow(2).reshape({g[p].size(0), -1}).sum(1);
          for (int64_t c = 0; c < sq.size(0); ++c) {
            const double term = sq[c].item<double>() / (12 * d2);
            ref.weights[params[p].first][c] += term;
            ref.weight_bounds[params[p].first][c] += term * relative_bound;
          }
        }
        for (const auto& [name, grad] : {std::pair<std::string, at::Tensor>{"act1", g[3]}, {"act2", g[4]}}) {
          const double term = grad.to(at::kDouble).pow(2).sum().item<double>() / (12 * d2);
          ref.acts[name] += term;
          ref.act_bounds[name] += term * relative_bound;
        }
      }
      ++ref.examples;
    }
  }
  for (auto* table : {&ref.weights, &ref.weight_bounds}) {
    for (auto& [name, v] : *table) {
      for (double& e : v) e /= ref.examples;
    }
  }
  for (auto* table : {&ref.acts, &ref.act_bounds}) {
    for (auto& [name, e] : *table) e /= ref.examples;
  }
  return ref;
}

void ExpectMatches(const SensitivityReport& r, const Reference& ref) {
  ASSERT_EQ(r.examples, ref.examples);
  // conv1 and fc per channel (4 + 10 groups), conv2 per tensor (1 group), 2 activations.
  ASSERT_EQ(r.groups.size(), 4u + 1u + 10u + 2u);
  double worst = 0;  // largest |difference| / bound, printed to show the margin
  for (const GroupSensitivity& g : r.groups) {
    double want, bound;
    if (!g.is_weight) {
      want = ref.acts.at(g.layer);
      bound = ref.act_bounds.at(g.layer);
    } else if (g.layer == "conv2") {
      want = bound = 0;
      for (double e : ref.weights.at("conv2")) want += e;
      for (double e : ref.weight_bounds.at("conv2")) bound += e;
    } else {
      want = ref.weights.at(g.layer)[g.group];
      bound = ref.weight_bounds.at(g.layer)[g.group];
    }
    // (A classifier row that is never the top or a compared class has E = 0.)
    if (g.layer != "fc") {
      ASSERT_GT(want, 0) << g.layer;
    }
    // 1e-300: a classifier row with E = 0 on both sides.
    EXPECT_NEAR(g.energy, want, bound + 1e-300) << g.layer << " group " << g.group;
    if (bound > 0) worst = std::max(worst, std::abs(g.energy - want) / bound);
  }
  std::printf("largest |measured - reference| / float32 bound: %.3g\n", worst);
}

TEST(SensitivityTest, MatchesBruteForceOverAllClasses) {
  at::manual_seed(11);
  auto net_ptr = std::make_shared<TinyNet>(testing::TinyNetOptions{});
  TinyNet& net = *net_ptr;
  Data d = MakeData(/*n_train=*/64, 16, /*n_calibration=*/24, /*batch=*/10);  // batches 10, 10, 4
  absl::StatusOr<SensitivityReport> r = MeasureSensitivity(net, *d.calibration, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->classes_compared, 9);
  ExpectMatches(*r, BruteForce(net, *d.calibration, 0));
  EXPECT_EQ(r->groups[0].elements, 9);          // conv1: 1 x 3 x 3 weights per kernel
  EXPECT_EQ(r->groups[4].elements, 4 * 2 * 9);  // conv2: the whole layer
}

// Every way of computing the per-example weight-gradient norms gives the brute force's E:
// the grouped weight-gradient convolution, the Gram matrices, the per-layer choice; with
// the default memory budgets (all classes of a batch at once, all examples in one slice)
// and with budgets of one byte (one class per chunk, one example per slice).
struct PathCase {
  GradNormPath path;
  bool tiny_budgets;
};

class SensitivityPathTest : public ::testing::TestWithParam<PathCase> {};

TEST_P(SensitivityPathTest, MatchesBruteForce) {
  at::manual_seed(13);
  auto net_ptr = std::make_shared<TinyNet>(testing::TinyNetOptions{});
  TinyNet& net = *net_ptr;
  Data d = MakeData(/*n_train=*/64, 16, /*n_calibration=*/24, /*batch=*/10);
  SensitivityOptions o;
  o.conv_path = GetParam().path;
  if (GetParam().tiny_budgets) o.class_chunk_bytes = o.layer_work_bytes = 1;
  absl::StatusOr<SensitivityReport> r = MeasureSensitivity(net, *d.calibration, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->classes_compared, 9);
  ExpectMatches(*r, BruteForce(net, *d.calibration, 0));
}

INSTANTIATE_TEST_SUITE_P(Paths, SensitivityPathTest,
                         ::testing::Values(PathCase{GradNormPath::kAuto, false}, PathCase{GradNormPath::kAuto, true},
                                           PathCase{GradNormPath::kDirect, false},
                                           PathCase{GradNormPath::kDirect, true}, PathCase{GradNormPath::kGram, false},
                                           PathCase{GradNormPath::kGram, true}),
                         [](const ::testing::TestParamInfo<PathCase>& info) {
                           const char* path = info.param.path == GradNormPath::kAuto     ? "Auto"
                                              : info.param.path == GradNormPath::kDirect ? "Direct"
                                                                                         : "Gram";
                           return std::string(path) + (info.param.tiny_budgets ? "OneClassOneExample" : "Whole");
                         });

// A per-kernel grouped convolution: each path must keep every output channel's E in its
// place (channel c of group g is output channel g C/G + c). Checked against autograd, one
// example and one class at a time.
class GroupedNet : public models::Model {
 public:
  GroupedNet() {
    conv = register_module("conv", nn::QConv2d(nn::QConv2dOptions(4, 6, 3).stride(2).padding(1).groups(2)));
    fc = register_module("fc", nn::QLinear(nn::QLinearOptions(6 * 16 * 16, 10)));
  }
  // The classifier's input; the convolution sees four different channels made from the
  // one-channel image.
  at::Tensor Features(const at::Tensor& x) { return at::relu(conv(at::cat({x, x.pow(2), x.abs(), -x}, 1))).flatten(1); }
  at::Tensor forward(const at::Tensor& x) override { return fc(Features(x)); }
  nn::QConv2d conv{nullptr};
  nn::QLinear fc{nullptr};
};

TEST(SensitivityTest, EveryPathKeepsAGroupedConvolutionsChannelsInPlace) {
  at::manual_seed(14);
  auto net = std::make_shared<GroupedNet>();
  net->eval();
  Data d = MakeData(/*n_train=*/16, 8, /*n_calibration=*/6, /*batch=*/4);  // batches of 4 and 2
  // The tolerance is derived as in BruteForce above: each term's relative error is at most
  // 2 (2 gamma_n + 4 gamma_n S / |d|), n = 1536 the classifier's inputs (the longest float32
  // accumulation), S its largest sum of |W_ij h_j| + |b_i|, d = Z_i - Z_top.
  constexpr double kGamma1536 = 1536.0 * 0x1p-24 / (1 - 1536.0 * 0x1p-24);
  std::vector<double> want(6, 0.0), bound(6, 0.0);
  int64_t examples = 0;
  d.calibration->StartEpoch(0);
  data::Batch batch;
  while (*d.calibration->Next(&batch)) {
    for (int64_t n = 0; n < batch.images.size(0); ++n, ++examples) {
      const at::Tensor h = net->Features(batch.images.slice(0, n, n + 1));
      const at::Tensor z = net->fc(h).squeeze(0);
      const double logit_scale =
          (at::matmul(net->fc->weight.detach().abs().to(at::kDouble), h.detach().abs().flatten().to(at::kDouble)) +
           net->fc->bias.detach().abs().to(at::kDouble))
              .max()
              .item<double>();
      const at::Tensor order = z.detach().argsort(0, true);
      for (int64_t k = 1; k < z.size(0); ++k) {
        const at::Tensor dz = z[order[k].item<int64_t>()] - z[order[0].item<int64_t>()];
        const double dz_value = dz.item<double>();
        const double relative_bound = 2 * (2 * kGamma1536 + 4 * kGamma1536 * logit_scale / std::abs(dz_value));
        const at::Tensor g = torch::autograd::grad({dz}, {net->conv->weight}, {}, /*retain_graph=*/true)[0];
        const at::Tensor sq = g.to(at::kDouble).pow(2).reshape({6, -1}).sum(1);
        for (int64_t c = 0; c < 6; ++c) {
          const double term = sq[c].item<double>() / (12 * dz_value * dz_value);
          want[c] += term;
          bound[c] += term * relative_bound;
        }
      }
    }
  }
  ASSERT_EQ(examples, 6);
  for (double& e : want) e /= 6.0;
  for (double& e : bound) e /= 6.0;
  data::DataLoader* loader = d.calibration.get();
  double worst = 0;
  for (GradNormPath path : {GradNormPath::kAuto, GradNormPath::kDirect, GradNormPath::kGram}) {
    SensitivityOptions o;
    o.conv_path = path;
    absl::StatusOr<SensitivityReport> r = MeasureSensitivity(*net, *loader, o);
    ASSERT_TRUE(r.ok()) << r.status();
    for (int64_t c = 0; c < 6; ++c) {
      ASSERT_EQ(r->groups[c].layer, "conv");
      ASSERT_EQ(r->groups[c].group, c);
      ASSERT_GT(want[c], 0);
      EXPECT_NEAR(r->groups[c].energy, want[c], bound[c]) << "channel " << c << " path " << static_cast<int>(path);
      worst = std::max(worst, std::abs(r->groups[c].energy - want[c]) / bound[c]);
    }
  }
  std::printf("largest |measured - reference| / float32 bound: %.3g\n", worst);
}

// A SIGTERM (Slurm's preemption) stops the pass between batches as Cancelled, which the
// runner stores as interrupted; cleared, the same pass runs.
TEST(SensitivityTest, AnInterruptStopsThePassBetweenBatches) {
  at::manual_seed(11);
  auto net = std::make_shared<TinyNet>(testing::TinyNetOptions{});
  Data d = MakeData(/*n_train=*/64, 16, /*n_calibration=*/24, /*batch=*/10);
  runtime::SetInterruptForTesting(SIGTERM);
  absl::StatusOr<SensitivityReport> r = MeasureSensitivity(*net, *d.calibration, {});
  runtime::SetInterruptForTesting(0);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsCancelled(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("sensitivity pass, batch 1"), std::string::npos) << r.status();
  EXPECT_TRUE(MeasureSensitivity(*net, *d.calibration, {}).ok());
}

TEST(SensitivityTest, MatchesBruteForceOverTopRunnersUp) {
  at::manual_seed(12);
  auto net_ptr = std::make_shared<TinyNet>(testing::TinyNetOptions{});
  TinyNet& net = *net_ptr;
  Data d = MakeData(64, 16, 24, 8);
  SensitivityOptions o;
  o.eval_top = 4;  // the 3 runner-up classes, as the authors' eval_top
  absl::StatusOr<SensitivityReport> r = MeasureSensitivity(net, *d.calibration, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->classes_compared, 3);
  ExpectMatches(*r, BruteForce(net, *d.calibration, 4));
}

SensitivityOptions OneBatch() {
  SensitivityOptions o;
  o.max_batches = 1;
  return o;
}

TEST(SensitivityTest, ScoresFollowThePaperAndTheCode) {
  GroupSensitivity g;
  g.energy = 3.0;
  g.elements = 6;
  g.mean_abs_weight = 0.5;
  g.mean_abs_quantized_weight = 0.4375;
  g.bits = 3;
  EXPECT_DOUBLE_EQ(Score(g, SensitivityMetric::kPaper), 3.0 / 64);  // 2^-6 E
  // The authors' reduce_precision: mean E (no 1/12) * mean|Q(w)| (p.data) / 2^B.
  EXPECT_DOUBLE_EQ(Score(g, SensitivityMetric::kCode), 12 * 3.0 / 6 * 0.4375 / 8);
  EXPECT_DOUBLE_EQ(Score(g, SensitivityMetric::kPaper, 2), 3.0 / 16);
  // reduce_precision_act: E summed over the group's elements, times the clip, / 2^B.
  g.is_weight = false;
  g.clip = 6.0;
  EXPECT_DOUBLE_EQ(Score(g, SensitivityMetric::kCode), 12 * 3.0 * 6.0 / 8);
}

// What the code metric reads from the model: the quantized weights' mean |Q(w)| per group
// (not the float weights') and each activation quantizer's clip value.
TEST(SensitivityTest, TheCodeMetricReadsQuantizedWeightsAndClipValues) {
  at::manual_seed(13);
  auto net = std::make_shared<TinyNet>(testing::TinyNetOptions{2, 4, nn::ActQuantizer::kPact});
  {
    at::NoGradGuard no_grad;
    net->act2->alpha.fill_(2.5);
  }
  Data d = MakeData(64, 16, 16, 8);
  absl::StatusOr<SensitivityReport> r = MeasureSensitivity(*net, *d.calibration, OneBatch());
  ASSERT_TRUE(r.ok()) << r.status();
  const at::Tensor q1 = net->conv1->quantized_weight().detach().abs().reshape({4, -1}).mean(1);
  const at::Tensor w1 = net->conv1->weight.detach().abs().reshape({4, -1}).mean(1);
  for (const GroupSensitivity& g : r->groups) {
    if (g.is_weight && g.layer == "conv1") {
      EXPECT_NEAR(g.mean_abs_quantized_weight, q1[g.group].item<double>(), 1e-7);
      EXPECT_NEAR(g.mean_abs_weight, w1[g.group].item<double>(), 1e-7);
      EXPECT_NE(g.mean_abs_quantized_weight, g.mean_abs_weight);  // 2-bit levels differ from the floats
    }
    if (!g.is_weight) {
      EXPECT_DOUBLE_EQ(g.clip, g.layer == "act2" ? 2.5 : 6.0) << g.layer;  // PACT alpha
    }
  }
}

TEST(SensitivityTest, ClipIsTheTopOfEachActivationQuantizersRange) {
  EXPECT_EQ(nn::QAct(nn::QActOptions(nn::ActQuantizer::kNone).bits(4))->clip(), 0.0);
  EXPECT_EQ(nn::QAct(nn::QActOptions(nn::ActQuantizer::kDorefa).bits(4))->clip(), 1.0);
  EXPECT_EQ(nn::QAct(nn::QActOptions(nn::ActQuantizer::kPact).bits(4).alpha_init(3.0))->clip(), 3.0);
  EXPECT_NEAR(nn::QAct(nn::QActOptions(nn::ActQuantizer::kHwgq).bits(2))->clip(), 0.538 * 3, 1e-6);
  nn::QAct lsq(nn::QActOptions(nn::ActQuantizer::kLsq).bits(3));
  {
    at::NoGradGuard no_grad;
    lsq->step.fill_(0.25);
  }
  EXPECT_DOUBLE_EQ(lsq->clip(), 0.25 * 7);
  EXPECT_EQ(nn::QAct(nn::QActOptions(nn::ActQuantizer::kPact).bits(32))->clip(), 0.0);  // full precision
}

TEST(SensitivityTest, SelectionTakesTheNLeastSensitiveEligibleGroups) {
  std::vector<GroupSensitivity> groups(8);
  const double energy[] = {5, 1, 0.1, 7, 0.1, 2, 0.01, 3};
  const int64_t bits[] = {4, 4, 1, 4, 4, 32, 4, 2};  // index 2 at the floor, 5 full precision
  for (size_t i = 0; i < groups.size(); ++i) {
    groups[i].energy = energy[i];
    groups[i].bits = bits[i];
  }
  // Paper scores 2^-2B E: 0: 5/256, 1: 1/256, 3: 7/256, 4: 0.1/256, 6: 0.01/256, 7: 3/16.
  EXPECT_EQ(SelectForReduction(groups, SensitivityMetric::kPaper, 3, 1), (std::vector<size_t>{1, 4, 6}));
  EXPECT_EQ(SelectForReduction(groups, SensitivityMetric::kPaper, 100, 1), (std::vector<size_t>{0, 1, 3, 4, 6, 7}));
  EXPECT_EQ(SelectForReduction(groups, SensitivityMetric::kPaper, 0, 1), (std::vector<size_t>{}));
  EXPECT_EQ(SelectForReduction(groups, SensitivityMetric::kPaper, 100, 2), (std::vector<size_t>{0, 1, 3, 4, 6}));
  // The authors' threshold rule: the 4th lowest score (n = 3) is the threshold and
  // everything at or below it goes: 1, 4, 6 and 0 (5/256).
  EXPECT_EQ(SelectForReduction(groups, SensitivityMetric::kPaper, 3, 1, ReductionRule::kThreshold),
            (std::vector<size_t>{0, 1, 4, 6}));
  EXPECT_EQ(SelectForReduction(groups, SensitivityMetric::kPaper, 5, 1, ReductionRule::kThreshold),
            (std::vector<size_t>{0, 1, 3, 4, 6, 7}));  // n + 1 = all six eligible
  EXPECT_EQ(SelectForReduction(groups, SensitivityMetric::kPaper, 100, 1, ReductionRule::kThreshold),
            (std::vector<size_t>{0, 1, 3, 4, 6, 7}));
  // Ties go to the lower index; under the threshold rule a tie at the threshold goes too.
  for (GroupSensitivity& g : groups) g.energy = 1;
  EXPECT_EQ(SelectForReduction(groups, SensitivityMetric::kPaper, 2, 1), (std::vector<size_t>{0, 1}));
  groups[7].bits = 4;  // now six eligible groups of equal score
  EXPECT_EQ(SelectForReduction(groups, SensitivityMetric::kPaper, 2, 1, ReductionRule::kThreshold),
            (std::vector<size_t>{0, 1, 3, 4, 6, 7}));
}

TEST(SensitivityTest, ReductionLowersExactlyTheSelectedGroupsAndNeverBelowOneBit) {
  at::manual_seed(13);
  testing::TinyNetOptions to;
  to.weight_bits = 3;
  to.act_bits = 4;
  auto net_ptr = std::make_shared<TinyNet>(to);
  TinyNet& net = *net_ptr;
  Data d = MakeData(64, 16, 16, 8);
  absl::StatusOr<SensitivityReport> r = MeasureSensitivity(net, *d.calibration, {});
  ASSERT_TRUE(r.ok()) << r.status();
  ImpqOptions o;
  o.weight_schedule = {{0, 5}};
  o.act_schedule = {{0, 1}};
  std::vector<GroupSensitivity> weights, acts;
  for (const GroupSensitivity& g : r->groups) (g.is_weight ? weights : acts).push_back(g);
  const std::vector<size_t> want_w = SelectForReduction(weights, o.metric, 5, 1);
  const std::vector<size_t> want_a = SelectForReduction(acts, o.metric, 1, 2);
  const Allocation before = ReadAllocation(net);
  absl::StatusOr<std::pair<int64_t, int64_t>> n = ImpqAllocator::Reduce(net, r->groups, o, 0);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->first, 5);
  EXPECT_EQ(n->second, 1);
  const Allocation after = ReadAllocation(net);
  ASSERT_EQ(after.groups.size(), before.groups.size());
  size_t wi = 0, ai = 0;
  for (size_t i = 0; i < after.groups.size(); ++i) {
    const bool selected = after.groups[i].is_weight
                              ? std::count(want_w.begin(), want_w.end(), wi++) > 0
                              : std::count(want_a.begin(), want_a.end(), ai++) > 0;
    EXPECT_EQ(after.groups[i].bits, before.groups[i].bits - (selected ? 1 : 0)) << after.groups[i].layer;
  }
  // Keep reducing with the same scores: weights stop at 1 bit, activations at 2.
  for (int it = 0; it < 20; ++it) {
    absl::StatusOr<SensitivityReport> again = MeasureSensitivity(net, *d.calibration, OneBatch());
    ASSERT_TRUE(again.ok());
    ASSERT_TRUE(ImpqAllocator::Reduce(net, again->groups, o, it + 1).ok());
  }
  for (const GroupBits& g : ReadAllocation(net).groups) EXPECT_EQ(g.bits, g.is_weight ? 1 : 2) << g.layer;
  absl::StatusOr<std::pair<int64_t, int64_t>> none = ImpqAllocator::Reduce(
      net, MeasureSensitivity(net, *d.calibration, OneBatch())->groups, o, 30);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->first + none->second, 0);
}

TEST(SensitivityTest, ScheduleParsing) {
  EXPECT_FALSE(ParseSchedule("0:400,x").ok());
  EXPECT_FALSE(ParseSchedule("3:1,2:5").ok());
  EXPECT_EQ(*ParseSchedule("0:400, 3:200,4:150"), (Schedule{{0, 400}, {3, 200}, {4, 150}}));
  const Schedule s = *ParseSchedule("0:400,3:200,4:150");
  EXPECT_EQ(GroupsAt(s, 0), 400);
  EXPECT_EQ(GroupsAt(s, 2), 400);
  EXPECT_EQ(GroupsAt(s, 3), 200);
  EXPECT_EQ(GroupsAt(s, 9), 150);
  EXPECT_EQ(GroupsAt(*ParseSchedule(""), 0), 0);
}

}  // namespace
}  // namespace mpq::alloc
