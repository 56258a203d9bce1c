#include "lib/models/googlenet.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/pooling.h>

namespace mpq::models {
namespace {

torch::nn::MaxPool2d CeilPool(int64_t kernel, int64_t stride, int64_t padding = 0) {
  return torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(kernel).stride(stride).padding(padding).ceil_mode(true));
}

class InceptionImpl : public torch::nn::Module {
 public:
  InceptionImpl(int64_t in, int64_t c1, int64_t c3r, int64_t c3, int64_t c5r, int64_t c5, int64_t pool,
                const QuantConfig& q) {
    b1_ = register_module("branch1", QConvBn(QConvBnOptions(in, c1, 1), q));
    b2a_ = register_module("branch2a", QConvBn(QConvBnOptions(in, c3r, 1), q));
    b2b_ = register_module("branch2b", QConvBn(QConvBnOptions(c3r, c3, 3), q));
    b3a_ = register_module("branch3a", QConvBn(QConvBnOptions(in, c5r, 1), q));
    b3b_ = register_module("branch3b", QConvBn(QConvBnOptions(c5r, c5, 3), q));
    pool_ = register_module("pool", CeilPool(3, 1, 1));
    b4_ = register_module("branch4", QConvBn(QConvBnOptions(in, pool, 1), q));
  }
  at::Tensor forward(const at::Tensor& x) {
    return at::cat({b1_(x), b2b_(b2a_(x)), b3b_(b3a_(x)), b4_(pool_(x))}, 1);
  }

 private:
  QConvBn b1_{nullptr}, b2a_{nullptr}, b2b_{nullptr}, b3a_{nullptr}, b3b_{nullptr}, b4_{nullptr};
  torch::nn::MaxPool2d pool_{nullptr};
};
TORCH_MODULE(Inception);

}  // namespace

std::shared_ptr<Model> MakeGoogLeNet(const ModelOptions& o) {
  const QuantConfig& q = o.quant;
  torch::nn::Sequential s;
  s->push_back(QConvBn(QConvBnOptions(o.in_channels, 64, 7).stride(2).is_input(true), q));
  s->push_back(CeilPool(3, 2));
  s->push_back(QConvBn(QConvBnOptions(64, 64, 1), q));
  s->push_back(QConvBn(QConvBnOptions(64, 192, 3), q));
  s->push_back(CeilPool(3, 2));
  s->push_back(Inception(192, 64, 96, 128, 16, 32, 32, q));     // 3a
  s->push_back(Inception(256, 128, 128, 192, 32, 96, 64, q));   // 3b
  s->push_back(CeilPool(3, 2));
  s->push_back(Inception(480, 192, 96, 208, 16, 48, 64, q));    // 4a
  s->push_back(Inception(512, 160, 112, 224, 24, 64, 64, q));   // 4b
  s->push_back(Inception(512, 128, 128, 256, 24, 64, 64, q));   // 4c
  s->push_back(Inception(512, 112, 144, 288, 32, 64, 64, q));   // 4d
  s->push_back(Inception(528, 256, 160, 320, 32, 128, 128, q)); // 4e
  s->push_back(CeilPool(2, 2));
  s->push_back(Inception(832, 256, 160, 320, 32, 128, 128, q)); // 5a
  s->push_back(Inception(832, 384, 192, 384, 48, 128, 128, q)); // 5b
  return std::make_shared<SequentialModel>(s, ClassifierHead(1024, o.num_classes, q, 0.2));
}

}  // namespace mpq::models
