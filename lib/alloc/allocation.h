// allocation.h — reads a bit-width assignment (group_bits.h) from a model and writes one
// into it. One entry per weight group (a QConv2d / QLinear output channel at kernel
// granularity, or the whole layer at layer granularity) and per activation group (a
// QAct with a quantizer). Layers are named as in module.named_modules().
//
//   Allocation a = ReadAllocation(*model);      // what the model holds now
//   a.groups[3].bits = 2;
//   absl::Status s = ApplyAllocation(*model, a); // errors name an unknown layer or a bad group/bit value
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/alloc/group_bits.h"

namespace torch::nn {
class Module;
}

namespace mpq::alloc {

// Reads the bits of every QConv2d, QLinear (weights) and quantizing QAct (activations);
// of an EdMIPS search model's MixQConv2d / MixQAct, the argmax candidate (one group).
Allocation ReadAllocation(const torch::nn::Module& model);

// Writes `allocation` into the model's bit buffers. Every group must name an existing
// layer and group index, with bits in 1..16 or 32. On error nothing is changed.
absl::Status ApplyAllocation(torch::nn::Module& model, const Allocation& allocation);

// {"groups": [{"layer", "weight", "group", "bits"}, ...]}: how allocators keep an
// allocation in their state directory. Parsing errors name `source`.
std::string AllocationToJson(const Allocation& allocation);
absl::StatusOr<Allocation> AllocationFromJson(const std::string& text, const std::string& source);

}  // namespace mpq::alloc
