#include "lib/models/inception_v3.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/pooling.h>

#include <vector>

namespace mpq::models {
namespace {

using Shape = torch::ExpandingArray<2>;

// A chain of QConvBn units (kernel, out channels, stride, padding), 'same' padding by default.
class ChainImpl : public torch::nn::Module {
 public:
  struct Step {
    Shape kernel;
    int64_t out;
    int64_t stride = 1;
    Shape padding = -1;
  };
  ChainImpl(int64_t in, const std::vector<Step>& steps, const QuantConfig& q) {
    for (size_t i = 0; i < steps.size(); ++i) {
      const Step& s = steps[i];
      units_.push_back(register_module(
          "conv" + std::to_string(i), QConvBn(QConvBnOptions(in, s.out, s.kernel).stride(s.stride).padding(s.padding), q)));
      in = s.out;
    }
  }
  at::Tensor forward(at::Tensor x) {
    for (auto& u : units_) x = u(x);
    return x;
  }

 private:
  std::vector<QConvBn> units_;
};
TORCH_MODULE(Chain);
using Steps = std::vector<ChainImpl::Step>;

at::Tensor AvgPool3(const at::Tensor& x) { return at::avg_pool2d(x, 3, 1, 1); }
at::Tensor MaxPool3s2(const at::Tensor& x) { return at::max_pool2d(x, 3, 2); }

class InceptionAImpl : public torch::nn::Module {
 public:
  InceptionAImpl(int64_t in, int64_t pool, const QuantConfig& q) {
    b1_ = register_module("b1x1", Chain(in, Steps{{1, 64}}, q));
    b5_ = register_module("b5x5", Chain(in, Steps{{1, 48}, {5, 64}}, q));
    b3_ = register_module("b3x3dbl", Chain(in, Steps{{1, 64}, {3, 96}, {3, 96}}, q));
    bp_ = register_module("bpool", Chain(in, Steps{{1, pool}}, q));
  }
  at::Tensor forward(const at::Tensor& x) { return at::cat({b1_(x), b5_(x), b3_(x), bp_(AvgPool3(x))}, 1); }

 private:
  Chain b1_{nullptr}, b5_{nullptr}, b3_{nullptr}, bp_{nullptr};
};
TORCH_MODULE(InceptionA);

class InceptionBImpl : public torch::nn::Module {
 public:
  InceptionBImpl(int64_t in, const QuantConfig& q) {
    b3_ = register_module("b3x3", Chain(in, Steps{{3, 384, 2, 0}}, q));
    bd_ = register_module("b3x3dbl", Chain(in, Steps{{1, 64}, {3, 96}, {3, 96, 2, 0}}, q));
  }
  at::Tensor forward(const at::Tensor& x) { return at::cat({b3_(x), bd_(x), MaxPool3s2(x)}, 1); }

 private:
  Chain b3_{nullptr}, bd_{nullptr};
};
TORCH_MODULE(InceptionB);

class InceptionCImpl : public torch::nn::Module {
 public:
  InceptionCImpl(int64_t in, int64_t c7, const QuantConfig& q) {
    const Shape k17{1, 7}, k71{7, 1};
    b1_ = register_module("b1x1", Chain(in, Steps{{1, 192}}, q));
    b7_ = register_module("b7x7", Chain(in, Steps{{1, c7}, {k17, c7}, {k71, 192}}, q));
    bd_ = register_module("b7x7dbl", Chain(in, Steps{{1, c7}, {k71, c7}, {k17, c7}, {k71, c7}, {k17, 192}}, q));
    bp_ = register_module("bpool", Chain(in, Steps{{1, 192}}, q));
  }
  at::Tensor forward(const at::Tensor& x) { return at::cat({b1_(x), b7_(x), bd_(x), bp_(AvgPool3(x))}, 1); }

 private:
  Chain b1_{nullptr}, b7_{nullptr}, bd_{nullptr}, bp_{nullptr};
};
TORCH_MODULE(InceptionC);

class InceptionDImpl : public torch::nn::Module {
 public:
  InceptionDImpl(int64_t in, const QuantConfig& q) {
    b3_ = register_module("b3x3", Chain(in, Steps{{1, 192}, {3, 320, 2, 0}}, q));
    b7_ = register_module("b7x7x3", Chain(in, Steps{{1, 192}, {Shape{1, 7}, 192}, {Shape{7, 1}, 192}, {3, 192, 2, 0}}, q));
  }
  at::Tensor forward(const at::Tensor& x) { return at::cat({b3_(x), b7_(x), MaxPool3s2(x)}, 1); }

 private:
  Chain b3_{nullptr}, b7_{nullptr};
};
TORCH_MODULE(InceptionD);

class InceptionEImpl : public torch::nn::Module {
 public:
  InceptionEImpl(int64_t in, const QuantConfig& q) {
    b1_ = register_module("b1x1", Chain(in, Steps{{1, 320}}, q));
    b3_ = register_module("b3x3", Chain(in, Steps{{1, 384}}, q));
    b3a_ = register_module("b3x3_2a", Chain(384, Steps{{Shape{1, 3}, 384}}, q));
    b3b_ = register_module("b3x3_2b", Chain(384, Steps{{Shape{3, 1}, 384}}, q));
    bd_ = register_module("b3x3dbl", Chain(in, Steps{{1, 448}, {3, 384}}, q));
    bda_ = register_module("b3x3dbl_3a", Chain(384, Steps{{Shape{1, 3}, 384}}, q));
    bdb_ = register_module("b3x3dbl_3b", Chain(384, Steps{{Shape{3, 1}, 384}}, q));
    bp_ = register_module("bpool", Chain(in, Steps{{1, 192}}, q));
  }
  at::Tensor forward(const at::Tensor& x) {
    const at::Tensor t3 = b3_(x), td = bd_(x);
    return at::cat({b1_(x), b3a_(t3), b3b_(t3), bda_(td), bdb_(td), bp_(AvgPool3(x))}, 1);
  }

 private:
  Chain b1_{nullptr}, b3_{nullptr}, b3a_{nullptr}, b3b_{nullptr}, bd_{nullptr}, bda_{nullptr}, bdb_{nullptr},
      bp_{nullptr};
};
TORCH_MODULE(InceptionE);

}  // namespace

std::shared_ptr<Model> MakeInceptionV3(const ModelOptions& o) {
  const QuantConfig& q = o.quant;
  torch::nn::Sequential s;
  s->push_back(QConvBn(QConvBnOptions(o.in_channels, 32, 3).stride(2).padding(0).is_input(true), q));
  s->push_back(QConvBn(QConvBnOptions(32, 32, 3).padding(0), q));
  s->push_back(QConvBn(QConvBnOptions(32, 64, 3), q));
  s->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2)));
  s->push_back(QConvBn(QConvBnOptions(64, 80, 1), q));
  s->push_back(QConvBn(QConvBnOptions(80, 192, 3).padding(0), q));
  s->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2)));
  s->push_back(InceptionA(192, 32, q));
  s->push_back(InceptionA(256, 64, q));
  s->push_back(InceptionA(288, 64, q));
  s->push_back(InceptionB(288, q));
  s->push_back(InceptionC(768, 128, q));
  s->push_back(InceptionC(768, 160, q));
  s->push_back(InceptionC(768, 160, q));
  s->push_back(InceptionC(768, 192, q));
  s->push_back(InceptionD(768, q));
  s->push_back(InceptionE(1280, q));
  s->push_back(InceptionE(2048, q));
  return std::make_shared<SequentialModel>(s, ClassifierHead(2048, o.num_classes, q, 0.5));
}

}  // namespace mpq::models
