// uniform.h — the uniform baseline as an allocator: every group keeps the bits the
// model was built with (network-level precision, the spec's weight_bits / act_bits;
// full-precision layers stay so). Reports one point, so uniform runs have their
// allocation and cost in the store like every other method.
#pragma once

#include <memory>

#include "lib/alloc/allocator.h"
#include "lib/alloc/method.h"

namespace mpq::alloc {

// The spec's "uniform" object: no options (only {} is valid).
struct UniformOptions : public MethodOptions {
  static absl::StatusOr<std::shared_ptr<const MethodOptions>> Parse(const nlohmann::json* options,
                                                                     const MethodContext& run);
  nlohmann::json ToJson() const override;
};

class UniformAllocator : public Allocator {
 public:
  std::string name() const override { return "uniform"; }
  absl::StatusOr<AllocatorResult> Run(AllocatorContext& context) override;
};

}  // namespace mpq::alloc
