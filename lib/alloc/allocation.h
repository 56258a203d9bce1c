// allocation.h — a bit-width assignment: the artifact every allocator ends in (with the
// trained model). One entry per weight group (a QConv2d / QLinear output channel at
// kernel granularity, or the whole layer at layer granularity) and per activation group
// (a QAct with a quantizer). Layers are named as in module.named_modules().
//
//   Allocation a = ReadAllocation(*model);      // what the model holds now
//   a.groups[3].bits = 2;
//   absl::Status s = ApplyAllocation(*model, a); // errors name an unknown layer or a bad group/bit value
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace torch::nn {
class Module;
}

namespace mpq::alloc {

struct GroupBits {
  std::string layer;       // module name, e.g. "body.3.conv1.conv"
  bool is_weight = true;   // weight group, else activation group
  int64_t group = 0;       // output channel (kernel-wise) or 0 (layer-wise / activation)
  int64_t bits = 32;       // 1..16, 32 = full precision
};

struct Allocation {
  std::vector<GroupBits> groups;  // weights first, in module order, then activations
};

// Reads the bits of every QConv2d, QLinear (weights) and quantizing QAct (activations);
// of an EdMIPS search model's MixQConv2d / MixQAct, the argmax candidate (one group).
Allocation ReadAllocation(const torch::nn::Module& model);

// Writes `allocation` into the model's bit buffers. Every group must name an existing
// layer and group index, with bits in 1..16 or 32. On error nothing is changed.
absl::Status ApplyAllocation(torch::nn::Module& model, const Allocation& allocation);

}  // namespace mpq::alloc
