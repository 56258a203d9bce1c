// model.h — what every network of the zoo shares: quantization settings, the options a
// model is built with, the Model base class, and the conv-BN unit they are made of.
//
//   ModelOptions o;
//   o.in_channels = 1;  o.num_classes = 10;  o.image_size = 32;       // Fashion-MNIST padded to 32
//   o.quant.weight_bits = 4;  o.quant.act_quantizer = nn::ActQuantizer::kPact;  o.quant.act_bits = 4;
//   std::shared_ptr<Model> net = (*FindModel("resnet20"))->make(o);    // registry.h
//
// Quantization placement: every convolution and the classifier are QConv2d/QLinear.
// Activations (QuantConfig::act_placement): by default the activation feeding each of
// them goes through a QAct (EdMIPS's code), except the network input (the image is not
// requantized; the cost model counts it as 8-bit); with kReluOutput every ReLU's output
// is quantized instead (IMPQ's code), implemented by resnet20/18/50, mobilenet_v1 and
// vgg_small (ModelEntry::relu_placement).
// `quantize_first_and_last = false` keeps the first convolution and the classifier at
// full precision, as EdMIPS does; IMPQ quantizes them.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/expanding_array.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lib/models/quant_config.h"
#include "lib/nn/qact.h"
#include "lib/nn/qconv.h"

namespace mpq::models {

struct ModelOptions {
  int64_t in_channels = 3;    // default 3 (RGB); 1 for Fashion-MNIST
  int64_t num_classes = 10;   // default 10
  int64_t image_size = 32;    // input height = width; default 32 (CIFAR nets)
  QuantConfig quant;
  // ResNet-20 only: "A" = identity shortcut, zero-padded channels and stride-2
  // subsampling when the shape changes (He et al. 2016, sec. 4.2: 0.27M params);
  // "B" = 1x1 conv + BN projection there. Default "A".
  std::string shortcut = "A";
};

// Model: a network of the zoo. forward takes [N, in_channels, image_size, image_size].
class Model : public torch::nn::Module {
 public:
  virtual at::Tensor forward(const at::Tensor& x) = 0;
};

// QConvBn: [QAct] -> QConv2d -> BatchNorm2d [-> ReLU]. The QAct quantizes the unit's
// input (unsigned: inputs follow a ReLU) unless `is_input` (the network's image). With
// QuantConfig::units set, the activation and convolution of every unit but the input
// one come from that factory instead (same module names, "act" and "conv", so an
// allocation found on one network applies to the other).
struct QConvBnOptions {
  QConvBnOptions(int64_t in, int64_t out, torch::ExpandingArray<2> kernel) : in_(in), out_(out), kernel_(kernel) {}
  TORCH_ARG(int64_t, in);
  TORCH_ARG(int64_t, out);
  TORCH_ARG(torch::ExpandingArray<2>, kernel);
  TORCH_ARG(torch::ExpandingArray<2>, stride) = 1;
  TORCH_ARG(torch::ExpandingArray<2>, padding) = -1;  // -1: kernel / 2 in that dimension
  TORCH_ARG(int64_t, groups) = 1;
  TORCH_ARG(bool, relu) = true;
  TORCH_ARG(bool, is_input) = false;  // first layer: no activation quantizer; FP unless configured
};

// ConvUnitFactory: builds a conv unit's input activation and its convolution, each a
// module whose forward maps one tensor to one tensor. `padding` is resolved (>= 0).
class ConvUnitFactory {
 public:
  virtual ~ConvUnitFactory() = default;
  virtual torch::nn::AnyModule MakeActivation(const QConvBnOptions& unit) const = 0;
  virtual torch::nn::AnyModule MakeConv(const QConvBnOptions& unit, torch::ExpandingArray<2> padding) const = 0;
};

class QConvBnImpl : public torch::nn::Cloneable<QConvBnImpl> {
 public:
  QConvBnImpl(QConvBnOptions options, QuantConfig quant);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);

  QConvBnOptions options;
  QuantConfig quant;
  torch::nn::AnyModule act, conv;  // QAct and QConv2d unless quant.units says otherwise
  torch::nn::BatchNorm2d bn{nullptr};
  nn::QAct out_act{nullptr};       // kReluOutput with relu(): quantizes the ReLU's output
};
TORCH_MODULE(QConvBn);

// Max pooling that tells the cost model its output keeps its input's bits (the max of
// quantized values is one of them); otherwise torch's MaxPool2d.
class QMaxPool2dImpl : public torch::nn::Cloneable<QMaxPool2dImpl> {
 public:
  explicit QMaxPool2dImpl(int64_t kernel, int64_t stride, int64_t padding = 0)
      : kernel_(kernel), stride_(stride), padding_(padding) {}
  void reset() override {}
  at::Tensor forward(const at::Tensor& x);

 private:
  int64_t kernel_, stride_, padding_;
};
TORCH_MODULE(QMaxPool2d);

// The QAct after a ReLU under kReluOutput (a block's ReLU after the residual sum); a
// pass-through QAct (kNone) otherwise.
// One forward pass on zeros of `input_shape` ([N, C, H, W]) on the model's device, in
// eval mode and without gradients (the previous mode restored): how the methods trace a
// network with an nn::LayerRecorder active on this thread.
void TraceForward(Model& model, const std::vector<int64_t>& input_shape);
// Elements per example of each activation quantizer's input, by module (a TraceForward).
std::map<const torch::nn::Module*, int64_t> ActivationElements(Model& model, const std::vector<int64_t>& input_shape);

nn::QAct MakeReluAct(const QuantConfig& quant);

// [QAct] -> QLinear, the classifier (full precision when !quantize_first_and_last).
nn::QAct MakeClassifierAct(const QuantConfig& quant);
nn::QLinear MakeClassifier(int64_t in_features, int64_t classes, const QuantConfig& quant);

// ClassifierHead: global average pool -> flatten -> dropout (if p > 0) -> QAct -> QLinear,
// the head shared by ResNet, MobileNet, GoogLeNet and Inception.
class ClassifierHeadImpl : public torch::nn::Cloneable<ClassifierHeadImpl> {
 public:
  ClassifierHeadImpl(int64_t features, int64_t classes, QuantConfig quant, double dropout = 0.0);
  void reset() override;
  at::Tensor forward(const at::Tensor& feature_map);

  int64_t features, classes;
  QuantConfig quant;
  double dropout;
  nn::QAct act{nullptr};
  nn::QLinear fc{nullptr};
};
TORCH_MODULE(ClassifierHead);

// SequentialModel: a feature extractor followed by a ClassifierHead, the shape of
// ResNet, MobileNet, GoogLeNet and Inception in this zoo.
class SequentialModel : public Model {
 public:
  SequentialModel(torch::nn::Sequential body, ClassifierHead head);
  at::Tensor forward(const at::Tensor& x) override;

 private:
  torch::nn::Sequential body_{nullptr};
  ClassifierHead head_{nullptr};
};

}  // namespace mpq::models
