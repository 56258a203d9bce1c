// smoke_spec.h — a registered method's smoke_spec (lib/alloc/method.h) completed into a
// runnable experiment spec: synthetic data, 1 epoch on 96 examples, batches of 32, a
// fifth held out for validation. The single definition that tests/experiments/methods_test
// (every method end to end) and tests/dist/dp_worker (every method on two ranks) run.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "lib/alloc/method.h"

namespace mpq::test_specs {

// The spec as JSON text; its name is "<method>_smoke". The entry's smoke_spec must be a
// JSON object (methods_test checks that first; nlohmann::json throws otherwise).
inline std::string CompletedSmokeSpec(const alloc::MethodEntry& method) {
  nlohmann::json spec = nlohmann::json::parse(method.smoke_spec);
  spec["name"] = std::string(method.name) + "_smoke";
  spec["method"] = method.name;
  spec["dataset"] = "synthetic";
  spec["epochs"] = 1;
  spec["train_subset"] = 96;
  spec["batch_size"] = 32;
  spec["validation_fraction"] = 0.2;
  return spec.dump();
}

}  // namespace mpq::test_specs
