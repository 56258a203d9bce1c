// quantizer_options.h — which quantizer a module uses for its weights and its input
// activations, at which granularity, and their names in specs, stores and reports.
// Torch-free, so specs can be parsed and validated without LibTorch headers.
//
//   QConv2dOptions(64, 64, 3).weight_quantizer(WeightQuantizer::kLin).granularity(Granularity::kPerChannel)
//   absl::StatusOr<WeightQuantizer> q = ParseWeightQuantizer("dorefa");   // error lists the names
//
// Weight quantizers (lib/quant):   kNone (full precision), kLin (IMPQ), kDorefa,
//   kLsq (learned step per group), kHwgq (EdMIPS), kUhlich (delta_xmax: learned d, qmax),
//   kSymmetric (HAWQ-V3: s = max|w|/(2^(B-1) - 1), B >= 2), kFracBits (BitPruning:
//   real-valued bits per group, symmetric levels interpolated, lib/quant/fracbits.h).
// Activation quantizers:           kNone, kDorefa, kPact (learned clip), kLsq, kHwgq,
//   kUhlich (learned d, qmax), kFracBits (real-valued bits, PACT clip).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mpq::nn {

enum class WeightQuantizer { kNone, kLin, kDorefa, kLsq, kHwgq, kUhlich, kSymmetric, kFracBits };
enum class ActQuantizer { kNone, kDorefa, kPact, kLsq, kHwgq, kUhlich, kFracBits };
// kPerTensor: one bit-width for the layer; kPerChannel: one per output channel (kernel).
enum class Granularity { kPerTensor, kPerChannel };
// How the Uhlich quantizers (kUhlich) are parametrized ([1] Uhlich et al., ICLR 2020,
// sec. 3; lib/quant/uhlich.h): kDeltaXmax learns step d and range qmax (uniform; bits
// inferred), kBXmax learns bits b and range qmax (uniform; step follows), kXminXmax
// learns both ends of a power-of-two quantizer (bits inferred).
enum class UhlichParametrization { kDeltaXmax, kBXmax, kXminXmax };

// The one table of names: Name() and Parse*() are inverse; *Names() lists them in order.
const char* Name(WeightQuantizer q);
const char* Name(ActQuantizer q);
const char* Name(Granularity g);
const char* Name(UhlichParametrization p);
absl::StatusOr<WeightQuantizer> ParseWeightQuantizer(absl::string_view name);
absl::StatusOr<ActQuantizer> ParseActQuantizer(absl::string_view name);
absl::StatusOr<Granularity> ParseGranularity(absl::string_view name);
absl::StatusOr<UhlichParametrization> ParseUhlichParametrization(absl::string_view name);
std::vector<std::string> WeightQuantizerNames();
std::vector<std::string> ActQuantizerNames();
std::vector<std::string> GranularityNames();
std::vector<std::string> UhlichParametrizationNames();

// Bits value that means "not quantized" (lib/quant/kernels.h kFullPrecisionBits).
inline constexpr int64_t kFullPrecision = 32;

}  // namespace mpq::nn
