// One Uhlich et al. training step (forward, backward with the memory penalty, gradient
// clipping, SGD step, projection and bits refresh; lib/alloc/uhlich.h) for each
// parametrization, against a fixed-bit QAT step of the same network (Lin W4 weights,
// PACT A4 activations at the same ReLU outputs, plain SGD step), in one run; the printed
// ratios are against the fixed-bit step.
//
//   bazel run -c opt //tests/alloc:uhlich_benchmark -- --benchmark_min_time=2
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <torch/optim/sgd.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lib/alloc/uhlich.h"
#include "lib/models/registry.h"
#include "tests/alloc/label_times_reporter.h"

namespace mpq::alloc {
namespace {

enum Mode { kFixed = 0, kDeltaXmax = 1, kBXmax = 2, kXminXmax = 3 };
const char* kModeName[] = {"fixed_w4a4_lin_pact", "uhlich_delta_xmax", "uhlich_b_xmax", "uhlich_xmin_xmax"};

void BM_TrainStep(benchmark::State& state) {
  const Mode mode = static_cast<Mode>(state.range(0));
  const int64_t batch = 64;
  at::set_num_threads(2);
  at::manual_seed(1);
  models::ModelOptions o;
  o.in_channels = 3;
  if (mode == kFixed) {
    o.quant.weight_bits = 4;
    o.quant.act_quantizer = nn::ActQuantizer::kPact;
    o.quant.act_bits = 4;
    o.quant.act_placement = models::ActPlacement::kReluOutput;
    o.quant.granularity = nn::Granularity::kPerTensor;
  } else {
    UhlichOptions u;
    u.parametrization = mode == kDeltaXmax ? nn::UhlichParametrization::kDeltaXmax
                        : mode == kBXmax   ? nn::UhlichParametrization::kBXmax
                                           : nn::UhlichParametrization::kXminXmax;
    o.quant = u.Quant();
  }
  std::shared_ptr<models::Model> net = (*models::FindModel("resnet20"))->make(o);
  std::vector<UhlichQuantizer> quantizers;
  std::optional<MemoryPenalty> memory;
  if (mode != kFixed) {
    quantizers = *FindUhlichQuantizers(*net, {1, 3, 32, 32});
    InitializeQuantizers(quantizers, 4, 4, 0.125);
    memory.emplace(quantizers, ActMemory::kMax);
  }
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const at::Tensor x = at::randn({batch, 3, 32, 32});
  const at::Tensor y = at::randint(0, 10, {batch});
  net->train();
  auto step = [&] {
    sgd.zero_grad();
    at::Tensor loss = at::cross_entropy_loss(net->forward(x), y);
    if (memory) loss = loss + (*memory)(0.1, 70.1, 0.1, 8.1);  // the authors' targets
    loss.backward();
    if (memory) ClipGradients(quantizers);
    sgd.step();
    if (memory) {
      Project(quantizers);
      RefreshBits(quantizers);
    }
  };
  testing::MeasureSteps(state, step, batch, kModeName[mode]);
}
BENCHMARK(BM_TrainStep)->DenseRange(kFixed, kXminXmax)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace mpq::alloc

int main(int argc, char** argv) {
  return mpq::alloc::testing::RunBenchmarks(argc, argv, [](const mpq::alloc::testing::LabelTimes& t) {
    const std::string base = mpq::alloc::kModeName[mpq::alloc::kFixed];
    std::printf("\nResNet-20 (CIFAR size, batch 64) time per training step relative to %s (same run):\n",
                base.c_str());
    for (const char* m : mpq::alloc::kModeName) mpq::alloc::testing::PrintRatio(t, base, m);
  });
}
