// trainer.h — trains a Model on a DataLoader, selects the checkpoint on the validation
// split only, checkpoints every epoch atomically, resumes a killed run, and stops a
// diverging one with a clear status.
//
//   TrainOptions o;  o.epochs = 30;  o.lr = 0.1;  o.schedule = Schedule::kCosine;  o.checkpoint_dir = dir;
//   Trainer trainer(*model, *train_loader, val_loader.get(), o);
//   trainer.set_epoch_callback([&](const EpochStats& s) { store->AddMetrics(run, ToMetrics(s)); });
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

namespace mpq::train {

enum class Optimizer { kSgd, kAdam };
enum class Schedule { kConstant, kStep, kMultiStep, kCosine };

struct TrainOptions {
  Optimizer optimizer = Optimizer::kSgd;  // default SGD
  double lr = 0.1;                        // default 0.1
  double momentum = 0.9;                  // SGD; default 0.9
  bool nesterov = false;                  // default off
  double weight_decay = 5e-4;             // default 5e-4
  Schedule schedule = Schedule::kCosine;  // default cosine
  int64_t step_size = 30;                 // kStep; default 30 epochs
  std::vector<int64_t> milestones;        // kMultiStep; epochs
  double gamma = 0.1;                     // kStep / kMultiStep factor; default 0.1
  int64_t warmup_epochs = 0;              // linear warm-up; default 0
  int64_t epochs = 1;                     // default 1
  int64_t max_steps_per_epoch = 0;        // 0 = the whole loader; for tests and smoke runs
  int64_t stop_after_epochs = 0;          // end this invocation after N more epochs (resume later); 0 = all
  int threads = 0;                        // LibTorch intra-op threads; 0 = all cores
  std::string checkpoint_dir;             // "" = no checkpoints (and no resume)
  double divergence_loss = 1e3;           // stop when a batch loss is non-finite or above this
  bool progress = true;                   // print progress (a live line on a terminal)
  bool select_best = true;                // end with the best epoch by validation (false: the last)
  // Architecture parameters (set_arch_parameters, e.g. EdMIPS's alpha): their own SGD
  // group with these settings; the schedule scales arch_lr like lr.
  double arch_lr = 0.01;                  // default 0.01 (EdMIPS)
  double arch_momentum = 0.9;             // default 0.9
  double arch_weight_decay = 1e-4;        // default 1e-4
  bool alternate_arch = false;            // false: one step updates both; true: even steps the
                                          // weights only, odd steps the architecture only
};

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
  int64_t best_epoch = -1;          // by validation top-1 (last epoch if no validation)
  double best_val_top1 = 0;
  int64_t resumed_from_epoch = -1;  // -1 = fresh start
  bool completed = false;           // all `epochs` done (false after stop_after_epochs)
};

// Evaluates without gradients in eval mode (restores the previous mode).
absl::StatusOr<EvalResult> Evaluate(models::Model& model, data::DataLoader& loader, int64_t max_steps = 0);

class Trainer {
 public:
  Trainer(models::Model& model, data::DataLoader& train, data::DataLoader* validation, TrainOptions options);

  // Called after every epoch (after the checkpoint is written).
  void set_epoch_callback(std::function<void(const EpochStats&)> callback) { callback_ = std::move(callback); }
  // Parameters optimized as architecture (own optimizer group; see TrainOptions::arch_*).
  void set_arch_parameters(std::vector<at::Tensor> parameters) { arch_parameters_ = std::move(parameters); }
  // A term added to the cross-entropy at every training step (e.g. EdMIPS's complexity
  // penalty); the reported train loss includes it.
  void set_extra_loss(std::function<at::Tensor()> extra_loss) { extra_loss_ = std::move(extra_loss); }

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
  std::function<void(const EpochStats&)> callback_;
  std::vector<at::Tensor> arch_parameters_;
  std::function<at::Tensor()> extra_loss_;
};

}  // namespace mpq::train
