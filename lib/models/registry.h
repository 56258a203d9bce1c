// registry.h — the explicit list of networks the runner, tests and benchmarks use.
//
//   absl::StatusOr<const ModelEntry*> entry = FindModel("mobilenet_v1");  // error lists the names
//   ModelOptions o;  o.num_classes = 1000;  o.image_size = (*entry)->default_image_size;
//   std::shared_ptr<Model> net = (*entry)->make(o);
//
// Each entry carries the published size and cost it is tested against
// (tests/models/models_test.cc), with the source of those numbers. Adding a network =
// one row in registry.cc.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "lib/models/model.h"

namespace mpq::models {

struct ModelEntry {
  const char* name;
  int64_t default_image_size;     // a spec without image_size gets this
  int64_t min_image_size;         // smallest input the network computes on (tests/models check it)
  int64_t image_size_multiple;    // the input size must be a multiple of this (1 = any)
  int64_t default_classes;
  std::shared_ptr<Model> (*make)(const ModelOptions& options);
  double published_params_m;      // parameters in millions, incl. BN and biases
  double published_macs_m;        // multiply-accumulates in millions at the defaults
  const char* published_source;
  // Builds QuantConfig::act_placement = kReluOutput (every ReLU's output quantized).
  bool relu_placement = false;
};

absl::Span<const ModelEntry> Models();
absl::StatusOr<const ModelEntry*> FindModel(absl::string_view name);

}  // namespace mpq::models
