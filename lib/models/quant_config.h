// quant_config.h — how a network of the zoo is quantized: the quantizers, granularity
// and bits of its weights and activations, whether the first convolution and the
// classifier are quantized, and (for methods that search over modules, such as EdMIPS)
// who builds each conv unit's activation and convolution. Torch-free, so a typed
// experiment spec can hold one.
//
//   QuantConfig q;  q.weight_bits = 4;  q.act_quantizer = nn::ActQuantizer::kPact;  q.act_bits = 4;
#pragma once

#include <cstdint>
#include <memory>

#include "lib/nn/quantizer_options.h"

namespace mpq::models {

class ConvUnitFactory;  // model.h

// Where activations are quantized (model.h):
// kConvInput: each quantized layer's input goes through a QAct (EdMIPS's code, and our
//   default); a residual shortcut carries unquantized values.
// kReluOutput: every ReLU's output is quantized, as IMPQ's code does (`quantize_model`
//   replaces each nn.ReLU with its ActQuantizer): the shortcut then carries quantized
//   values and the classifier sees the average pool of the last quantized ReLU.
enum class ActPlacement { kConvInput, kReluOutput };

struct QuantConfig {
  nn::WeightQuantizer weight_quantizer = nn::WeightQuantizer::kLin;  // default IMPQ's Lin
  nn::Granularity granularity = nn::Granularity::kPerChannel;         // default kernel-wise
  int64_t weight_bits = nn::kFullPrecision;                           // default 32 (FP)
  nn::ActQuantizer act_quantizer = nn::ActQuantizer::kNone;           // default none
  int64_t act_bits = nn::kFullPrecision;                              // default 32
  bool quantize_first_and_last = true;                                // default on (IMPQ)
  ActPlacement act_placement = ActPlacement::kConvInput;              // default conv inputs
  // The parametrization of kUhlich weight and activation quantizers (the Uhlich method
  // sets it from its options; lib/alloc/uhlich.h).
  nn::UhlichParametrization uhlich = nn::UhlichParametrization::kDeltaXmax;
  // Builds the activation and convolution of every conv unit except the network's
  // first (model.h ConvUnitFactory); null (default) = QAct + QConv2d from the settings
  // above. A method that trains a different kind of module supplies one (EdMIPS's
  // search modules, lib/alloc/edmips.h), so the zoo knows no method.
  std::shared_ptr<const ConvUnitFactory> units;
};

}  // namespace mpq::models
