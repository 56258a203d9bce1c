#include "lib/models/model.h"

#include <ATen/ATen.h>

#include "lib/nn/layer_record.h"
#include "lib/runtime/device.h"

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
    const bool input_act = !options.is_input() && quant.act_placement == ActPlacement::kConvInput;
    act = torch::nn::AnyModule(nn::QAct(nn::QActOptions(input_act ? quant.act_quantizer : nn::ActQuantizer::kNone)
                                            .bits(input_act ? quant.act_bits : nn::kFullPrecision)
                                            .uhlich(quant.uhlich)));
    conv = torch::nn::AnyModule(nn::QConv2d(nn::QConv2dOptions(options.in(), options.out(), options.kernel())
                                                .stride(options.stride())
                                                .padding(padding)
                                                .groups(options.groups())
                                                .weight_quantizer(quant.weight_quantizer)
                                                .granularity(quant.granularity)
                                                .bits(quantized ? quant.weight_bits : nn::kFullPrecision)
                                                .uhlich(quant.uhlich)));
  }
  register_module("act", act.ptr());
  register_module("conv", conv.ptr());
  bn = register_module("bn", torch::nn::BatchNorm2d(options.out()));
  if (options.relu() && quant.act_placement == ActPlacement::kReluOutput) {
    out_act = register_module("out_act", MakeReluAct(quant));
  }
}

at::Tensor QConvBnImpl::forward(const at::Tensor& x) {
  at::Tensor y = bn(conv.forward<at::Tensor>(act.forward<at::Tensor>(x)));
  if (!options.relu()) return y;
  y = at::relu(y);
  return out_act ? out_act(y) : y;
}

at::Tensor QMaxPool2dImpl::forward(const at::Tensor& x) {
  at::Tensor y = at::max_pool2d(x, {kernel_, kernel_}, {stride_, stride_}, {padding_, padding_});
  if (nn::LayerRecorder* recorder = nn::LayerRecorder::Active()) recorder->AddAlias(x, y);
  return y;
}

nn::QAct MakeReluAct(const QuantConfig& quant) {
  const bool on = quant.act_placement == ActPlacement::kReluOutput;
  return nn::QAct(nn::QActOptions(on ? quant.act_quantizer : nn::ActQuantizer::kNone)
                      .bits(on ? quant.act_bits : nn::kFullPrecision)
                      .uhlich(quant.uhlich));
}

nn::QAct MakeClassifierAct(const QuantConfig& quant) {
  // Under kReluOutput the classifier's input is the pool of the last quantized ReLU, not
  // requantized (IMPQ's code).
  const bool quantized = quant.quantize_first_and_last && quant.act_placement == ActPlacement::kConvInput;
  return nn::QAct(nn::QActOptions(quantized ? quant.act_quantizer : nn::ActQuantizer::kNone)
                      .bits(quantized ? quant.act_bits : nn::kFullPrecision)
                      .uhlich(quant.uhlich));
}

nn::QLinear MakeClassifier(int64_t in_features, int64_t classes, const QuantConfig& quant) {
  return nn::QLinear(nn::QLinearOptions(in_features, classes)
                         .weight_quantizer(quant.weight_quantizer)
                         .granularity(quant.granularity)
                         .bits(quant.quantize_first_and_last ? quant.weight_bits : nn::kFullPrecision)
                         .uhlich(quant.uhlich));
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

void TraceForward(Model& model, const std::vector<int64_t>& input_shape) {
  const bool was_training = model.is_training();
  model.eval();
  {
    at::NoGradGuard no_grad;
    model.forward(at::zeros(input_shape, at::TensorOptions().device(runtime::DeviceOf(model))));
  }
  model.train(was_training);
}

std::map<const torch::nn::Module*, int64_t> ActivationElements(Model& model, const std::vector<int64_t>& input_shape) {
  std::map<const torch::nn::Module*, int64_t> elements;
  nn::LayerRecorder recorder;
  TraceForward(model, input_shape);
  for (const nn::ActivationRecord& a : recorder.activations()) elements.emplace(a.module, a.elements);
  return elements;
}

}  // namespace mpq::models
