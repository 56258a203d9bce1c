// group_bits.h — a bit-width assignment as plain data: the artifact every allocator
// ends in, the rows of the results store's allocations table and what reports draw.
// Torch-free (results/ and reports/ use it without LibTorch); reading it from and
// writing it into a model is allocation.h.
//
//   Allocation a;
//   a.groups.push_back({"body.3.conv1.conv", /*is_weight=*/true, /*group=*/5, /*bits=*/2});
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mpq::alloc {

// One weight group (a QConv2d / QLinear output channel at kernel granularity, or the
// whole layer at layer granularity) or activation group (a quantizing QAct).
struct GroupBits {
  std::string layer;       // module name, e.g. "body.3.conv1.conv"
  bool is_weight = true;   // weight group, else activation group
  int64_t group = 0;       // output channel (kernel-wise) or 0 (layer-wise / activation)
  int64_t bits = 32;       // 1..16, 32 = full precision
};

struct Allocation {
  std::vector<GroupBits> groups;  // weights first, in module order, then activations
};

}  // namespace mpq::alloc
