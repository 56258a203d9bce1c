// options.h — how a model is trained: optimizer, learning-rate schedule, epochs,
// checkpoints (TrainOptions, read by trainer.h), and the names specs use for the
// optimizer and schedule kinds. Torch-free, so specs are parsed without LibTorch.
//
//   absl::StatusOr<Schedule> s = ParseSchedule("cosine");   // error lists the names
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mpq::dist {
class DataParallel;  // lib/dist/data_parallel.h
}  // namespace mpq::dist

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
  double divergence_loss = 1e3;           // stop when a batch loss is non-finite or its cross-entropy above this
  bool progress = true;                   // print progress (a live line on a terminal)
  bool select_best = true;                // end with the best epoch by validation (false: the last)
  // Architecture parameters (set_arch_parameters, e.g. EdMIPS's alpha): their own SGD
  // group with these settings; the schedule scales arch_lr like lr.
  double arch_lr = 0.01;                  // default 0.01 (EdMIPS)
  double arch_momentum = 0.9;             // default 0.9
  double arch_weight_decay = 1e-4;        // default 1e-4
  bool alternate_arch = false;            // false: one step updates both; true: even steps the
                                          // weights only, odd steps the architecture only
  // Data-parallel training (lib/dist/data_parallel.h; not owned; nullptr = one process,
  // the default). Every trainer made from a copy of these options (an allocator's from
  // AllocatorContext::training) takes part.
  // The training loader must be this rank's shard (LoaderOptions::shard_index/count) of
  // the global batch. Then: rank 0's parameters and buffers are broadcast before the
  // first step; gradients are averaged over the global batch after backward (before
  // after_backward, so clipping sees the averaged gradient); divergence and SIGTERM /
  // SIGINT are decided over all ranks at every step (one rank stopping stops all);
  // epoch statistics are over the global batch; every rank validates on the whole
  // validation loader (identical weights, identical numbers); only rank 0 prints and
  // writes checkpoints, while every rank resumes from checkpoint_dir (a directory all
  // ranks see). The epoch callback runs on every rank: a caller that stores metrics
  // stores them on rank 0 only. BatchNorm normalises each rank's batch with its own
  // statistics (PyTorch's DDP without SyncBatchNorm); the running statistics are rank
  // 0's, broadcast before every validation (DDP's broadcast_buffers).
  dist::DataParallel* data_parallel = nullptr;
  // With data_parallel: every rank writes its checkpoints to checkpoint_dir, which is
  // then its own (a follower's private copy of rank 0's state), not only rank 0. Default
  // off: the directory is shared and rank 0 alone writes it.
  bool checkpoint_on_every_rank = false;
};

const char* Name(Optimizer o);
const char* Name(Schedule s);
absl::StatusOr<Optimizer> ParseOptimizer(absl::string_view name);
absl::StatusOr<Schedule> ParseSchedule(absl::string_view name);
std::vector<std::string> OptimizerNames();
std::vector<std::string> ScheduleNames();

}  // namespace mpq::train
