// dp_step_benchmark: one process of tests/dist/dp_speedup.sh. Times training steps of the
// leaderboard's network (ResNet-20, Fashion-MNIST shape 1x32x32, W2A2: symmetric
// per-channel weights, PACT activations, first and last layers in float) on random data,
// alone or as a rank of a c10d group from the environment (RANK, WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT; lib/dist/data_parallel.h). Each rank steps on its share of
// the global batch and averages gradients with DataParallel::AverageGradients, timed
// apart from the rest of the step. Rank 0 prints one line:
//
//   world 2 threads 1 batch 128 steps 30: step 412.3 ms (all-reduce 3.1 ms, 0.8%), 310.4 img/s
//
//   dp_step_benchmark [--batch=128] [--steps=30] [--warmup=5] [--threads=N]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/optim/sgd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "lib/dist/data_parallel.h"
#include "lib/models/registry.h"
#include "lib/runtime/malloc_tuning.h"

namespace {

int64_t IntFlag(int argc, char** argv, const char* name, int64_t fallback) {
  const std::string prefix = std::string("--") + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) {
      int64_t v = 0;
      if (!absl::SimpleAtoi(argv[i] + prefix.size(), &v) || v < 0) {
        std::fprintf(stderr, "dp_step_benchmark: %s: expected a non-negative integer\n", argv[i]);
        std::exit(2);
      }
      return v;
    }
  }
  return fallback;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
  mpq::runtime::TuneMallocForRepeatedLargeAllocations();
  const int64_t batch = IntFlag(argc, argv, "batch", 128);
  const int64_t steps = IntFlag(argc, argv, "steps", 30);
  const int64_t warmup = IntFlag(argc, argv, "warmup", 5);
  const int64_t threads = IntFlag(argc, argv, "threads", 0);
  if (threads > 0) at::set_num_threads(static_cast<int>(threads));

  absl::StatusOr<mpq::dist::DistEnv> env = mpq::dist::DistEnvFromEnvironment();
  if (!env.ok()) {
    std::fprintf(stderr, "dp_step_benchmark: %s\n", std::string(env.status().message()).c_str());
    return 2;
  }
  std::unique_ptr<mpq::dist::DataParallel> dp;
  if (env->world_size > 1) {
    absl::StatusOr<std::unique_ptr<mpq::dist::DataParallel>> c = mpq::dist::DataParallel::Connect(*env);
    if (!c.ok()) {
      std::fprintf(stderr, "dp_step_benchmark: %s\n", std::string(c.status().message()).c_str());
      return 2;
    }
    dp = std::move(*c);
  }
  const int64_t world = env->world_size, rank = env->rank;
  // This rank's contiguous share of the global batch, as the loader's shards split it.
  const int64_t local = batch / world + (rank < batch % world ? 1 : 0);

  absl::StatusOr<const mpq::models::ModelEntry*> entry = mpq::models::FindModel("resnet20");
  if (!entry.ok()) return 2;
  mpq::models::ModelOptions o;
  o.in_channels = 1;
  o.quant.weight_quantizer = mpq::nn::WeightQuantizer::kSymmetric;
  o.quant.weight_bits = 2;
  o.quant.act_quantizer = mpq::nn::ActQuantizer::kPact;
  o.quant.act_bits = 2;
  o.quant.quantize_first_and_last = false;
  std::shared_ptr<mpq::models::Model> net = (*entry)->make(o);
  net->train();
  std::vector<at::Tensor> params = net->parameters();
  if (dp) {
    absl::Status s = dp->Broadcast(params);
    if (!s.ok()) return 2;
  }
  torch::optim::SGD sgd(params, torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-4));
  at::manual_seed(1 + rank);
  const at::Tensor x = at::randn({local, 1, 32, 32});
  const at::Tensor y = at::randint(0, 10, {local}, at::kLong);

  double step_s = 0, reduce_s = 0;
  for (int64_t i = 0; i < warmup + steps; ++i) {
    if (dp && !dp->Barrier().ok()) return 2;  // every rank starts the step together
    const auto start = std::chrono::steady_clock::now();
    sgd.zero_grad();
    at::cross_entropy_loss(net->forward(x), y).backward();
    const auto reduce_start = std::chrono::steady_clock::now();
    if (dp && !dp->AverageGradients(params, local).ok()) return 2;
    const double reduce = Seconds(reduce_start);
    sgd.step();
    const double step = Seconds(start);
    if (i >= warmup) {
      step_s += step;
      reduce_s += reduce;
    }
  }
  if (rank == 0) {
    const double per_step = step_s / steps, per_reduce = reduce_s / steps;
    std::printf("world %lld threads %d batch %lld steps %lld: step %.1f ms (all-reduce %.2f ms, %.1f%%), %.1f img/s\n",
                static_cast<long long>(world), at::get_num_threads(), static_cast<long long>(batch),
                static_cast<long long>(steps), 1e3 * per_step, 1e3 * per_reduce, 100.0 * per_reduce / per_step,
                batch / per_step);
  }
  return 0;
}
