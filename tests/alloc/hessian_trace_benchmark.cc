// What HAWQ-V3's sensitivity costs: one Hutchinson iteration over 256 calibration images
// (lib/alloc/hessian_trace.h), with each layer's product taken alone (per_layer: one
// second-order backward pass per layer) and with one product for all layers (joint), against
// one training epoch over the same 256 images (forward, backward, SGD step), on a
// 1-channel ResNet-20 at 32x32 (the Fashion-MNIST rows), in one run. A whole trace is up to
// trace_max_iterations (100) iterations.
// Batched products: 8 Hutchinson vectors on one batch of 64 images (all layers jointly),
// as 8 iterations of one vector each (forward, first-order backward with create_graph,
// one second-order backward: today's joint mode), as one forward and first-order pass
// and 8 second-order backward passes, and as one forward and first-order pass and one
// vmap-batched second-order backward for all 8 (tests/alloc/batched_hvp.h).
//
//   bazel run -c opt //tests/alloc:hessian_trace_benchmark -- --benchmark_min_time=2
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <torch/optim/sgd.h>

#include <string>

#include "lib/alloc/hessian_trace.h"
#include "lib/models/resnet.h"
#include "tests/alloc/batched_hvp.h"
#include "tests/alloc/label_times_reporter.h"
#include "tests/alloc/tiny_net.h"

namespace mpq::alloc {
namespace {

constexpr int64_t kImages = 256, kBatch = 64;
const char* kLabels[] = {"training_epoch", "trace_iteration_per_layer", "trace_iteration_joint"};
constexpr int64_t kVectors = 8;
const char* kHvpLabels[] = {"hvp_x8_one_per_iteration", "hvp_x8_looped", "hvp_x8_batched"};

void BM_Pass(benchmark::State& state) {
  const int64_t mode = state.range(0);
  at::set_num_threads(2);
  at::manual_seed(1);
  testing::Data d = testing::MakeData(kImages, 16, kImages, kBatch);
  models::ModelOptions o;
  o.in_channels = 1;
  std::shared_ptr<models::Model> net = models::MakeResNet20(o);
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  auto epoch = [&] {
    net->train();
    d.calibration->StartEpoch(0);
    data::Batch b;
    while (*d.calibration->Next(&b)) {
      sgd.zero_grad();
      at::cross_entropy_loss(net->forward(b.images), b.labels).backward();
      sgd.step();
    }
  };
  HutchinsonOptions h;
  h.max_iterations = 1;
  h.tolerance = 0;
  h.products = mode == 2 ? TraceProducts::kJoint : TraceProducts::kPerLayer;
  auto iteration = [&] {
    HutchinsonState s;
    if (!EstimateHessianTraces(*net, *d.calibration, h, &s, nullptr).ok()) state.SkipWithError("trace failed");
  };
  if (mode == 0) epoch(); else iteration();  // warm-up
  for (auto _ : state) {
    if (mode == 0) epoch(); else iteration();
  }
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kImages), benchmark::Counter::kIsRate);
  state.SetLabel(kLabels[mode]);
}
BENCHMARK(BM_Pass)->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_HessianVectorProducts(benchmark::State& state) {
  const int64_t mode = state.range(0);
  at::set_num_threads(2);
  at::manual_seed(1);
  models::ModelOptions o;
  o.in_channels = 1;
  std::shared_ptr<models::Model> net = models::MakeResNet20(o);
  net->eval();
  std::vector<at::Tensor> weights;
  for (const auto& p : net->named_parameters()) {
    if (p.key().find("weight") != std::string::npos && p.value().dim() > 1) weights.push_back(p.value());
  }
  const at::Tensor x = at::randn({kBatch, 1, 32, 32});
  const at::Tensor y = at::randint(0, 10, {kBatch});
  const std::vector<at::Tensor> v = testing::RademacherVectors(weights, kVectors);
  auto gradients = [&] {
    const at::Tensor loss = at::cross_entropy_loss(net->forward(x), y);
    return torch::autograd::grad({loss}, weights, {}, /*retain_graph=*/true, /*create_graph=*/true);
  };
  auto products = [&] {
    if (mode == 0) {
      for (int64_t k = 0; k < kVectors; ++k) {
        std::vector<at::Tensor> vk;
        for (const at::Tensor& t : v) vk.push_back(t[k]);
        torch::autograd::grad(gradients(), weights, vk, /*retain_graph=*/false);
      }
    } else if (mode == 1) {
      testing::LoopedHessianVectorProducts(gradients(), weights, v);
    } else {
      testing::BatchedHessianVectorProducts(gradients(), weights, v);
    }
  };
  products();  // warm-up
  for (auto _ : state) products();
  state.SetLabel(kHvpLabels[mode]);
}
BENCHMARK(BM_HessianVectorProducts)->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace mpq::alloc

int main(int argc, char** argv) {
  return mpq::alloc::testing::RunBenchmarks(argc, argv, [](const mpq::alloc::testing::LabelTimes& t) {
    std::printf("\nResNet-20 (1x32x32), 256 images, time relative to one training epoch over them (same run):\n");
    for (const char* l : mpq::alloc::kLabels) mpq::alloc::testing::PrintRatio(t, "training_epoch", l);
    std::printf("per_layer relative to joint:\n");
    mpq::alloc::testing::PrintRatio(t, "trace_iteration_joint", "trace_iteration_per_layer");
    std::printf("8 Hessian-vector products on 64 images, relative to 8 iterations of one each:\n");
    for (const char* l : mpq::alloc::kHvpLabels) mpq::alloc::testing::PrintRatio(t, "hvp_x8_one_per_iteration", l);
  });
}
