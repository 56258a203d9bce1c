// spec.h — an experiment as data: what to train, on what, how quantized, with which
// method and budget. experiment() targets (experiments/defs.bzl) write one as JSON; the
// runner and the report parse it once into this typed form.
//
//   absl::StatusOr<ExperimentSpec> spec = ParseSpec(json_text, "experiments/quickstart_fp32.json");
//   // unknown keys and bad values are errors that name the file, the key and what is valid
//   const alloc::ImpqOptions& impq = spec->options<alloc::ImpqOptions>();   // method = "impq"
//   std::string hash = SpecHash(*spec, code_identity);                      // run identity
//
// JSON shape: the keys below at the top level, and the method's own options as an
// object named after it, e.g. {"name": "x", "method": "impq", "weight_bits": 4,
// "impq": {"weight_schedule": "0:400", "finetune_epochs": 30}} (lib/alloc/method.h;
// each method's header lists its keys). Another method's object is an error.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "lib/alloc/method.h"
#include "lib/models/quant_config.h"
#include "lib/train/options.h"

namespace mpq::experiments {

struct ExperimentSpec {
  std::string name;                        // required: the target's name
  std::string model = "resnet20";          // lib/models registry
  std::string dataset = "fashion_mnist";   // datasets registry
  std::string data_dir;                    // "" = the dataset's default location
  int64_t image_size = 0;                  // network input size; 0 (unset) = the model's default
  const alloc::MethodEntry* method = nullptr;                 // "method", default "uniform"
  std::shared_ptr<const alloc::MethodOptions> method_options;  // the "<method>" object, parsed
  // "weight_quantizer" (lin), "granularity" (per_channel), "weight_bits" (32 = FP),
  // "act_quantizer" (none), "act_bits" (32), "quantize_first_and_last" (true).
  models::QuantConfig quant;
  int64_t epochs = 1;
  int64_t batch_size = 128;
  train::Optimizer optimizer = train::Optimizer::kSgd;  // "optimizer": sgd or adam
  double lr = 0.1;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  train::Schedule schedule = train::Schedule::kCosine;  // "schedule": constant, step, multistep, cosine
  int64_t warmup_epochs = 0;
  double validation_fraction = 0.1;        // held out from train, per class
  int64_t train_subset = 0;                // use only N training examples (after the split); 0 = all
  int64_t seed = 1;
  std::string paper_row;                   // "" or the published row this reproduces (experiments/papers)
  // Where it computes: auto (a CUDA device when there is one, else the CPU), cpu, cuda,
  // cuda:N (lib/runtime/device.h; the runner's --device overrides it). Like data_dir, not
  // part of the run identity: a run interrupted on a GPU resumes on a CPU and the reverse.
  std::string device = "auto";

  // The method's options as their type (the method's header), e.g. options<alloc::ImpqOptions>().
  template <typename T>
  const T& options() const {
    return dynamic_cast<const T&>(*method_options);
  }
  // The spec's training settings (optimizer, lr, schedule, epochs); threads etc. unset.
  train::TrainOptions Training() const;
  // What the method's options were checked against.
  alloc::MethodContext MethodContext() const;
};

// Parses and validates: every key's type and range, the model and dataset against
// their registries (and the image size against the model), the method's options by the
// method. `source` names the file in error messages.
absl::StatusOr<ExperimentSpec> ParseSpec(const std::string& json_text, const std::string& source);

// A run stored by an earlier version (flat "impq_*" / "edmips_*" keys) in today's shape,
// then parsed; today's shape passes through. For reading the results store.
absl::StatusOr<ExperimentSpec> ParseStoredSpec(const std::string& json_text, const std::string& source);

// The spec with another `epochs` (the runner's --epochs), validated again.
absl::StatusOr<ExperimentSpec> WithEpochs(const ExperimentSpec& spec, int64_t epochs);

// Canonical JSON (all keys with their values, the method's object with all options).
std::string SpecToJson(const ExperimentSpec& spec);

// Run identity: 16 hex digits of FNV-1a 64 over the canonical JSON (without data_dir,
// which says where the data is, not what it is, nor device, where it computes) and the
// code version.
// The published row ids of every <dir>/*.json paper file (experiments/papers); errors
// name the file.
absl::StatusOr<std::set<std::string>> ReadPaperRows(const std::string& dir);
// A spec's paper_row must be one of `rows` ("" is always fine).
absl::Status CheckPaperRow(const ExperimentSpec& spec, const std::set<std::string>& rows, const std::string& dir);

// The run identity: the spec (without data_dir), the code identity (code_identity.h) and, when given, the
// fingerprint of the dataset files (experiments/data_fingerprint.h).
std::string SpecHash(const ExperimentSpec& spec, const std::string& code_identity,
                     const std::string& data_fingerprint = "");

}  // namespace mpq::experiments
