// Random search: sampled allocations respect the budget, are reproducible from the
// seed and differ between seeds; CostOfAllocation equals measuring the model; an
// unreachable budget is a clear error; Run keeps the best sample on validation and
// resumes from its state directory.
#include "lib/alloc/random_search.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>

#include "lib/cost/cost_model.h"
#include "tests/alloc/tiny_net.h"

namespace mpq::alloc {
namespace {

using testing::TinyNet;

cost::CostReport Measure(TinyNet& net) {
  net.eval();
  return cost::MeasureModelCost(net, [&](const at::Tensor& x) { return net.forward(x); }, {1, 1, 32, 32});
}

// TinyNet at 4-bit weights and activations (named_modules needs a shared_ptr root).
std::shared_ptr<TinyNet> FourBitNet() {
  testing::TinyNetOptions to;
  to.weight_bits = 4;
  to.act_bits = 4;
  return std::make_shared<TinyNet>(to);
}

// A W4A4 TinyNet, its measured cost and its allocation: where every search starts.
struct Start {
  std::shared_ptr<TinyNet> net = FourBitNet();
  cost::CostReport report = Measure(*net);
  Allocation from = ReadAllocation(*net);
};

double CostIn(const cost::CostTotals& t, BudgetMetric metric) {
  return metric == BudgetMetric::kBitOps ? t.bitops : t.weight_bytes;
}

RandomSearchOptions Options() {
  RandomSearchOptions o;
  o.weight_candidates = {1, 2, 3, 4};
  o.act_candidates = {2, 4};
  return o;
}

TEST(RandomSearchTest, CostOfAllocationEqualsMeasuringTheModel) {
  at::manual_seed(1);
  const Start s;
  TinyNet& net = *s.net;
  const cost::CostReport& start = s.report;
  const Allocation a = *SampleAllocation(s.from, start.layers, Options(), 1e300, 7);
  ASSERT_TRUE(ApplyAllocation(net, a).ok());
  const cost::CostTotals measured = Measure(net).totals, computed = cost::CostOfAllocation(start.layers, a).totals;
  EXPECT_DOUBLE_EQ(computed.bitops, measured.bitops);
  EXPECT_DOUBLE_EQ(computed.weight_bytes, measured.weight_bytes);
  EXPECT_DOUBLE_EQ(computed.ba_eff, measured.ba_eff);
}

TEST(RandomSearchTest, SamplesRespectTheBudgetAndFollowTheSeed) {
  at::manual_seed(2);
  const Start s;
  const cost::CostReport& start = s.report;
  const Allocation& from = s.from;
  for (BudgetMetric metric : {BudgetMetric::kBitOps, BudgetMetric::kWeightSize}) {
    RandomSearchOptions o = Options();
    o.budget = metric;
    const double full = CostIn(start.totals, metric);
    for (uint64_t seed : {1, 2, 3}) {
      const Allocation a = *SampleAllocation(from, start.layers, o, 0.4 * full, seed);
      const cost::CostTotals t = cost::CostOfAllocation(start.layers, a).totals;
      EXPECT_LE(CostIn(t, metric), 0.4 * full);
      for (const GroupBits& g : a.groups) {
        const std::vector<int64_t>& c = g.is_weight ? o.weight_candidates : o.act_candidates;
        EXPECT_NE(std::find(c.begin(), c.end(), g.bits), c.end()) << g.layer << " " << g.bits;
      }
      const Allocation again = *SampleAllocation(from, start.layers, o, 0.4 * full, seed);
      ASSERT_EQ(again.groups.size(), a.groups.size());
      for (size_t i = 0; i < a.groups.size(); ++i) EXPECT_EQ(again.groups[i].bits, a.groups[i].bits);
    }
    // Another seed, another allocation (15 groups with 2-4 choices each).
    const Allocation a1 = *SampleAllocation(from, start.layers, o, full, 1);
    const Allocation a2 = *SampleAllocation(from, start.layers, o, full, 2);
    bool differ = false;
    for (size_t i = 0; i < a1.groups.size(); ++i) differ = differ || a1.groups[i].bits != a2.groups[i].bits;
    EXPECT_TRUE(differ);
  }
  // Below the cost of every group at its smallest candidate.
  absl::StatusOr<Allocation> none = SampleAllocation(from, start.layers, Options(), 1.0, 1);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("raise budget_fraction"), std::string::npos) << none.status();
}

// budget_bits: the budget is what a uniform network at those bits measures; fractions of
// the start stay as they were.
TEST(RandomSearchTest, BudgetBitsIsTheCostOfTheUniformNetworkAtThoseBits) {
  at::manual_seed(4);
  const Start s;
  TinyNet& net = *s.net;
  const cost::CostReport& start = s.report;
  const Allocation& from = s.from;
  for (BudgetMetric metric : {BudgetMetric::kBitOps, BudgetMetric::kWeightSize}) {
    RandomSearchOptions o = Options();
    o.budget = metric;
    const double full = CostIn(start.totals, metric);
    EXPECT_DOUBLE_EQ(BudgetOf(from, start.layers, o), 0.5 * full);
    o.budget_bits = 2;
    Allocation two = from;
    for (GroupBits& g : two.groups) {
      if (g.bits != nn::kFullPrecision) g.bits = 2;
    }
    ASSERT_TRUE(ApplyAllocation(net, two).ok());
    const cost::CostTotals t = Measure(net).totals;
    ASSERT_TRUE(ApplyAllocation(net, from).ok());
    const double expected = CostIn(t, metric);
    EXPECT_DOUBLE_EQ(BudgetOf(from, start.layers, o), expected);
    // From a W4A4 start: weights alone halve; BitOps fall to between a quarter (every
    // factor halved) and a half (the image input keeps its 8 bits).
    if (metric == BudgetMetric::kWeightSize) {
      EXPECT_NEAR(expected / full, 0.5, 0.05);
    } else {
      EXPECT_GT(expected / full, 0.25);
      EXPECT_LT(expected / full, 0.5);
    }
  }
}

TEST(RandomSearchTest, KeepsTheBestSampleOnValidationAndResumes) {
  at::manual_seed(3);
  std::shared_ptr<TinyNet> net = FourBitNet();
  testing::Data d = testing::MakeData();
  RandomSearchOptions o = Options();
  o.samples = 3;
  std::map<int64_t, AllocationPoint> points;
  AllocatorContext ctx;
  ctx.model = net.get();
  ctx.train = d.train.get();
  ctx.validation = d.val.get();
  ctx.training.threads = 1;
  ctx.training.progress = false;
  ctx.input_shape = {1, 1, 32, 32};
  ctx.state_dir = testing::TempDir("random_state");
  ctx.on_point = [&](const AllocationPoint& p) {
    points[p.index] = p;
    return absl::OkStatus();
  };
  absl::StatusOr<AllocatorResult> r = RandomSearchAllocator(o).Run(ctx);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(points.size(), 4u);  // the start and three samples
  int64_t best = 1;
  for (int64_t k = 2; k <= 3; ++k) {
    if (points[k].val_top1 > points[best].val_top1) best = k;
  }
  EXPECT_EQ(r->final_point, best);
  // BitOps are sums of integer products, exact in double on any CPU (no BLAS involved),
  // so the 1e-6 slack is far below one bit-op and cannot hide a budget violation.
  for (int64_t k = 1; k <= 3; ++k) EXPECT_LE(points[k].cost.bitops, 0.5 * points[0].cost.bitops + 1e-6);
  // A second call finds every sample done and returns the same result without training.
  points.clear();
  absl::StatusOr<AllocatorResult> again = RandomSearchAllocator(o).Run(ctx);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(points.empty());
  EXPECT_EQ(again->final_point, best);
}

}  // namespace
}  // namespace mpq::alloc
