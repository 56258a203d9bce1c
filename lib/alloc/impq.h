// impq.h — IMPQ (Gonugondla & Shanbhag, ICASSP 2022): iterative, sensitivity-ordered
// precision reduction at layer or kernel granularity, starting from a trained model.
//
//   ImpqOptions o;
//   o.weight_schedule = *ParseSchedule("0:400,3:200,4:150");   // groups losing a bit per iteration
//   o.finetune_epochs = 30;  o.finetune_lr = 2e-4;  o.target_bw_eff = 1.74;
//   ImpqAllocator impq(o);
//   absl::StatusOr<AllocatorResult> r = impq.Run(context);     // allocator.h
//
// Iteration i (1, 2, ...): measure sensitivity (sensitivity.h) on context.calibration;
// lower by one bit the N_w weight groups (and, in weights+activations mode, N_a
// activation groups) with the smallest scores among those above the floor; fine-tune
// `finetune_epochs` with train::Trainer (model selection on validation); report the
// point. Point 0 is the starting model. Stopping, checked after each iteration:
//   target_bw_eff > 0 and B_w,eff <= target        -> stop, keep this iteration
//   target_cc > 0 and C_C <= target                 -> stop, keep this iteration
//   budget_bits > 0 and BitOps <= those of the start
//     with every quantized group at budget_bits     -> stop, keep this iteration
//   max_val_drop >= 0 and val(0) - val(i) > bound   -> stop, revert to iteration i-1
//   no group above the floor, or max_iterations     -> stop
// With spend_budget, a run that stops before max_iterations fine-tunes the kept iteration
// for the epochs it did not use ((max_iterations - iterations done) x finetune_epochs,
// best validation epoch kept) and reports that as its last point, so that every run
// spends EpochBudget() in full (the leaderboard's protocol). The sensitivity passes are
// counted in allocator_details.sensitivity_epochs: examples x classes compared (one
// backward pass each) over the training split's size.
// State in context.state_dir: state.json (iterations done, stop decision), point_<i>.pt
// (the model after iteration i), iter_<i>/reduced.pt (after the reduction, before
// fine-tuning: a resumed run does not re-measure), the Trainer's own checkpoints in
// iter_<i>/ and spend/, so a run killed anywhere resumes where it was.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/alloc/allocator.h"
#include "lib/alloc/method.h"
#include "lib/alloc/schedule.h"
#include "lib/alloc/sensitivity.h"

namespace mpq::alloc {

struct ImpqOptions : public MethodOptions {
  SensitivityMetric metric = SensitivityMetric::kPaper;  // default the paper's
  ReductionRule reduction = ReductionRule::kExact;       // default the paper's N; kThreshold: the code's N+1
  SensitivityOptions sensitivity;                        // eval_top (default all classes)
  Schedule weight_schedule = {{0, 400}};                 // default 400 per iteration
  Schedule act_schedule;                                 // empty = weights only (default)
  int64_t max_iterations = 10;                           // default 10
  int64_t finetune_epochs = 1;                           // default 1
  double finetune_lr = 2e-4;                             // default 2e-4 (ResNet-20 in the authors' code)
  int64_t finetune_warmup_epochs = 0;                    // default 0
  double target_bw_eff = 0;                              // 0 = off
  double target_cc = 0;                                  // bit-ops (C_C), 0 = off
  int64_t budget_bits = 0;                               // BitOps of the start at these bits everywhere, 0 = off
  bool spend_budget = false;                             // fine-tune the unused iterations' epochs at the end
  double max_val_drop = -1;                              // percentage points, < 0 = off
  int64_t min_weight_bits = 1;                           // floor; default 1
  int64_t min_act_bits = 2;                              // floor; default 2
  double eval_fraction = 0.05;                           // share of the training split measured (calibration)
  int64_t stop_after_finetune_epochs = 0;                // pause after N fine-tune epochs (0 = run on; tests)

  // The spec's "impq" object: keys metric (paper | code), reduction (exact | threshold), eval_top, eval_fraction,
  // weight_schedule and act_schedule ("ITER:GROUPS,..."), max_iterations,
  // finetune_epochs, finetune_lr, finetune_warmup_epochs, target_bw_eff,
  // target_cc_gbitops, budget_bits, spend_budget, max_val_drop, min_weight_bits, min_act_bits; defaults as above.
  static absl::StatusOr<std::shared_ptr<const MethodOptions>> Parse(const nlohmann::json* options,
                                                                     const MethodContext& run);
  nlohmann::json ToJson() const override;
  double CalibrationFraction() const override { return eval_fraction; }
  int64_t EpochBudget(int64_t spec_epochs) const override {
    return spec_epochs + max_iterations * finetune_epochs;
  }
};

class ImpqAllocator : public Allocator {
 public:
  explicit ImpqAllocator(ImpqOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "impq"; }
  absl::StatusOr<AllocatorResult> Run(AllocatorContext& context) override;

  // One reduction step on `model`: measures nothing, lowers the selected groups of
  // `sensitivity` by one bit. Returns how many weight and activation groups were lowered.
  static absl::StatusOr<std::pair<int64_t, int64_t>> Reduce(torch::nn::Module& model,
                                                            const std::vector<GroupSensitivity>& sensitivity,
                                                            const ImpqOptions& options, int64_t iteration);

 private:
  ImpqOptions options_;
};

}  // namespace mpq::alloc
