#include "lib/models/alexnet.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/pooling.h>
#include <torch/nn/modules/dropout.h>

namespace mpq::models {
namespace {

class AlexNet : public Model {
 public:
  explicit AlexNet(const ModelOptions& o) {
    const QuantConfig& q = o.quant;
    torch::nn::Sequential f;
    f->push_back(QConvBn(QConvBnOptions(o.in_channels, 64, 11).stride(4).padding(2).is_input(true), q));
    f->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2)));
    f->push_back(QConvBn(QConvBnOptions(64, 192, 5), q));
    f->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2)));
    f->push_back(QConvBn(QConvBnOptions(192, 384, 3), q));
    f->push_back(QConvBn(QConvBnOptions(384, 256, 3), q));
    f->push_back(QConvBn(QConvBnOptions(256, 256, 3), q));
    f->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2)));
    features_ = register_module("features", f);
    // The two hidden FCs are inner layers (quantized like convs); the last is the classifier.
    QuantConfig inner = q;
    inner.quantize_first_and_last = true;
    act1_ = register_module("fc1_act", MakeClassifierAct(inner));
    fc1_ = register_module("fc1", MakeClassifier(256 * 6 * 6, 4096, inner));
    act2_ = register_module("fc2_act", MakeClassifierAct(inner));
    fc2_ = register_module("fc2", MakeClassifier(4096, 4096, inner));
    act3_ = register_module("fc3_act", MakeClassifierAct(q));
    fc3_ = register_module("fc3", MakeClassifier(4096, o.num_classes, q));
    dropout_ = register_module("dropout", torch::nn::Dropout(0.5));
  }
  at::Tensor forward(const at::Tensor& x) override {
    at::Tensor h = at::adaptive_avg_pool2d(features_->forward(x), {6, 6}).flatten(1);
    h = at::relu(fc1_(act1_(dropout_(h))));
    h = at::relu(fc2_(act2_(dropout_(h))));
    return fc3_(act3_(h));
  }

 private:
  torch::nn::Sequential features_{nullptr};
  nn::QAct act1_{nullptr}, act2_{nullptr}, act3_{nullptr};
  nn::QLinear fc1_{nullptr}, fc2_{nullptr}, fc3_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
};

}  // namespace

std::shared_ptr<Model> MakeAlexNet(const ModelOptions& o) { return std::make_shared<AlexNet>(o); }

}  // namespace mpq::models
