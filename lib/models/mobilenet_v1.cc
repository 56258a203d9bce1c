#include "lib/models/mobilenet_v1.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/pooling.h>

namespace mpq::models {

std::shared_ptr<Model> MakeMobileNetV1(const ModelOptions& o) {
  const QuantConfig& q = o.quant;
  torch::nn::Sequential body;
  body->push_back(QConvBn(QConvBnOptions(o.in_channels, 32, 3).stride(2).is_input(true), q));
  const int64_t cfg[][3] = {{32, 64, 1},   {64, 128, 2},  {128, 128, 1}, {128, 256, 2}, {256, 256, 1},
                            {256, 512, 2}, {512, 512, 1}, {512, 512, 1}, {512, 512, 1}, {512, 512, 1},
                            {512, 512, 1}, {512, 1024, 2}, {1024, 1024, 1}};
  for (const auto& c : cfg) {
    body->push_back(QConvBn(QConvBnOptions(c[0], c[0], 3).stride(c[2]).groups(c[0]), q));  // depthwise
    body->push_back(QConvBn(QConvBnOptions(c[0], c[1], 1), q));                            // pointwise
  }
  return std::make_shared<SequentialModel>(body, ClassifierHead(1024, o.num_classes, q));
}

}  // namespace mpq::models
