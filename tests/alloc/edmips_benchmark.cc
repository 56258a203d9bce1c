// One EdMIPS search step (forward, backward with the complexity penalty, SGD step) with
// the composite convolution, with parallel convolutions (one per candidate, the naive
// form), and a uniform W2A2 HWGQ QAT step, on the same network, in one run; the printed
// ratios are against the composite step.
//
//   bazel run -c opt //tests/alloc:edmips_benchmark -- --benchmark_min_time=2
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <torch/optim/sgd.h>

#include <map>
#include <optional>
#include <string>

#include "lib/alloc/edmips.h"
#include "lib/models/registry.h"
#include "lib/nn/mixq.h"
#include "tests/alloc/label_times_reporter.h"

namespace mpq::alloc {
namespace {

enum Mode { kComposite = 0, kParallel = 1, kUniform = 2 };
const char* kModeName[] = {"composite", "parallel", "uniform_w2a2"};

struct Setup {
  std::string model;
  int64_t image, batch;
};
const Setup kSetups[] = {{"resnet20", 32, 64}, {"resnet18", 224, 8}};

void BM_SearchStep(benchmark::State& state) {
  const Setup& s = kSetups[state.range(0)];
  const Mode mode = static_cast<Mode>(state.range(1));
  at::set_num_threads(2);
  at::manual_seed(1);
  models::ModelOptions o;
  o.in_channels = 3;
  o.num_classes = s.model == "resnet20" ? 10 : 1000;
  o.image_size = s.image;
  o.quant.weight_quantizer = nn::WeightQuantizer::kHwgq;
  o.quant.granularity = nn::Granularity::kPerTensor;
  o.quant.weight_bits = 2;
  o.quant.act_quantizer = nn::ActQuantizer::kHwgq;
  o.quant.act_bits = 2;
  o.quant.quantize_first_and_last = false;
  if (mode != kUniform) o.quant.units = EdmipsOptions().SearchUnits();
  std::shared_ptr<models::Model> net = (*models::FindModel(s.model))->make(o);
  if (mode == kParallel) {
    for (const auto& m : net->modules(false)) {
      if (auto* c = dynamic_cast<nn::MixQConv2dImpl*>(m.get())) c->options.parallel(true);
    }
  }
  std::optional<ExpectedBitOps> penalty;
  if (mode != kUniform) penalty = *ExpectedBitOps::Build(*net, {1, 3, s.image, s.image});
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const at::Tensor x = at::randn({s.batch, 3, s.image, s.image});
  const at::Tensor y = at::randint(0, o.num_classes, {s.batch});
  net->train();
  auto step = [&] {
    sgd.zero_grad();
    at::Tensor loss = at::cross_entropy_loss(net->forward(x), y);
    if (penalty) loss = loss + (*penalty)() * 0.00335;
    loss.backward();
    sgd.step();
  };
  for (int i = 0; i < 3; ++i) step();  // warm-up: heap growth, lazy initialisation
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * s.batch);
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(state.iterations() * s.batch),
                                                  benchmark::Counter::kIsRate);
  state.SetLabel(std::string(s.model) + "/" + kModeName[mode]);
}
BENCHMARK(BM_SearchStep)
    ->ArgsProduct({{0, 1}, {kComposite, kParallel, kUniform}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Prints, per network, each mode's time per step relative to the composite step.
}  // namespace
}  // namespace mpq::alloc

int main(int argc, char** argv) {
  return mpq::alloc::testing::RunBenchmarks(argc, argv, [](const mpq::alloc::testing::LabelTimes& t) {
    std::printf("\nTime per search step relative to the composite convolution (same run):\n");
    for (const auto& s : mpq::alloc::kSetups) {
      for (const char* m : mpq::alloc::kModeName) {
        mpq::alloc::testing::PrintRatio(t, std::string(s.model) + "/composite", std::string(s.model) + "/" + m);
      }
    }
  });
}
