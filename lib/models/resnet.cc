#include "lib/models/resnet.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/pooling.h>

#include <vector>

namespace mpq::models {
namespace {

// Two 3x3 units; shortcut identity, "A" (zero-padded, subsampled) or "B"/projection.
class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride, const std::string& shortcut, const QuantConfig& q)
      : zero_pad_(stride != 1 || in != out ? (shortcut == "A" ? out - in : -1) : 0), stride_(stride) {
    conv1_ = register_module("conv1", QConvBn(QConvBnOptions(in, out, 3).stride(stride), q));
    conv2_ = register_module("conv2", QConvBn(QConvBnOptions(out, out, 3).relu(false), q));
    if (zero_pad_ < 0) projection_ = register_module("shortcut", QConvBn(QConvBnOptions(in, out, 1).stride(stride).relu(false), q));
    if (q.act_placement == ActPlacement::kReluOutput) out_act_ = register_module("out_act", MakeReluAct(q));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor shortcut = x;
    if (projection_) {
      shortcut = projection_(x);
    } else if (zero_pad_ > 0 || stride_ != 1) {
      // Option A (He et al. 2016): subsample, then pad the new channels with zeros.
      shortcut = at::constant_pad_nd(x.slice(2, 0, x.size(2), stride_).slice(3, 0, x.size(3), stride_),
                                     {0, 0, 0, 0, zero_pad_ / 2, zero_pad_ - zero_pad_ / 2});
    }
    const at::Tensor y = at::relu(conv2_(conv1_(x)) + shortcut);
    return out_act_ ? out_act_(y) : y;
  }

 private:
  int64_t zero_pad_, stride_;
  QConvBn conv1_{nullptr}, conv2_{nullptr}, projection_{nullptr};
  nn::QAct out_act_{nullptr};  // kReluOutput: the block's ReLU quantized
};
TORCH_MODULE(BasicBlock);

class BottleneckImpl : public torch::nn::Module {
 public:
  BottleneckImpl(int64_t in, int64_t width, int64_t stride, const QuantConfig& q) {
    const int64_t out = width * 4;
    conv1_ = register_module("conv1", QConvBn(QConvBnOptions(in, width, 1), q));
    conv2_ = register_module("conv2", QConvBn(QConvBnOptions(width, width, 3).stride(stride), q));
    conv3_ = register_module("conv3", QConvBn(QConvBnOptions(width, out, 1).relu(false), q));
    if (stride != 1 || in != out) {
      projection_ = register_module("shortcut", QConvBn(QConvBnOptions(in, out, 1).stride(stride).relu(false), q));
    }
    if (q.act_placement == ActPlacement::kReluOutput) out_act_ = register_module("out_act", MakeReluAct(q));
  }
  at::Tensor forward(const at::Tensor& x) {
    const at::Tensor shortcut = projection_ ? projection_(x) : x;
    const at::Tensor y = at::relu(conv3_(conv2_(conv1_(x))) + shortcut);
    return out_act_ ? out_act_(y) : y;
  }

 private:
  QConvBn conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr}, projection_{nullptr};
  nn::QAct out_act_{nullptr};
};
TORCH_MODULE(Bottleneck);

// kind: 20 (CIFAR), 18 or 50 (ImageNet).
std::shared_ptr<Model> BuildResNet(int kind, const ModelOptions& o) {
  const QuantConfig& q = o.quant;
  torch::nn::Sequential body;
  int64_t channels;
  if (kind == 20) {
    body->push_back(QConvBn(QConvBnOptions(o.in_channels, 16, 3).is_input(true), q));
    channels = 16;
    for (int64_t stage = 0; stage < 3; ++stage) {
      const int64_t out = 16 << stage;
      for (int64_t b = 0; b < 3; ++b) {
        body->push_back(BasicBlock(channels, out, stage > 0 && b == 0 ? 2 : 1, o.shortcut, q));
        channels = out;
      }
    }
  } else {
    body->push_back(QConvBn(QConvBnOptions(o.in_channels, 64, 7).stride(2).is_input(true), q));
    body->push_back(QMaxPool2d(3, 2, 1));
    channels = 64;
    const std::vector<int64_t> depth = kind == 18 ? std::vector<int64_t>{2, 2, 2, 2} : std::vector<int64_t>{3, 4, 6, 3};
    for (int64_t stage = 0; stage < 4; ++stage) {
      const int64_t width = 64 << stage;
      for (int64_t b = 0; b < depth[stage]; ++b) {
        const int64_t stride = stage > 0 && b == 0 ? 2 : 1;
        if (kind == 18) {
          body->push_back(BasicBlock(channels, width, stride, "B", q));
          channels = width;
        } else {
          body->push_back(Bottleneck(channels, width, stride, q));
          channels = width * 4;
        }
      }
    }
  }
  return std::make_shared<SequentialModel>(body, ClassifierHead(channels, o.num_classes, q));
}

}  // namespace

std::shared_ptr<Model> MakeResNet20(const ModelOptions& o) {
  TORCH_CHECK(o.shortcut == "A" || o.shortcut == "B", "resnet20: shortcut '", o.shortcut, "' unknown; expected A or B");
  return BuildResNet(20, o);
}
std::shared_ptr<Model> MakeResNet18(const ModelOptions& o) { return BuildResNet(18, o); }
std::shared_ptr<Model> MakeResNet50(const ModelOptions& o) { return BuildResNet(50, o); }

}  // namespace mpq::models
