// Training-step throughput of every registered model, full precision against W4A4
// quantization-aware training (IMPQ's Lin weights per channel + PACT activations), in
// one run: forward, backward and an SGD step on random data.
//
//   bazel run //tests/models:train_step_benchmark -- --benchmark_min_time=2
//
// Rows: <model>/fp32 then <model>/w4a4; the w4a4 row reports x_step_time_vs_fp32 (goal
// <= 1.3). CIFAR networks at 32x32, batch 64; ImageNet networks at their default size,
// batch 8 (their images/s on 2 cores is what it is: full ImageNet training belongs on a GPU).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <torch/optim/sgd.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "lib/models/registry.h"
#include "lib/runtime/malloc_tuning.h"

namespace mpq::models {
namespace {

std::map<std::string, double>& StepSeconds() {
  static std::map<std::string, double> seconds;
  return seconds;
}

void TrainStep(benchmark::State& state, const ModelEntry* entry, bool quantized) {
  ModelOptions o;
  o.num_classes = entry->default_classes;
  o.image_size = entry->default_image_size;
  if (quantized) {
    o.quant.weight_quantizer = nn::WeightQuantizer::kLin;
    o.quant.weight_bits = 4;
    o.quant.act_quantizer = nn::ActQuantizer::kPact;
    o.quant.act_bits = 4;
  }
  const int64_t batch = entry->default_image_size <= 32 ? 64 : 8;
  std::shared_ptr<Model> net = entry->make(o);
  net->train();
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const at::Tensor x = at::randn({batch, 3, o.image_size, o.image_size});
  const at::Tensor y = at::randint(0, o.num_classes, {batch}, at::kLong);
  auto step = [&] {
    sgd.zero_grad();
    at::cross_entropy_loss(net->forward(x), y).backward();
    sgd.step();
  };
  // Warm-up: the first steps grow the heap (and create momentum buffers); measured rows
  // must not pay that, or whichever configuration runs first looks slower.
  for (int i = 0; i < 3; ++i) step();
  int64_t steps = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    step();
    ++steps;
  }
  const double per_step = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / steps;
  StepSeconds()[std::string(entry->name) + (quantized ? "/w4a4" : "/fp32")] = per_step;
  state.counters["images_per_second"] = batch / per_step;
  state.counters["batch"] = static_cast<double>(batch);
  if (quantized) state.counters["x_step_time_vs_fp32"] = per_step / StepSeconds()[std::string(entry->name) + "/fp32"];
}

}  // namespace
}  // namespace mpq::models

int main(int argc, char** argv) {
  mpq::runtime::TuneMallocForRepeatedLargeAllocations();
  at::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  for (const mpq::models::ModelEntry& e : mpq::models::Models()) {
    for (bool quantized : {false, true}) {
      benchmark::RegisterBenchmark((std::string(e.name) + (quantized ? "/w4a4" : "/fp32")).c_str(),
                                   [&e, quantized](benchmark::State& s) { mpq::models::TrainStep(s, &e, quantized); })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
