// quantizer_options.h — which quantizer a module uses for its weights and its input
// activations, at which granularity, and the per-group learned parameters each needs.
//
//   QConv2dOptions(64, 64, 3).weight_quantizer(WeightQuantizer::kLin).granularity(Granularity::kPerChannel)
//
// Weight quantizers (lib/quant):   kNone (full precision), kLin (IMPQ), kDorefa,
//   kLsq (learned step per group), kHwgq (EdMIPS), kUhlich (delta_xmax: learned d, qmax).
// Activation quantizers:           kNone, kDorefa, kPact (learned clip), kLsq, kHwgq,
//   kUhlich (learned d, qmax).
#pragma once

#include <cstdint>
#include <string>

namespace mpq::nn {

enum class WeightQuantizer { kNone, kLin, kDorefa, kLsq, kHwgq, kUhlich };
enum class ActQuantizer { kNone, kDorefa, kPact, kLsq, kHwgq, kUhlich };
// kPerTensor: one bit-width for the layer; kPerChannel: one per output channel (kernel).
enum class Granularity { kPerTensor, kPerChannel };

const char* Name(WeightQuantizer q);
const char* Name(ActQuantizer q);
const char* Name(Granularity g);

// Bits value that means "not quantized" (lib/quant/kernels.h kFullPrecisionBits).
inline constexpr int64_t kFullPrecision = 32;

}  // namespace mpq::nn
