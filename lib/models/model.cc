#include "lib/models/model.h"

#include <ATen/ATen.h>

namespace mpq::models {

QConvBnImpl::QConvBnImpl(QConvBnOptions options_, QuantConfig quant_) : options(options_), quant(quant_) { reset(); }

void QConvBnImpl::reset() {
  const bool quantized = !options.is_input() || quant.quantize_first_and_last;
  torch::ExpandingArray<2> padding = options.padding();
  for (int d = 0; d < 2; ++d) {
    if ((*padding)[d] < 0) (*padding)[d] = (*options.kernel())[d] / 2;
  }
  if (quant.units && !options.is_input()) {
    act = quant.units->MakeActivation(options);
    conv = quant.units->MakeConv(options, padding);
  } else {
    act = torch::nn::AnyModule(
        nn::QAct(nn::QActOptions(options.is_input() ? nn::ActQuantizer::kNone : quant.act_quantizer)
                     .bits(options.is_input() ? nn::kFullPrecision : quant.act_bits)));
    conv = torch::nn::AnyModule(nn::QConv2d(nn::QConv2dOptions(options.in(), options.out(), options.kernel())
                                                .stride(options.stride())
                                                .padding(padding)
                                                .groups(options.groups())
                                                .weight_quantizer(quant.weight_quantizer)
                                                .granularity(quant.granularity)
                                                .bits(quantized ? quant.weight_bits : nn::kFullPrecision)));
  }
  register_module("act", act.ptr());
  register_module("conv", conv.ptr());
  bn = register_module("bn", torch::nn::BatchNorm2d(options.out()));
}

at::Tensor QConvBnImpl::forward(const at::Tensor& x) {
  at::Tensor y = bn(conv.forward<at::Tensor>(act.forward<at::Tensor>(x)));
  return options.relu() ? at::relu(y) : y;
}

nn::QAct MakeClassifierAct(const QuantConfig& quant) {
  const bool quantized = quant.quantize_first_and_last;
  return nn::QAct(nn::QActOptions(quantized ? quant.act_quantizer : nn::ActQuantizer::kNone)
                      .bits(quantized ? quant.act_bits : nn::kFullPrecision));
}

nn::QLinear MakeClassifier(int64_t in_features, int64_t classes, const QuantConfig& quant) {
  return nn::QLinear(nn::QLinearOptions(in_features, classes)
                         .weight_quantizer(quant.weight_quantizer)
                         .granularity(quant.granularity)
                         .bits(quant.quantize_first_and_last ? quant.weight_bits : nn::kFullPrecision));
}

ClassifierHeadImpl::ClassifierHeadImpl(int64_t features_, int64_t classes_, QuantConfig quant_, double dropout_)
    : features(features_), classes(classes_), quant(quant_), dropout(dropout_) {
  reset();
}

void ClassifierHeadImpl::reset() {
  act = register_module("act", MakeClassifierAct(quant));
  fc = register_module("fc", MakeClassifier(features, classes, quant));
}

at::Tensor ClassifierHeadImpl::forward(const at::Tensor& feature_map) {
  at::Tensor h = at::adaptive_avg_pool2d(feature_map, {1, 1}).flatten(1);
  if (dropout > 0) h = at::dropout(h, dropout, is_training());
  return fc(act(h));
}

SequentialModel::SequentialModel(torch::nn::Sequential body, ClassifierHead head) {
  body_ = register_module("body", body);
  head_ = register_module("head", head);
}

at::Tensor SequentialModel::forward(const at::Tensor& x) { return head_(body_->forward(x)); }

}  // namespace mpq::models
