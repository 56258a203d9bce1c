// method.h — the method registry: every mixed-precision method the harness runs, as
// one row of an explicit table (methods.cc). A row says what the runner needs to know
// about a method and nothing else compares method names:
//
//   absl::StatusOr<const MethodEntry*> m = FindMethod("impq");   // error lists the names
//   absl::StatusOr<std::shared_ptr<const MethodOptions>> o = (*m)->parse(&spec["impq"], run);
//   std::unique_ptr<Allocator> allocator = (*m)->make(**o);      // allocator.h
//
// A method's options are the spec's nested object named after it ("impq": {...}); the
// method parses them (unknown keys listed, every value range-checked) into its own
// options type, a MethodOptions. Adding a method: its allocator and options files, one
// row in methods.cc, its BUILD target, its experiment rows (docs/adding_a_method.md).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "lib/models/quant_config.h"

namespace mpq::alloc {

class Allocator;

// What a method's options may be checked against: the rest of the typed spec.
struct MethodContext {
  models::QuantConfig quant;        // the spec's quantizers and bits (units unset)
  int64_t epochs = 1;               // the spec's training epochs
  double validation_fraction = 0;   // 0 = no validation split
  uint64_t seed = 1;
};

// MethodOptions: one method's parsed options. ToJson gives every option (defaults
// included), so the canonical spec and the run identity name them all.
class MethodOptions {
 public:
  virtual ~MethodOptions() = default;
  virtual nlohmann::json ToJson() const = 0;
  // Share of the training split the method measures on with test-time transforms
  // (IMPQ's sensitivity); 0 = it needs no calibration data.
  virtual double CalibrationFraction() const { return 0; }
  // Epochs of training the whole run may spend, the spec's `epochs` included: the
  // report marks a run with less than its paper-setting reference as reduced budget.
  virtual int64_t EpochBudget(int64_t spec_epochs) const { return spec_epochs; }
  // kSearch methods: the conv units of the model the allocator starts from.
  virtual std::shared_ptr<const models::ConvUnitFactory> SearchUnits() const { return nullptr; }
};

// How the runner builds the model handed to the allocator.
enum class ModelBuild {
  kPlain,   // QConv2d / QAct with the spec's quantizers and bits
  kSearch,  // the units of MethodOptions::SearchUnits(); make_model builds the plain one
};

struct MethodEntry {
  const char* name;
  const char* summary;
  ModelBuild model_build;
  // false: the method keeps the bits the spec builds the model with (the uniform
  // baseline); true: it chooses an allocation of its own.
  bool chooses_bits;
  // true: the runner trains the spec's model for `epochs` before the allocator starts
  // (post-hoc methods); false: the allocator does all training itself.
  bool trains_starting_model;
  // true: every point the allocator reports is a trained network at that allocation,
  // so the report can read the run at any point (trajectories at matched cost).
  bool points_are_models;
  // The spec's "<name>" object (nullptr when absent: all defaults). Errors start with
  // the key: "\"key\": what is wrong; expected ...".
  absl::StatusOr<std::shared_ptr<const MethodOptions>> (*parse)(const nlohmann::json* options,
                                                                 const MethodContext& run);
  std::unique_ptr<Allocator> (*make)(const MethodOptions& options);
  // A spec (JSON object text) that runs this method end to end on the synthetic data
  // set in seconds; tests/experiments/methods_test runs every row's.
  const char* smoke_spec;
};

absl::Span<const MethodEntry> Methods();
absl::StatusOr<const MethodEntry*> FindMethod(absl::string_view name);
std::vector<std::string> MethodNames();

}  // namespace mpq::alloc
