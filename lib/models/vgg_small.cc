#include "lib/models/vgg_small.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/pooling.h>

namespace mpq::models {
namespace {

class VggSmall : public Model {
 public:
  explicit VggSmall(const ModelOptions& o) {
    const QuantConfig& q = o.quant;
    TORCH_CHECK(o.image_size % 8 == 0, "vgg_small: image_size ", o.image_size, " must be a multiple of 8");
    torch::nn::Sequential body;
    int64_t in = o.in_channels;
    bool first = true;
    for (int64_t width : {128, 256, 512}) {
      for (int k = 0; k < 2; ++k) {
        body->push_back(QConvBn(QConvBnOptions(in, width, 3).is_input(first), q));
        in = width;
        first = false;
      }
      body->push_back(QMaxPool2d(2, 2));
    }
    body_ = register_module("body", body);
    const int64_t side = o.image_size / 8;
    act_ = register_module("fc_act", MakeClassifierAct(q));
    fc_ = register_module("fc", MakeClassifier(512 * side * side, o.num_classes, q));
  }
  at::Tensor forward(const at::Tensor& x) override { return fc_(act_(body_->forward(x).flatten(1))); }

 private:
  torch::nn::Sequential body_{nullptr};
  nn::QAct act_{nullptr};
  nn::QLinear fc_{nullptr};
};

}  // namespace

std::shared_ptr<Model> MakeVggSmall(const ModelOptions& o) { return std::make_shared<VggSmall>(o); }

}  // namespace mpq::models
