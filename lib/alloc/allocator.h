// allocator.h — the interface every mixed-precision method implements. An allocator
// takes a model (built with the spec's quantizers and, for post-hoc methods, already
// trained by the runner) and ends in the same artifact whatever the method: a bit-width
// assignment (allocation.h) plus the trained model in `context.model`. Along the way it
// reports points (an allocation with its validation/test accuracy and cost), which the
// runner stores in SQLite (metrics + allocations tables, keyed by point index), so
// reports can draw trajectories for any method.
//
//   ImpqAllocator impq(options);                      // impq.h
//   AllocatorContext ctx = ...;                        // model, loaders, state_dir, callbacks
//   absl::StatusOr<AllocatorResult> r = impq.Run(ctx); // resumable: call again after a kill
//
// The methods behind it (the registry, method.h, lists them for the runner):
// - Uniform (uniform.h): keeps the bits the model was built with; one point.
// - Post-hoc iterative (IMPQ, impq.h): measure sensitivity -> lower bits -> fine-tune
//   with train::Trainer -> report a point; state in state_dir so a killed run resumes
//   mid-iteration.
// - Differentiable search (EdMIPS, edmips.h): the model is built with the method's
//   search units (MixQConv2d / MixQAct); Run trains W and alpha with the BitOps
//   Lagrangian, reports each search epoch's argmax allocation as a point (and alpha as
//   metrics), discretizes into the plain network from make_model, retrains it and
//   returns that allocation.
// - Random search (random_search.h): K random allocations under a cost budget, each
//   fine-tuned briefly; the best on validation is kept.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "datasets/loader.h"
#include "lib/alloc/allocation.h"
#include "lib/alloc/metric_names.h"
#include "lib/cost/cost_model.h"
#include "lib/models/model.h"
#include "lib/train/trainer.h"

namespace mpq::alloc {

// One allocation worth keeping, with how good and how costly it is.
struct AllocationPoint {
  int64_t index = 0;           // 0 = the starting model; then one per iteration / epoch
  Allocation allocation;
  double val_top1 = 0;         // selection and stopping use this (never the test set)
  double test_top1 = -1;       // reported only; -1 when no test loader was given
  cost::CostTotals cost;
  std::string note;            // e.g. "reduced 200 weight groups (paper metric)"
};

// One epoch of training inside an allocator, with where the runner files it: metrics
// PhaseMetric(phase, name) at (step, epoch) (metric_names.h).
struct TrainingProgress {
  const char* phase = names::kPhaseTrain;  // kPhaseTrain, kPhaseSearch or kPhaseFinetune
  int64_t step = 0;
  double epoch = 0;
  train::EpochStats stats;
};

struct AllocatorContext {
  models::Model* model = nullptr;
  data::DataLoader* train = nullptr;
  data::DataLoader* validation = nullptr;   // required by methods that select or stop on accuracy
  data::DataLoader* test = nullptr;         // optional: test accuracy of each point, for the report
  data::DataLoader* calibration = nullptr;  // training examples with test-time transforms (sensitivity)
  train::TrainOptions training;             // the run's optimizer, threads, ... (methods override epochs, lr)
  std::vector<int64_t> input_shape;         // [1, C, H, W] for the cost model
  std::string state_dir;                    // the allocator's resumable state ("" = not resumable)
  // Shared by every run of one results database: content-addressed artifacts that runs
  // with identical inputs may reuse (HAWQ-V3's Hessian traces); "" = no sharing.
  std::string shared_dir;
  std::function<absl::Status(const AllocationPoint&)> on_point;               // store it (may be empty)
  std::function<absl::Status(const TrainingProgress&)> on_epoch;              // training progress (may be empty)
  // Named scalars of a point (e.g. EdMIPS's softmax(alpha) per layer); may be empty.
  std::function<absl::Status(int64_t point, const std::vector<std::pair<std::string, double>>&)> on_metrics;
  // Builds a fresh network with the run's quantizers (methods that search on one network
  // and retrain another, like EdMIPS); may be empty for the others.
  std::function<std::shared_ptr<models::Model>()> make_model;
  // Builds a fresh network of the run's architecture with other quantization settings
  // (methods that train quantizers of their own on the trained starting model, like
  // Uhlich et al.); an error when the architecture cannot take them. May be empty.
  std::function<absl::StatusOr<std::shared_ptr<models::Model>>(const models::QuantConfig&)> make_model_with;
};

struct AllocatorResult {
  Allocation allocation;        // the final assignment (the model holds it)
  int64_t final_point = 0;      // index of the point the model ended at
  int64_t points = 0;           // points reported in total (including earlier invocations)
  bool completed = true;        // false: paused (resume by calling Run again)
  std::string stop_reason;
  std::string details_json = "{}";  // method-specific record (e.g. IMPQ's metric and schedule)
  std::shared_ptr<models::Model> model;  // set when the final network is not context.model (EdMIPS)
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual std::string name() const = 0;
  virtual absl::StatusOr<AllocatorResult> Run(AllocatorContext& context) = 0;
};

// The model's current allocation, validation (and test) accuracy and cost, as a point.
absl::StatusOr<AllocationPoint> MeasurePoint(AllocatorContext& context, int64_t index, std::string note);

// One epoch of an allocator's own trainer, reported: context.on_epoch (phase `phase`,
// step and epoch = stats.epoch + 1), then context.on_point with point stats.epoch + 1:
// the model's allocation and cost, and the epoch's validation accuracy as the trainer
// measured it (not re-evaluated; no test accuracy). For a Trainer's epoch callback.
absl::Status ReportEpochPoint(AllocatorContext& context, models::Model& model, const train::EpochStats& stats,
                              const char* phase, std::string note);

}  // namespace mpq::alloc
