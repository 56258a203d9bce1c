#include "lib/models/mobilenet_v2.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/container/sequential.h>

namespace mpq::models {
namespace {

// [1x1 expand -> BN -> ReLU] -> 3x3 depthwise -> BN -> ReLU -> 1x1 project -> BN (+ x).
class InvertedResidualImpl : public torch::nn::Module {
 public:
  InvertedResidualImpl(int64_t in, int64_t out, int64_t stride, int64_t expansion, const QuantConfig& q)
      : residual_(stride == 1 && in == out) {
    const int64_t hidden = in * expansion;
    if (expansion != 1) expand_ = register_module("expand", QConvBn(QConvBnOptions(in, hidden, 1), q));
    depthwise_ = register_module("depthwise", QConvBn(QConvBnOptions(hidden, hidden, 3).stride(stride).groups(hidden), q));
    project_ = register_module("project", QConvBn(QConvBnOptions(hidden, out, 1).relu(false), q));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = expand_ ? expand_(x) : x;
    h = project_(depthwise_(h));
    return residual_ ? x + h : h;
  }

 private:
  bool residual_;
  QConvBn expand_{nullptr}, depthwise_{nullptr}, project_{nullptr};
};
TORCH_MODULE(InvertedResidual);

}  // namespace

std::shared_ptr<Model> MakeMobileNetV2(const ModelOptions& o) {
  const QuantConfig& q = o.quant;
  TORCH_CHECK(q.act_placement == ActPlacement::kConvInput,
              "mobilenet_v2: activations are quantized at conv inputs only (its blocks end linear)");
  torch::nn::Sequential body;
  body->push_back(QConvBn(QConvBnOptions(o.in_channels, 32, 3).stride(2).is_input(true), q));
  // Table 2: expansion t, channels c, repeats n, first stride s.
  const int64_t cfg[][4] = {{1, 16, 1, 1},  {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                            {6, 96, 3, 1},  {6, 160, 3, 2}, {6, 320, 1, 1}};
  int64_t in = 32;
  for (const auto& c : cfg) {
    for (int64_t i = 0; i < c[2]; ++i) {
      body->push_back(InvertedResidual(in, c[1], i == 0 ? c[3] : 1, c[0], q));
      in = c[1];
    }
  }
  body->push_back(QConvBn(QConvBnOptions(in, 1280, 1), q));
  return std::make_shared<SequentialModel>(body, ClassifierHead(1280, o.num_classes, q, /*dropout=*/0.2));
}

}  // namespace mpq::models
