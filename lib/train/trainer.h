// trainer.h — trains a Model on a DataLoader, selects the checkpoint on the validation
// split only, checkpoints every epoch atomically, resumes a killed run, and stops a
// diverging one with a clear status.
//
//   TrainOptions o;  o.epochs = 30;  o.lr = 0.1;  o.schedule = Schedule::kCosine;  o.checkpoint_dir = dir;
//   Trainer trainer(*model, *train_loader, val_loader.get(), o);
//   trainer.set_epoch_callback([&](const EpochStats& s) { return store->AddMetrics(run, ToMetrics(s)); });
//   absl::StatusOr<TrainResult> result = trainer.Run();   // resumes from dir/last.pt if present
//
// Learning rate at fractional epoch t (warm-up first, then the schedule over the rest):
//   warm-up (t < warmup_epochs): lr * (t + 1/steps) / warmup_epochs, linear
//   kConstant lr;  kStep lr * gamma^floor(t / step_size);  kMultiStep lr * gamma^(#milestones <= t)
//   kCosine lr * (1 + cos(pi * (t - warmup) / (epochs - warmup))) / 2
// Weight decay applies to every parameter except BN and quantizer parameters (steps,
// clips, alpha): decaying those shrinks the quantization range rather than regularizing.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "datasets/loader.h"
#include "lib/models/model.h"
#include "lib/train/options.h"

namespace mpq::train {

struct EpochStats {
  int64_t epoch = 0;                // 0-based
  double lr = 0;                    // at the end of the epoch
  double train_loss = 0, train_top1 = 0;
  double val_loss = 0, val_top1 = 0, val_top5 = 0;  // 0 when there is no validation loader
  double images_per_second = 0;     // training throughput
  double seconds = 0;
};

struct EvalResult {
  double loss = 0, top1 = 0, top5 = 0;  // top-k in percent
  int64_t examples = 0;
};

struct TrainResult {
  std::vector<EpochStats> history;  // every epoch, including those before a resume
  int64_t best_epoch = -1;          // by validation top-1 (last epoch if no validation); -1: none selectable
  double best_val_top1 = 0;
  int64_t resumed_from_epoch = -1;  // -1 = fresh start
  bool completed = false;           // all `epochs` done (false after stop_after_epochs)
};

// Evaluates without gradients in eval mode (restores the previous mode).
absl::StatusOr<EvalResult> Evaluate(models::Model& model, data::DataLoader& loader, int64_t max_steps = 0);

class Trainer {
 public:
  Trainer(models::Model& model, data::DataLoader& train, data::DataLoader* validation, TrainOptions options);

  // Called after every epoch, before its checkpoint is written (so a kill never loses an
  // epoch's metrics; a replayed epoch calls it again with the same numbers). An error
  // stops training with that error.
  void set_epoch_callback(std::function<absl::Status(const EpochStats&)> callback) { callback_ = std::move(callback); }
  // Parameters optimized as architecture (own optimizer group; see TrainOptions::arch_*).
  void set_arch_parameters(std::vector<at::Tensor> parameters) { arch_parameters_ = std::move(parameters); }
  // A term added to the cross-entropy at every training step (e.g. EdMIPS's complexity
  // penalty); the reported train loss includes it.
  void set_extra_loss(std::function<at::Tensor()> extra_loss) { extra_loss_ = std::move(extra_loss); }
  // Called at every training step after backward, before the optimizer step (e.g.
  // clipping gradients), and after the optimizer step (e.g. projecting parameters to
  // their valid ranges, as Uhlich et al.'s code does at every step).
  void set_step_hooks(std::function<void()> after_backward, std::function<void()> after_step) {
    after_backward_ = std::move(after_backward);
    after_step_ = std::move(after_step);
  }
  // When set, only epochs for which it returns true (called after the epoch's training,
  // on the model as it then is) can become the best epoch: e.g. only networks within
  // their memory budget. No eligible epoch: best_epoch stays -1 and the model ends at
  // the last epoch.
  void set_selectable(std::function<bool()> selectable) { selectable_ = std::move(selectable); }
  // Called after each epoch's training, before its validation (e.g. re-estimating
  // BatchNorm statistics); an error stops training with it.
  void set_before_validation(std::function<absl::Status()> hook) { before_validation_ = std::move(hook); }

  // Trains the remaining epochs. On success the model holds the weights of the best
  // epoch (by validation top-1). Divergence returns FailedPrecondition naming the
  // epoch, step and loss; data errors are returned as they come.
  absl::StatusOr<TrainResult> Run();

  double LearningRate(double epoch_progress) const;

 private:
  models::Model& model_;
  data::DataLoader& train_;
  data::DataLoader* validation_;
  TrainOptions options_;
  std::function<absl::Status(const EpochStats&)> callback_;
  std::vector<at::Tensor> arch_parameters_;
  std::function<at::Tensor()> extra_loss_;
  std::function<void()> after_backward_, after_step_;
  std::function<bool()> selectable_;
  std::function<absl::Status()> before_validation_;
};

}  // namespace mpq::train
