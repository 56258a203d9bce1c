// dp_worker: one process of the data-parallel test (data_parallel_test.sh). Trains a
// small BatchNorm-free CNN on synthetic data with the trainer, as one process or as a
// rank of a c10d group taken from the environment (RANK, WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), and saves [every parameter..., per-epoch train loss, train top-1, val
// top-1] to --out (suffixed .rank<r> for ranks > 0).
//   dp_worker --out=F --batch=32 --epochs=2 [--seed=1] [--lr=0.05]   (the test: 4 epochs at lr 0.2)
//   dp_worker --compare A B --tolerance=T     exit 0 when every tensor has max |A - B| <= T max |A|
//   dp_worker --free_port                     prints a free TCP port on 127.0.0.1
//   dp_worker --smoke_specs                   prints every method's smoke spec on synthetic
//                                             data (as methods_test runs it), one per line
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ATen/ATen.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/serialize.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "datasets/synthetic.h"
#include "datasets/transforms.h"
#include "lib/alloc/method.h"
#include "lib/dist/data_parallel.h"
#include "lib/models/model.h"
#include "lib/train/trainer.h"
#include "tests/experiments/smoke_spec.h"

namespace {

struct SmallCnn : mpq::models::Model {
  SmallCnn() {
    c1 = register_module("c1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 16, 3).padding(1)));
    c2 = register_module("c2", torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 32, 3).padding(1).stride(2)));
    fc = register_module("fc", torch::nn::Linear(32 * 4 * 4, 10));
  }
  at::Tensor forward(const at::Tensor& x) override {
    at::Tensor h = at::max_pool2d(at::relu(c1->forward(x)), {2, 2});
    h = at::relu(c2->forward(h));
    return fc->forward(at::adaptive_avg_pool2d(h, {4, 4}).flatten(1));
  }
  torch::nn::Conv2d c1{nullptr}, c2{nullptr};
  torch::nn::Linear fc{nullptr};
};

std::string Flag(int argc, char** argv, const std::string& name, const std::string& fallback) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) return argv[i] + prefix.size();
  }
  return fallback;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "dp_worker: %s\n", message.c_str());
  return 2;
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Fail("no free port");
  }
  std::printf("%d\n", ntohs(addr.sin_port));
  close(fd);
  return 0;
}

int Compare(const std::string& a, const std::string& b, double tolerance) {
  std::vector<at::Tensor> x, y;
  torch::load(x, a);
  torch::load(y, b);
  if (x.size() != y.size()) return Fail(absl::StrCat(a, " has ", x.size(), " tensors, ", b, " ", y.size()));
  // Per tensor, relative to its largest magnitude: weights of 0.1 are not measured against
  // the top-1 of 90 saved beside them.
  double worst = 0;
  size_t worst_index = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!x[i].sizes().equals(y[i].sizes())) return Fail(absl::StrCat("tensor ", i, " differs in shape"));
    const double diff = (x[i] - y[i]).abs().max().item<double>();
    const double scale = std::max(x[i].abs().max().item<double>(), 1e-12);
    if (diff / scale > worst || i == 0) {
      worst = diff / scale;
      worst_index = i;
    }
  }
  std::printf("largest relative difference %.3g (tensor %zu of %zu; tolerance %.3g)\n", worst, worst_index, x.size(),
              tolerance);
  return worst <= tolerance ? 0 : 1;
}

int Train(int argc, char** argv) {
  int64_t batch = 0, epochs = 0, seed = 0;
  double lr = 0;
  if (!absl::SimpleAtoi(Flag(argc, argv, "batch", "32"), &batch) ||
      !absl::SimpleAtoi(Flag(argc, argv, "epochs", "2"), &epochs) ||
      !absl::SimpleAtoi(Flag(argc, argv, "seed", "1"), &seed) ||
      !absl::SimpleAtod(Flag(argc, argv, "lr", "0.05"), &lr)) {
    return Fail("bad --batch, --epochs, --seed or --lr");
  }
  const std::string out = Flag(argc, argv, "out", "");
  if (out.empty()) return Fail("--out is required");
  absl::StatusOr<mpq::dist::DistEnv> env = mpq::dist::DistEnvFromEnvironment();
  if (!env.ok()) return Fail(std::string(env.status().message()));
  std::unique_ptr<mpq::dist::DataParallel> dp;
  if (env->world_size > 1) {
    absl::StatusOr<std::unique_ptr<mpq::dist::DataParallel>> c =
        mpq::dist::DataParallel::Connect(*env, std::chrono::seconds(120));
    if (!c.ok()) return Fail(std::string(c.status().message()));
    dp = std::move(*c);
  }
  mpq::data::SyntheticOptions so;
  so.num_examples = 300;  // 300 / 32: a partial last batch of 12
  so.seed = 5;
  std::unique_ptr<mpq::data::InMemoryDataset> train_set = std::move(*mpq::data::MakeSynthetic(so));
  so.num_examples = 100;
  so.stream = 1;
  std::unique_ptr<mpq::data::InMemoryDataset> val_set = std::move(*mpq::data::MakeSynthetic(so));
  std::vector<int64_t> ti(300), vi(100);
  for (int64_t i = 0; i < 300; ++i) ti[i] = i;
  for (int64_t i = 0; i < 100; ++i) vi[i] = i;
  mpq::data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.shuffle = true;
  lo.seed = static_cast<uint64_t>(seed);
  lo.num_workers = 1;
  lo.shard_index = env->rank;
  lo.shard_count = env->world_size;
  // The training pipeline augments (random crop and flip): per-example seeds make the
  // shards' augmentation the one process's.
  auto train = mpq::data::DataLoader::Create(*train_set, ti, mpq::data::FashionMnistPipelines(32).train, lo);
  lo.shuffle = false;
  lo.shard_index = 0;
  lo.shard_count = 1;
  auto val = mpq::data::DataLoader::Create(*val_set, vi, mpq::data::FashionMnistPipelines(32).eval, lo);
  if (!train.ok() || !val.ok()) return Fail("loaders");

  // Rank 1 starts from other weights on purpose: the broadcast must replace them.
  at::manual_seed(static_cast<uint64_t>(seed) + 1000 * env->rank);
  auto net = std::make_shared<SmallCnn>();
  mpq::train::TrainOptions to;
  to.epochs = epochs;
  to.lr = lr;
  to.weight_decay = 5e-4;
  to.threads = 1;
  to.progress = false;
  to.data_parallel = dp.get();
  mpq::train::Trainer trainer(*net, **train, val->get(), to);
  absl::StatusOr<mpq::train::TrainResult> r = trainer.Run();
  if (!r.ok()) return Fail(std::string(r.status().message()));
  std::vector<at::Tensor> saved;
  for (const at::Tensor& p : net->parameters()) saved.push_back(p.detach().clone());
  std::vector<double> loss, top1, val_top1;
  for (const mpq::train::EpochStats& s : r->history) {
    loss.push_back(s.train_loss);
    top1.push_back(s.train_top1);
    val_top1.push_back(s.val_top1);
  }
  saved.push_back(at::tensor(loss, at::kDouble));
  saved.push_back(at::tensor(top1, at::kDouble));
  saved.push_back(at::tensor(val_top1, at::kDouble));
  torch::save(saved, env->rank == 0 ? out : absl::StrCat(out, ".rank", env->rank));
  std::printf("rank %d of %d: train loss", env->rank, env->world_size);
  for (double l : loss) std::printf(" %.6f", l);
  std::printf(", val top-1 %.2f%%\n", val_top1.back());
  return 0;
}

// Each registered method's smoke spec, completed as tests/experiments/methods_test runs it.
int SmokeSpecs() {
  for (const mpq::alloc::MethodEntry& m : mpq::alloc::Methods()) {
    std::printf("%s\n", mpq::test_specs::CompletedSmokeSpec(m).c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "--free_port") return FreePort();
  if (argc >= 2 && std::string(argv[1]) == "--smoke_specs") return SmokeSpecs();
  if (argc >= 4 && std::string(argv[1]) == "--compare") {
    double tolerance = 0;
    if (!absl::SimpleAtod(Flag(argc, argv, "tolerance", "0"), &tolerance)) return Fail("bad --tolerance");
    return Compare(argv[2], argv[3], tolerance);
  }
  return Train(argc, argv);
}
