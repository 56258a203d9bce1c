// uniform.h — the uniform baseline as an allocator: every group keeps the bits the
// model was built with (network-level precision, the spec's weight_bits / act_bits;
// full-precision layers stay so). Reports one point, so uniform runs have their
// allocation and cost in the store like every other method.
#pragma once

#include "lib/alloc/allocator.h"

namespace mpq::alloc {

class UniformAllocator : public Allocator {
 public:
  std::string name() const override { return "uniform"; }
  absl::StatusOr<AllocatorResult> Run(AllocatorContext& context) override;
};

}  // namespace mpq::alloc
