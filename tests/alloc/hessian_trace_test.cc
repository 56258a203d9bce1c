// Hutchinson's per-layer Hessian trace against the exact trace: by basis vectors
// (Tr H_l = sum_j e_j^T H_l e_j, one Hessian-vector product per weight) for the two
// convolutions, and in closed form for the classifier (cross-entropy of a linear layer:
// H_W = (diag p - p p^T) (x) a a^T per example, so Tr = mean over examples of
// sum_k p_k (1 - p_k) |a|^2).
#include "lib/alloc/hessian_trace.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <csignal>

#include "lib/runtime/interrupt.h"
#include "tests/alloc/tiny_net.h"

namespace mpq::alloc {
namespace {

using testing::MakeData;
using testing::TinyNet;

class HessianTraceTest : public ::testing::Test {
 protected:
  void SetUp() override { at::manual_seed(11); }
};

// The mean-loss Hessian block of `weight` times v, over the whole loader.
at::Tensor HessianVector(models::Model& net, data::DataLoader& loader, const at::Tensor& weight, const at::Tensor& v) {
  at::Tensor total = at::zeros_like(weight);
  int64_t n = 0;
  loader.StartEpoch(0);
  data::Batch b;
  while (*loader.Next(&b)) {
    const at::Tensor loss = at::cross_entropy_loss(net.forward(b.images), b.labels);
    const at::Tensor g = torch::autograd::grad({loss}, {weight}, {}, true, true)[0];
    total += torch::autograd::grad({(g * v).sum()}, {weight})[0] * static_cast<double>(b.labels.size(0));
    n += b.labels.size(0);
  }
  return total / static_cast<double>(n);
}

// H_l as an N x N matrix (float64), one Hessian-vector product per basis vector.
at::Tensor ExactHessian(models::Model& net, data::DataLoader& loader, const at::Tensor& weight) {
  const int64_t n = weight.numel();
  at::Tensor h = at::zeros({n, n}, at::kDouble);
  for (int64_t j = 0; j < n; ++j) {
    at::Tensor e = at::zeros({n});
    e[j] = 1;
    h.select(1, j).copy_(HessianVector(net, loader, weight, e.view(weight.sizes())).flatten().to(at::kDouble));
  }
  return h;
}

double ExactClassifierTrace(TinyNet& net, data::DataLoader& loader) {
  at::NoGradGuard no_grad;
  double total = 0;
  int64_t n = 0;
  loader.StartEpoch(0);
  data::Batch b;
  while (*loader.Next(&b)) {
    const at::Tensor a = net.act2(at::relu(net.conv2(net.act1(at::relu(net.conv1(b.images)))))).flatten(1);
    const at::Tensor p = at::softmax(net.fc(a), 1).to(at::kDouble);
    total += ((p * (1 - p)).sum(1) * a.to(at::kDouble).square().sum(1)).sum().item<double>();
    n += b.labels.size(0);
  }
  return total / static_cast<double>(n);
}

// Per layer, each sample is v^T H_l v exactly: the estimate equals the mean of those
// quadratic forms computed from the exact Hessian, for the same vectors.
TEST_F(HessianTraceTest, PerLayerSamplesAreTheExactQuadraticForms) {
  testing::Data d = MakeData();
  TinyNet net({});
  HutchinsonOptions o;
  o.max_iterations = 20;
  o.tolerance = 0;  // never stop early
  HutchinsonState state;
  ASSERT_TRUE(EstimateHessianTraces(net, *d.calibration, o, &state, nullptr).ok());
  net.eval();
  const at::Tensor weights[2] = {net.conv1->weight, net.conv2->weight};
  for (int64_t l = 0; l < 2; ++l) {
    SCOPED_TRACE(state.layers[l].layer);
    const at::Tensor h = ExactHessian(net, *d.calibration, weights[l]);
    double sum = 0;
    for (int64_t k = 1; k <= o.max_iterations; ++k) {
      const at::Tensor v = HutchinsonVector(weights[l], o.seed, k, l).flatten().to(at::kDouble);
      sum += v.dot(h.mv(v)).item<double>();
    }
    const double expected = sum / o.max_iterations;
    // float32 Hessian-vector products summed over ~100 weights: 1e-4 relative to the
    // sum of |terms| (bounded by the trace of |H| times N, here within 20x the mean).
    EXPECT_NEAR(state.layers[l].trace, expected, 1e-4 * h.abs().sum().item<double>() / weights[l].numel());
    EXPECT_EQ(state.layers[l].iterations, o.max_iterations);
    // And the exact trace, for the record: the estimate is unbiased.
    EXPECT_NEAR(state.layers[l].trace, h.trace().item<double>(), 5 * state.layers[l].StandardError());
  }
}

// The mean-loss gradient of `weight` over the loader.
at::Tensor Gradient(models::Model& net, data::DataLoader& loader, const at::Tensor& weight) {
  at::Tensor total = at::zeros_like(weight);
  int64_t n = 0;
  loader.StartEpoch(0);
  data::Batch b;
  while (*loader.Next(&b)) {
    const at::Tensor loss = at::cross_entropy_loss(net.forward(b.images), b.labels);
    total += torch::autograd::grad({loss}, {weight})[0] * static_cast<double>(b.labels.size(0));
    n += b.labels.size(0);
  }
  return total / static_cast<double>(n);
}

// TinyNet with tanh for ReLU: finite differences of a ReLU network's gradient jump where a
// pre-activation crosses zero (a kink double back-propagation rightly ignores, but which
// central differences of any step size see), so the comparison needs a smooth network.
class SmoothNet : public models::Model {
 public:
  // 32 bits: the float network, through the quantizer's pass-through (as the runner's).
  SmoothNet() {
    conv1 = register_module("conv1", nn::QConv2d(nn::QConv2dOptions(1, 4, 3).padding(1).bits(32)));
    conv2 = register_module("conv2", nn::QConv2d(nn::QConv2dOptions(4, 4, 3).stride(2).padding(1).groups(2).bits(32)));
    fc = register_module("fc", nn::QLinear(nn::QLinearOptions(4 * 16 * 16, 10).bits(32)));
  }
  at::Tensor forward(const at::Tensor& x) override {
    return fc(at::tanh(conv2(at::tanh(conv1(x / 40)))).flatten(1));
  }
  nn::QConv2d conv1{nullptr}, conv2{nullptr};
  nn::QLinear fc{nullptr};
};

// H v by double back-propagation against central differences of the gradient,
// (g(w + e v) - g(w - e v)) / 2e, and the estimator's first sample v^T H v against v . that.
TEST_F(HessianTraceTest, HessianVectorProductsMatchFiniteDifferencesOfTheGradient) {
  testing::Data d = MakeData();
  SmoothNet net;
  net.eval();
  HutchinsonOptions o;
  o.max_iterations = 1;
  o.tolerance = 0;
  HutchinsonState state;
  ASSERT_TRUE(EstimateHessianTraces(net, *d.calibration, o, &state, nullptr).ok());
  const at::Tensor w = net.conv2->weight;
  const at::Tensor v = HutchinsonVector(w, o.seed, 1, 1);
  const at::Tensor hv = HessianVector(net, *d.calibration, w, v);
  const double e = 1e-3;
  at::Tensor plus, minus;
  {
    at::NoGradGuard no_grad;
    w.add_(v, e);
  }
  plus = Gradient(net, *d.calibration, w);
  {
    at::NoGradGuard no_grad;
    w.add_(v, -2 * e);
  }
  minus = Gradient(net, *d.calibration, w);
  {
    at::NoGradGuard no_grad;
    w.add_(v, e);
  }
  const at::Tensor fd = ((plus - minus) / (2 * e)).to(at::kDouble);
  // Central differences err by O(e^2 |third derivative|) and float32 gradients by ~1e-7 |g|
  // / e per element (~1e-4 relative here): 1% of |H v|.
  const double scale = fd.norm().item<double>();
  EXPECT_GT(scale, 0);
  EXPECT_LT((hv.to(at::kDouble) - fd).norm().item<double>(), 0.01 * scale);
  const double vfd = (fd * v.to(at::kDouble)).sum().item<double>();
  EXPECT_NEAR(state.layers[1].trace, vfd, 0.01 * scale * std::sqrt(static_cast<double>(v.numel())));
}

// Both product modes are unbiased: within 5 standard errors of the exact trace (a false
// failure has probability ~6e-7 for normal errors; the seeds are fixed anyway).
TEST_F(HessianTraceTest, BothProductModesEstimateTheExactTrace) {
  testing::Data d = MakeData();
  TinyNet net({});
  net.eval();
  const double exact[3] = {ExactHessian(net, *d.calibration, net.conv1->weight).trace().item<double>(),
                           ExactHessian(net, *d.calibration, net.conv2->weight).trace().item<double>(),
                           ExactClassifierTrace(net, *d.calibration)};
  for (TraceProducts products : {TraceProducts::kPerLayer, TraceProducts::kJoint}) {
    SCOPED_TRACE(Name(products));
    HutchinsonOptions o;
    o.products = products;
    o.max_iterations = 200;
    o.tolerance = 0;
    HutchinsonState state;
    ASSERT_TRUE(EstimateHessianTraces(net, *d.calibration, o, &state, nullptr).ok());
    ASSERT_EQ(state.layers.size(), 3u);
    for (int i = 0; i < 3; ++i) {
      const LayerTrace& t = state.layers[i];
      SCOPED_TRACE(t.layer);
      EXPECT_GT(exact[i], 0);
      EXPECT_GT(t.StandardError(), 0);
      EXPECT_NEAR(t.trace, exact[i], 5 * t.StandardError()) << "exact " << exact[i];
    }
  }
}

// A layer stops at the first iteration whose relative change of the mean is below the
// tolerance, and takes no sample after that; the others go on.
TEST_F(HessianTraceTest, EachLayerStopsByPyHessiansRule) {
  testing::Data d = MakeData();
  TinyNet net({});
  HutchinsonOptions o;
  o.max_iterations = 40;
  o.tolerance = 0.05;
  HutchinsonState state;
  std::vector<HutchinsonState> history;
  ASSERT_TRUE(EstimateHessianTraces(net, *d.calibration, o, &state, [&](const HutchinsonState& s) {
                history.push_back(s);
                return absl::OkStatus();
              }).ok());
  ASSERT_EQ(static_cast<int64_t>(history.size()), state.iteration);
  for (size_t l = 0; l < state.layers.size(); ++l) {
    SCOPED_TRACE(state.layers[l].layer);
    int64_t taken = 0;
    for (const HutchinsonState& s : history) {
      const LayerTrace& t = s.layers[l];
      if (t.iterations == taken) continue;  // stopped earlier
      ASSERT_EQ(t.iterations, taken + 1);
      ASSERT_EQ(taken, t.iterations - 1);
      EXPECT_EQ(t.converged, t.relative_change < o.tolerance);
      taken = t.iterations;
      if (t.converged) break;
    }
    EXPECT_EQ(state.layers[l].iterations, taken);
    EXPECT_TRUE(state.layers[l].converged || taken == o.max_iterations);
  }
  // A tolerance this loose stops some layer before the cap (seeded, so not by chance).
  bool any_early = false;
  for (const LayerTrace& t : state.layers) any_early |= t.converged && t.iterations < o.max_iterations;
  EXPECT_TRUE(any_early);
  EXPECT_TRUE(net.is_training());  // the mode is restored
}

TEST_F(HessianTraceTest, AResumedEstimateEqualsAnUninterruptedOne) {
  testing::Data d = MakeData();
  TinyNet net({});
  HutchinsonOptions o;
  o.max_iterations = 6;
  o.tolerance = 0;
  HutchinsonState straight;
  ASSERT_TRUE(EstimateHessianTraces(net, *d.calibration, o, &straight, nullptr).ok());
  HutchinsonState saved;
  HutchinsonState interrupted;
  absl::Status s = EstimateHessianTraces(net, *d.calibration, o, &interrupted, [&](const HutchinsonState& st) {
    saved = st;
    return st.iteration == 3 ? absl::CancelledError("killed") : absl::OkStatus();
  });
  ASSERT_EQ(s.code(), absl::StatusCode::kCancelled);
  ASSERT_EQ(saved.iteration, 3);
  ASSERT_TRUE(EstimateHessianTraces(net, *d.calibration, o, &saved, nullptr).ok());
  ASSERT_EQ(saved.iteration, 6);
  for (size_t i = 0; i < straight.layers.size(); ++i) {
    EXPECT_EQ(saved.layers[i].trace, straight.layers[i].trace) << straight.layers[i].layer;
    EXPECT_EQ(saved.layers[i].sum_squares, straight.layers[i].sum_squares);
  }
}

TEST_F(HessianTraceTest, ASignalStopsTheEstimateBetweenIterations) {
  testing::Data d = MakeData();
  TinyNet net({});
  HutchinsonOptions o;
  o.max_iterations = 4;
  o.tolerance = 0;
  HutchinsonState state;
  absl::Status s = EstimateHessianTraces(net, *d.calibration, o, &state, [&](const HutchinsonState& st) {
    if (st.iteration == 2) runtime::SetInterruptForTesting(SIGTERM);
    return absl::OkStatus();
  });
  runtime::SetInterruptForTesting(0);
  ASSERT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("interrupted by SIGTERM during Hutchinson iteration 3"));
  EXPECT_EQ(state.iteration, 2);  // the finished iterations are kept
  ASSERT_TRUE(EstimateHessianTraces(net, *d.calibration, o, &state, nullptr).ok());
  EXPECT_EQ(state.iteration, 4);
}

TEST_F(HessianTraceTest, AStateOfAnotherNetworkIsRefused) {
  testing::Data d = MakeData();
  TinyNet net({});
  HutchinsonState state;
  state.layers.resize(2);
  const absl::Status s = EstimateHessianTraces(net, *d.calibration, {}, &state, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("saved state has 2 layers but the model 3"), std::string::npos) << s;
}

}  // namespace
}  // namespace mpq::alloc
