// EdMIPS: the composite convolution equals the parallel one, the complexity penalty's
// gradient matches finite differences, discretization picks the argmax (or samples
// reproducibly), and the allocator searches, reports, retrains and resumes.
#include "lib/alloc/edmips.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>

#include "lib/models/resnet.h"
#include "lib/nn/mixq.h"
#include "tests/alloc/tiny_net.h"

namespace mpq::alloc {
namespace {

models::ModelOptions SearchOptions(bool search) {
  models::ModelOptions o;
  o.in_channels = 1;
  o.quant.weight_quantizer = nn::WeightQuantizer::kHwgq;
  o.quant.granularity = nn::Granularity::kPerTensor;
  o.quant.weight_bits = 2;
  o.quant.act_quantizer = nn::ActQuantizer::kHwgq;
  o.quant.act_bits = 2;
  o.quant.quantize_first_and_last = false;
  if (search) o.quant.units = EdmipsOptions().SearchUnits();
  return o;
}

TEST(EdmipsTest, CompositeConvolutionEqualsParallelConvolutions) {
  at::manual_seed(3);
  nn::MixQConv2d composite(nn::MixQConv2dOptions(4, 6, {3, 1}).padding({1, 0}).stride(2));
  nn::MixQConv2d parallel(nn::MixQConv2dOptions(4, 6, {3, 1}).padding({1, 0}).stride(2).parallel(true));
  {
    at::NoGradGuard g;
    parallel->weight.copy_(composite->weight);
    composite->alpha.copy_(at::tensor({0.3, -0.2, 0.5, 0.1}));
    parallel->alpha.copy_(composite->alpha);
  }
  const at::Tensor x = at::randn({2, 4, 9, 7});
  const at::Tensor yc = composite(x), yp = parallel(x);
  ASSERT_EQ(yc.sizes(), yp.sizes());
  EXPECT_TRUE(at::allclose(yc, yp, 1e-4, 1e-5));
  const at::Tensor r = at::randn(yc.sizes());
  (yc * r).sum().backward();
  (yp * r).sum().backward();
  EXPECT_TRUE(at::allclose(composite->weight.grad(), parallel->weight.grad(), 1e-3, 1e-4));
  EXPECT_TRUE(at::allclose(composite->alpha.grad(), parallel->alpha.grad(), 1e-3, 1e-4));
}

TEST(EdmipsTest, PenaltyValueAndGradientMatchFiniteDifferences) {
  at::manual_seed(4);
  std::shared_ptr<models::Model> net = models::MakeResNet20(SearchOptions(true));
  absl::StatusOr<ExpectedBitOps> penalty = ExpectedBitOps::Build(*net, {1, 1, 32, 32});
  ASSERT_TRUE(penalty.ok()) << penalty.status();
  EXPECT_EQ(penalty->layers(), 18);  // ResNet-20 minus the first conv (FP)
  // At the uniform initialisation E[b_w] = 2.5 and E[b_a] = 3: the penalty is 7.5 times
  // the sum of the searched layers' MACs over the first one's (16 32x32 3x3 16->16 convs
  // in stage 1 ... = 6 + 6 * 0.5 ... per stage; computed from the geometry here).
  const double first = 16.0 * 16 * 9 * 32 * 32;
  double macs = 6 * first;                                   // stage 1: 6 convs 16->16 at 32x32
  macs += 32.0 * 16 * 9 * 16 * 16 + 5 * 32.0 * 32 * 9 * 16 * 16;  // stage 2
  macs += 64.0 * 32 * 9 * 8 * 8 + 5 * 64.0 * 64 * 9 * 8 * 8;      // stage 3
  EXPECT_NEAR((*penalty)().item<double>(), 7.5 * macs / first, 1e-3);

  std::vector<at::Tensor> alphas;
  for (const auto& m : net->modules(false)) {
    if (auto* c = dynamic_cast<nn::MixQConv2dImpl*>(m.get())) alphas.push_back(c->alpha);
    if (auto* a = dynamic_cast<nn::MixQActImpl*>(m.get())) alphas.push_back(a->alpha);
  }
  {
    at::NoGradGuard g;
    for (at::Tensor& a : alphas) a.copy_(at::randn(a.sizes()) * 0.5);
  }
  (*penalty)().backward();
  const double h = 1e-2;
  for (size_t k : {0ul, 1ul, 7ul, alphas.size() - 1}) {
    for (int64_t i = 0; i < alphas[k].numel(); ++i) {
      at::NoGradGuard g;
      const float saved = alphas[k][i].item<float>();
      alphas[k][i].fill_(saved + h);
      const double up = (*penalty)().item<double>();
      alphas[k][i].fill_(saved - h);
      const double down = (*penalty)().item<double>();
      alphas[k][i].fill_(saved);
      const double fd = (up - down) / (2 * h), an = alphas[k].grad()[i].item<double>();
      EXPECT_NEAR(an, fd, 2e-3 * std::max(1.0, std::fabs(fd))) << "alpha " << k << "[" << i << "]";
    }
  }
}

TEST(EdmipsTest, DiscretizationPicksTheArgmaxOrSamplesReproducibly) {
  at::manual_seed(5);
  std::shared_ptr<models::Model> net = models::MakeResNet20(SearchOptions(true));
  std::map<std::string, int64_t> want;
  int64_t k = 0;
  for (const auto& item : net->named_modules("", false)) {
    at::NoGradGuard g;
    if (auto* c = dynamic_cast<nn::MixQConv2dImpl*>(item.value().get())) {
      const int64_t pick = k++ % 4;  // candidates 1,2,3,4
      c->alpha.fill_(0);
      c->alpha[pick].fill_(1.0);
      want[item.key() + "/w"] = pick + 1;
    }
    if (auto* a = dynamic_cast<nn::MixQActImpl*>(item.value().get())) {
      const int64_t pick = k++ % 3;  // candidates 2,3,4
      a->alpha.fill_(0);
      a->alpha[pick].fill_(1.0);
      want[item.key() + "/a"] = pick + 2;
    }
  }
  const Allocation a = Discretize(*net, Discretization::kArgmax, 1);
  ASSERT_EQ(a.groups.size(), want.size());
  for (const GroupBits& g : a.groups) EXPECT_EQ(g.bits, want.at(g.layer + (g.is_weight ? "/w" : "/a"))) << g.layer;
  // Sampling: the same seed gives the same allocation; a near-one-hot alpha is followed.
  const Allocation s1 = Discretize(*net, Discretization::kSample, 7), s2 = Discretize(*net, Discretization::kSample, 7);
  for (size_t i = 0; i < s1.groups.size(); ++i) EXPECT_EQ(s1.groups[i].bits, s2.groups[i].bits);
  for (const auto& m : net->modules(false)) {
    at::NoGradGuard g;
    if (auto* c = dynamic_cast<nn::MixQConv2dImpl*>(m.get())) c->alpha.mul_(60);
    if (auto* ac = dynamic_cast<nn::MixQActImpl*>(m.get())) ac->alpha.mul_(60);
  }
  for (const GroupBits& g : Discretize(*net, Discretization::kSample, 9).groups) {
    EXPECT_EQ(g.bits, want.at(g.layer + (g.is_weight ? "/w" : "/a"))) << g.layer;
  }
}

TEST(EdmipsTest, SearchesReportsRetrainsAndResumes) {
  testing::Data d = testing::MakeData(192, 64, 16, 32);
  at::manual_seed(6);
  std::shared_ptr<models::Model> search = models::MakeResNet20(SearchOptions(true));
  std::vector<int64_t> point_ids;
  std::map<std::string, double> last_alpha;
  int metric_calls = 0;
  AllocatorContext c;
  c.model = search.get();
  c.train = d.train.get();
  c.validation = d.val.get();
  c.training.threads = 1;
  c.training.progress = false;
  c.training.epochs = 1;
  c.training.lr = 0.05;
  c.input_shape = {1, 1, 32, 32};
  c.state_dir = testing::TempDir("edmips_state");
  c.make_model = [] { return models::MakeResNet20(SearchOptions(false)); };
  c.on_point = [&](const AllocationPoint& p) {
    point_ids.push_back(p.index);
    return absl::OkStatus();
  };
  c.on_metrics = [&](int64_t, const std::vector<std::pair<std::string, double>>& m) {
    ++metric_calls;
    for (const auto& [k, v] : m) last_alpha[k] = v;
    return absl::OkStatus();
  };
  EdmipsOptions o;
  o.search_epochs = 2;
  o.cd = 0.01;
  absl::StatusOr<AllocatorResult> r = EdmipsAllocator(o).Run(c);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->completed);
  EXPECT_EQ(point_ids, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(metric_calls, 2);
  // softmax(alpha) of each searched layer sums to one; the penalty ratio is reported.
  EXPECT_TRUE(last_alpha.count("expected_bitops_ratio"));
  double sum = 0;
  for (int b = 1; b <= 4; ++b) sum += last_alpha.at("alpha:body.1.conv1.conv:w" + std::to_string(b));
  EXPECT_NEAR(sum, 1.0, 1e-9);
  ASSERT_NE(r->model, nullptr);
  // The retrained network carries the searched allocation (the search model's argmax).
  const Allocation searched = Discretize(*search, Discretization::kArgmax, 1);
  const Allocation final_alloc = ReadAllocation(*r->model);
  std::map<std::string, int64_t> final_bits;
  for (const GroupBits& g : final_alloc.groups) final_bits[g.layer + (g.is_weight ? "/w" : "/a")] = g.bits;
  for (const GroupBits& g : searched.groups) EXPECT_EQ(final_bits.at(g.layer + (g.is_weight ? "/w" : "/a")), g.bits);
  // Resume on a finished state: nothing is searched or reported again.
  absl::StatusOr<AllocatorResult> again = EdmipsAllocator(o).Run(c);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(point_ids.size(), 3u);
  EXPECT_EQ(metric_calls, 2);
}

TEST(EdmipsTest, FirstAndLastLayersAreUniformWhenQuantized) {
  models::ModelOptions o = SearchOptions(true);
  o.quant.quantize_first_and_last = true;
  std::shared_ptr<models::Model> net = models::MakeResNet20(o);
  absl::StatusOr<ExpectedBitOps> penalty = ExpectedBitOps::Build(*net, {1, 1, 32, 32});
  ASSERT_TRUE(penalty.ok()) << penalty.status();
  EXPECT_EQ(penalty->layers(), 18);  // the first conv is not searched
  int64_t uniform_weights = 0;
  for (const GroupBits& g : ReadAllocation(*net).groups) {
    if (g.is_weight && (g.layer == "body.0.conv" || g.layer == "head.fc")) {
      EXPECT_EQ(g.bits, 2) << g.layer;
      ++uniform_weights;
    }
  }
  EXPECT_EQ(uniform_weights, 2);
}

TEST(EdmipsTest, PlainModelIsRejected) {
  std::shared_ptr<models::Model> plain = models::MakeResNet20(SearchOptions(false));
  absl::StatusOr<ExpectedBitOps> p = ExpectedBitOps::Build(*plain, {1, 1, 32, 32});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("SearchUnits"), std::string::npos);
}

}  // namespace
}  // namespace mpq::alloc
