// One BitPruning training step while the bitlengths are learned (lib/alloc/bitpruning.h:
// forward through the FracBits quantizers, loss = CE + lambda P(b), backward into weights
// and bitlengths, per-group gradient scaling, two SGD steps, projection and rounding of
// the bits), against a fixed-bit QAT step of the same network with the quantizers
// FracBits interpolates (symmetric per-channel W4 weights, PACT A4 activations, plain SGD
// step), in one run; the printed ratios are against the fixed-bit step. The bitlengths sit
// at 4.5 (every quantizer computes both neighbouring levels, the method's usual case) or
// at 4.0 (a fractional part of 0: one level, the fused kernels' fast path).
//
//   bazel run -c opt //tests/alloc:bitpruning_benchmark -- --benchmark_min_time=2
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <torch/optim/sgd.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "lib/alloc/bitpruning.h"
#include "lib/models/registry.h"
#include "tests/alloc/label_times_reporter.h"

namespace mpq::alloc {
namespace {

enum Mode { kFixed = 0, kLayerBits = 1, kKernelBits = 2, kKernelBitOps = 3, kKernelInteger = 4 };
const char* kModeName[] = {"fixed_w4a4_symmetric_pact", "bitpruning_layer_bits_b4.5", "bitpruning_kernel_bits_b4.5",
                           "bitpruning_kernel_bitops_b4.5", "bitpruning_kernel_bits_b4.0"};

void BM_TrainStep(benchmark::State& state) {
  const Mode mode = static_cast<Mode>(state.range(0));
  const int64_t batch = 64;
  const std::vector<int64_t> input_shape = {1, 3, 32, 32};
  at::set_num_threads(2);
  at::manual_seed(1);
  models::ModelOptions o;
  o.in_channels = 3;
  BitPruningOptions bp;
  bp.granularity = mode == kLayerBits ? nn::Granularity::kPerTensor : nn::Granularity::kPerChannel;
  bp.cost = mode == kKernelBitOps ? BitCost::kBitOps : BitCost::kBits;
  if (mode == kFixed) {
    o.quant.weight_quantizer = nn::WeightQuantizer::kSymmetric;
    o.quant.granularity = nn::Granularity::kPerChannel;
    o.quant.weight_bits = 4;
    o.quant.act_quantizer = nn::ActQuantizer::kPact;
    o.quant.act_bits = 4;
    o.quant.quantize_first_and_last = bp.quantize_first_and_last;
    o.quant.act_placement = models::ActPlacement::kConvInput;
  } else {
    o.quant = bp.Quant();
  }
  std::shared_ptr<models::Model> net = (*models::FindModel("resnet20"))->make(o);
  std::vector<FracBitsQuantizer> quantizers;
  std::vector<at::Tensor> weights, bits;
  for (const auto& p : net->named_parameters()) {
    (absl::EndsWith(p.key(), "fbits") ? bits : weights).push_back(p.value());
  }
  std::unique_ptr<BitPenalty> penalty;
  if (mode != kFixed) {
    quantizers = *FindFracBitsQuantizers(*net, input_shape);
    {
      at::NoGradGuard no_grad;
      for (const FracBitsQuantizer& q : quantizers) q.fbits.detach().fill_(mode == kKernelInteger ? 4.0 : 4.5);
    }
    ProjectBits(quantizers, bp.weight_bits_min, bp.act_bits_min, bp.bits_max);
    penalty = std::make_unique<BitPenalty>(*BitPenalty::Make(*net, input_shape, quantizers, bp.cost, bp.initial_bits));
  }
  torch::optim::SGD sgd(weights, torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(5e-4));
  std::unique_ptr<torch::optim::SGD> bits_sgd;
  if (!bits.empty()) bits_sgd = std::make_unique<torch::optim::SGD>(bits, torch::optim::SGDOptions(0.0).momentum(0.9));
  const at::Tensor x = at::randn({batch, 3, 32, 32});
  const at::Tensor y = at::randint(0, 10, {batch});
  net->train();
  // The bitlengths' learning rate is 0 here so that every step computes the same
  // fractional bits (the benchmark measures the step, not where the bits go).
  auto step = [&] {
    sgd.zero_grad();
    if (bits_sgd) bits_sgd->zero_grad();
    at::Tensor loss = at::cross_entropy_loss(net->forward(x), y);
    if (penalty) loss = loss + 1.0 * (*penalty)();
    loss.backward();
    if (penalty) ScaleBitsGradients(quantizers);
    sgd.step();
    if (bits_sgd) bits_sgd->step();
    if (penalty) ProjectBits(quantizers, bp.weight_bits_min, bp.act_bits_min, bp.bits_max);
  };
  testing::MeasureSteps(state, step, batch, kModeName[mode]);
}
BENCHMARK(BM_TrainStep)->DenseRange(kFixed, kKernelInteger)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace mpq::alloc

int main(int argc, char** argv) {
  return mpq::alloc::testing::RunBenchmarks(argc, argv, [](const mpq::alloc::testing::LabelTimes& t) {
    const std::string base = mpq::alloc::kModeName[mpq::alloc::kFixed];
    std::printf("\nResNet-20 (CIFAR size, batch 64, every layer quantized) time per training step relative to %s "
                "(same run):\n",
                base.c_str());
    for (const char* m : mpq::alloc::kModeName) mpq::alloc::testing::PrintRatio(t, base, m);
  });
}
