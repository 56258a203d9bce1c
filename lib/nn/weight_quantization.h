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
  UhlichParametrization uhlich = UhlichParametrization::kDeltaXmax;  // kUhlich only
  at::Tensor bits;   // buffer "weight_bits", int32 [groups]
  // Learned parameters, each [groups]:
  //   kLsq: step "weight_step".
  //   kUhlich delta_xmax: step "weight_d", qmax "weight_qmax"; b_xmax: b "weight_b"
  //   (real-valued bits), qmax "weight_qmax"; xmin_xmax: xmin "weight_xmin", qmax "weight_xmax".
  //   kFracBits: real-valued bits "weight_fbits" (float; 32 = full precision). The forward
  //   quantizes at these; `bits` holds them rounded (the BitPruning method keeps it so,
  //   and ApplyAllocation sets both).
  at::Tensor step;
  at::Tensor qmax;
  at::Tensor b;
  at::Tensor xmin;
  at::Tensor fbits;
};

// Registers the buffer and parameters on `module` for `weight` (dim 0 = output channels),
// initialised for `initial_bits` (kFullPrecision allowed).
WeightQuantization RegisterWeightQuantization(torch::nn::Module& module, WeightQuantizer kind,
                                              Granularity granularity, int64_t initial_bits,
                                              const at::Tensor& weight,
                                              UhlichParametrization uhlich = UhlichParametrization::kDeltaXmax);

// The fake-quantized weight (differentiable; STE as each quantizer defines).
at::Tensor QuantizeWeight(const WeightQuantization& q, const at::Tensor& weight);

}  // namespace mpq::nn
