// weight_quantization.h — the weight-quantization state shared by QConv2d, QLinear:
// a `weight_bits` buffer (int32, one value per group) and the learned parameters the
// chosen quantizer needs, registered on the owning module so that they are saved and
// loaded with it.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include "lib/nn/quantizer_options.h"

namespace mpq::nn {

struct WeightQuantization {
  WeightQuantizer kind = WeightQuantizer::kLin;
  Granularity granularity = Granularity::kPerChannel;
  at::Tensor bits;   // buffer "weight_bits", int32 [groups]
  at::Tensor step;   // kLsq: parameter "weight_step" [groups]; kUhlich: "weight_d"
  at::Tensor qmax;   // kUhlich: parameter "weight_qmax" [groups]
};

// Registers the buffer and parameters on `module` for `weight` (dim 0 = output channels),
// initialised for `initial_bits` (kFullPrecision allowed).
WeightQuantization RegisterWeightQuantization(torch::nn::Module& module, WeightQuantizer kind,
                                              Granularity granularity, int64_t initial_bits,
                                              const at::Tensor& weight);

// The fake-quantized weight (differentiable; STE as each quantizer defines).
at::Tensor QuantizeWeight(const WeightQuantization& q, const at::Tensor& weight);

}  // namespace mpq::nn
