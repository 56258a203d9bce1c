// Training-step throughput of the harness's own models and quantizers on one device, for
// the GPU machine (built by tools/gpu/build.sh; no Google Benchmark there): forward,
// cross-entropy, backward and an SGD step with momentum on one random batch kept on the
// device, timed with the device synchronized, after warm-up steps.
//
//   build/gpu/step_benchmark --model=resnet20 --image_size=32 --batch=128 --bits=4 --device=cuda
//
// --bits=32 is FP32; 4 is W4A4 as in the quickstart: Lin weights per output channel and
// PACT activations, first conv and classifier included. One line of JSON per run:
// {"model", "image_size", "batch", "bits", "device", "steps", "seconds", "images_per_second"},
// the median of --repeats timings of --steps steps. tools/gpu/eager_step.py prints the same
// line for the same step written as plain PyTorch.
#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <torch/optim/sgd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "lib/models/registry.h"
#include "lib/runtime/device.h"

ABSL_FLAG(std::string, model, "resnet20", "A model of the zoo (lib/models/registry.h).");
ABSL_FLAG(int64_t, image_size, 32, "Input height = width.");
ABSL_FLAG(int64_t, batch, 128, "Batch size.");
ABSL_FLAG(int64_t, bits, 32, "32: FP32; else W<bits>A<bits> (Lin per channel + PACT).");
ABSL_FLAG(int64_t, classes, 10, "Classifier outputs.");
ABSL_FLAG(std::string, device, "auto", "auto, cpu, cuda, cuda:N.");
ABSL_FLAG(int64_t, warmup, 5, "Untimed steps first.");
ABSL_FLAG(int64_t, steps, 20, "Steps per timing.");
ABSL_FLAG(int64_t, repeats, 5, "Timings; the median is reported.");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<mpq::runtime::DeviceSetting> setting = mpq::runtime::ParseDeviceSetting(absl::GetFlag(FLAGS_device));
  absl::StatusOr<c10::Device> device =
      setting.ok() ? mpq::runtime::ResolveDevice(*setting) : absl::StatusOr<c10::Device>(setting.status());
  if (!device.ok()) {
    absl::FPrintF(stderr, "step_benchmark: --device: %s\n", device.status().message());
    return 2;
  }
  absl::StatusOr<const mpq::models::ModelEntry*> entry = mpq::models::FindModel(absl::GetFlag(FLAGS_model));
  if (!entry.ok()) {
    absl::FPrintF(stderr, "step_benchmark: --model: %s\n", entry.status().message());
    return 2;
  }
  const int64_t bits = absl::GetFlag(FLAGS_bits), batch = absl::GetFlag(FLAGS_batch);
  const int64_t size = absl::GetFlag(FLAGS_image_size);
  mpq::models::ModelOptions o;
  o.num_classes = absl::GetFlag(FLAGS_classes);
  o.image_size = size;
  if (bits != 32) {
    o.quant.weight_quantizer = mpq::nn::WeightQuantizer::kLin;
    o.quant.weight_bits = bits;
    o.quant.act_quantizer = mpq::nn::ActQuantizer::kPact;
    o.quant.act_bits = bits;
  }
  at::manual_seed(1);
  std::shared_ptr<mpq::models::Model> model = (*entry)->make(o);
  model->to(*device);
  model->train();
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(5e-4));
  const at::Tensor x = at::randn({batch, o.in_channels, size, size}).to(*device);
  const at::Tensor y = at::randint(0, o.num_classes, {batch}, at::kLong).to(*device);
  auto sync = [&] {
    if (device->is_cuda()) torch::cuda::synchronize(device->index());
  };
  auto step = [&] {
    sgd.zero_grad();
    at::cross_entropy_loss(model->forward(x), y).backward();
    sgd.step();
  };
  for (int64_t i = 0; i < absl::GetFlag(FLAGS_warmup); ++i) step();
  sync();
  std::vector<double> seconds;
  const int64_t steps = absl::GetFlag(FLAGS_steps);
  for (int64_t r = 0; r < absl::GetFlag(FLAGS_repeats); ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < steps; ++i) step();
    sync();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  absl::PrintF(
      "{\"impl\": \"mpqbench\", \"model\": \"%s\", \"image_size\": %d, \"batch\": %d, \"bits\": %d, \"device\": \"%s\", "
      "\"steps\": %d, \"seconds\": %.6f, \"images_per_second\": %.1f}\n",
      absl::GetFlag(FLAGS_model), size, batch, bits, device->str(), steps, median, steps * batch / median);
  return 0;
}
