// tiny_net.h — a small quantized network and synthetic loaders for the allocator tests:
// QConv2d(1->4, 3x3) -> ReLU -> QAct -> QConv2d(4->4, 3x3, stride 2, 2 groups,
// per-tensor bits) -> ReLU -> QAct -> flatten -> QLinear(4*16*16 -> 10). No BatchNorm,
// so examples are independent in any mode.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "datasets/loader.h"
#include "datasets/synthetic.h"
#include "datasets/transforms.h"
#include "lib/models/model.h"
#include "lib/nn/qact.h"
#include "lib/nn/qconv.h"

namespace mpq::alloc::testing {

struct TinyNetOptions {
  int64_t weight_bits = 32;
  int64_t act_bits = 32;
  nn::ActQuantizer act = nn::ActQuantizer::kPact;
};

class TinyNet : public models::Model {
 public:
  explicit TinyNet(TinyNetOptions o) {
    conv1 = register_module("conv1", nn::QConv2d(nn::QConv2dOptions(1, 4, 3).padding(1).bits(o.weight_bits)));
    act1 = register_module("act1", nn::QAct(nn::QActOptions(o.act).bits(o.act_bits)));
    conv2 = register_module("conv2", nn::QConv2d(nn::QConv2dOptions(4, 4, 3)
                                                     .stride(2)
                                                     .padding(1)
                                                     .groups(2)
                                                     .granularity(nn::Granularity::kPerTensor)
                                                     .bits(o.weight_bits)));
    act2 = register_module("act2", nn::QAct(nn::QActOptions(o.act).bits(o.act_bits)));
    fc = register_module("fc", nn::QLinear(nn::QLinearOptions(4 * 16 * 16, 10).bits(o.weight_bits)));
  }
  at::Tensor forward(const at::Tensor& x) override {
    at::Tensor h = act1(at::relu(conv1(x)));
    h = act2(at::relu(conv2(h)));
    return fc(h.flatten(1));
  }
  nn::QConv2d conv1{nullptr}, conv2{nullptr};
  nn::QAct act1{nullptr}, act2{nullptr};
  nn::QLinear fc{nullptr};
};

struct Data {
  std::unique_ptr<data::InMemoryDataset> train_set, val_set;
  std::unique_ptr<data::DataLoader> train, val, calibration;
};

inline Data MakeData(int64_t n_train = 320, int64_t n_val = 120, int64_t n_calibration = 40, int64_t batch = 16,
                     double noise_std = 40) {
  Data d;
  data::SyntheticOptions so;
  so.num_examples = n_train;
  so.seed = 3;
  so.noise_std = noise_std;
  d.train_set = std::move(*data::MakeSynthetic(so));
  so.num_examples = n_val;
  so.stream = 1;
  d.val_set = std::move(*data::MakeSynthetic(so));
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.shuffle = true;
  lo.seed = 4;
  lo.num_workers = 0;
  std::vector<int64_t> ti(n_train), vi(n_val), ci(n_calibration);
  for (int64_t i = 0; i < n_train; ++i) ti[i] = i;
  for (int64_t i = 0; i < n_val; ++i) vi[i] = i;
  for (int64_t i = 0; i < n_calibration; ++i) ci[i] = i;
  const data::Pipelines p = data::FashionMnistPipelines(32);
  d.train = std::move(*data::DataLoader::Create(*d.train_set, ti, p.eval, lo));
  lo.shuffle = false;
  d.val = std::move(*data::DataLoader::Create(*d.val_set, vi, p.eval, lo));
  d.calibration = std::move(*data::DataLoader::Create(*d.train_set, ci, p.eval, lo));
  return d;
}

// Every parameter and buffer of `m` by name, copied: two runs' networks compare equal
// when these do.
inline std::map<std::string, at::Tensor> ModuleState(const torch::nn::Module& m) {
  std::map<std::string, at::Tensor> s;
  for (const auto& p : m.named_parameters(true)) s[p.key()] = p.value().detach().clone();
  for (const auto& b : m.named_buffers(true)) s[b.key()] = b.value().detach().clone();
  return s;
}

inline std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(base ? base : "/tmp") + "/" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

}  // namespace mpq::alloc::testing
