#include "lib/train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lib/dist/data_parallel.h"
#include "lib/runtime/device.h"
#include "lib/runtime/interrupt.h"
#include "lib/train/state.h"

namespace mpq::train {
namespace {

using Clock = std::chrono::steady_clock;

struct TopK {
  int64_t top1 = 0, top5 = 0;
};

TopK CountCorrect(const at::Tensor& logits, const at::Tensor& labels) {
  const int64_t k = std::min<int64_t>(5, logits.size(1));
  const at::Tensor top = std::get<1>(logits.topk(k, 1));
  const at::Tensor hits = top.eq(labels.unsqueeze(1));
  return {hits.select(1, 0).sum().item<int64_t>(), hits.any(1).sum().item<int64_t>()};
}

// Decay conv/linear weights only: 1-D parameters are biases, BN affine parameters and
// quantizer parameters (steps, clips, ranges), which decay would shrink toward 0.
bool Decays(const at::Tensor& p) { return p.dim() >= 2; }

// Groups: 0 decayed weights, 1 the other weights, 2 (if any) architecture parameters.
std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(models::Model& model, const TrainOptions& o,
                                                       const std::vector<at::Tensor>& arch) {
  std::set<const void*> arch_ids;
  for (const at::Tensor& a : arch) arch_ids.insert(a.unsafeGetTensorImpl());
  std::vector<at::Tensor> decay, no_decay;
  for (const at::Tensor& p : model.parameters()) {
    if (arch_ids.count(p.unsafeGetTensorImpl())) continue;
    (Decays(p) ? decay : no_decay).push_back(p);
  }
  if (o.optimizer == Optimizer::kAdam) {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamOptions>(torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay)));
    groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamOptions>(torch::optim::AdamOptions(o.lr).weight_decay(0)));
    if (!arch.empty()) {
      groups.emplace_back(arch, std::make_unique<torch::optim::AdamOptions>(
                                    torch::optim::AdamOptions(o.arch_lr).weight_decay(o.arch_weight_decay)));
    }
    return std::make_unique<torch::optim::Adam>(groups, torch::optim::AdamOptions(o.lr));
  }
  auto sgd = [&](double wd) {
    return std::make_unique<torch::optim::SGDOptions>(
        torch::optim::SGDOptions(o.lr).momentum(o.momentum).nesterov(o.nesterov).weight_decay(wd));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, sgd(o.weight_decay));
  groups.emplace_back(no_decay, sgd(0));
  if (!arch.empty()) {
    groups.emplace_back(arch, std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(o.arch_lr)
                                                                             .momentum(o.arch_momentum)
                                                                             .weight_decay(o.arch_weight_decay)));
  }
  return std::make_unique<torch::optim::SGD>(groups, torch::optim::SGDOptions(o.lr).momentum(o.momentum).nesterov(o.nesterov));
}

// Groups 0 and 1 get `lr`, group 2 (architecture) `arch_lr`.
void SetLearningRate(torch::optim::Optimizer& optimizer, double lr, double arch_lr) {
  auto& groups = optimizer.param_groups();
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(i < 2 ? lr : arch_lr);
}

// History rows: epoch, lr, train_loss, train_top1, val_loss, val_top1, val_top5, img/s, seconds.
at::Tensor HistoryTensor(const std::vector<EpochStats>& history) {
  at::Tensor t = at::zeros({static_cast<int64_t>(history.size()), 9}, at::kDouble);
  for (size_t i = 0; i < history.size(); ++i) {
    const EpochStats& s = history[i];
    const double row[9] = {static_cast<double>(s.epoch), s.lr, s.train_loss, s.train_top1, s.val_loss,
                           s.val_top1, s.val_top5, s.images_per_second, s.seconds};
    for (int c = 0; c < 9; ++c) t[i][c] = row[c];
  }
  return t;
}

std::vector<EpochStats> HistoryFrom(const at::Tensor& t) {
  std::vector<EpochStats> h;
  const at::Tensor c = t.to(at::kCPU).contiguous();  // read onto the model's device
  const double* p = c.data_ptr<double>();
  for (int64_t i = 0; i < c.size(0); ++i, p += 9) {
    h.push_back({static_cast<int64_t>(p[0]), p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]});
  }
  return h;
}

std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds);
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

}  // namespace

absl::StatusOr<EvalResult> Evaluate(models::Model& model, data::DataLoader& loader, int64_t max_steps) {
  const bool was_training = model.is_training();
  model.eval();
  at::NoGradGuard no_grad;
  EvalResult r;
  double loss_sum = 0;
  int64_t top1 = 0, top5 = 0, steps = 0;
  loader.StartEpoch(0);
  const c10::Device device = runtime::DeviceOf(model);
  data::Batch batch;
  while (max_steps == 0 || steps < max_steps) {
    absl::StatusOr<bool> more = loader.Next(&batch);
    if (!more.ok()) return more.status();
    if (!*more) break;
    data::ToDevice(&batch, device);
    const at::Tensor logits = model.forward(batch.images);
    loss_sum += at::cross_entropy_loss(logits, batch.labels).item<double>() * batch.labels.size(0);
    const TopK c = CountCorrect(logits, batch.labels);
    top1 += c.top1;
    top5 += c.top5;
    r.examples += batch.labels.size(0);
    ++steps;
  }
  model.train(was_training);
  if (r.examples == 0) return absl::InvalidArgumentError("evaluate: the loader produced no examples");
  r.loss = loss_sum / r.examples;
  r.top1 = 100.0 * top1 / r.examples;
  r.top5 = 100.0 * top5 / r.examples;
  return r;
}

Trainer::Trainer(models::Model& model, data::DataLoader& train, data::DataLoader* validation, TrainOptions options)
    : model_(model), train_(train), validation_(validation), options_(std::move(options)) {}

double Trainer::LearningRate(double t) const {
  const TrainOptions& o = options_;
  if (t < o.warmup_epochs) return o.lr * std::min(1.0, (t + 1e-9) / o.warmup_epochs);
  switch (o.schedule) {
    case Schedule::kConstant:
      return o.lr;
    case Schedule::kStep:
      return o.lr * std::pow(o.gamma, std::floor(t / o.step_size));
    case Schedule::kMultiStep: {
      int passed = 0;
      for (int64_t m : o.milestones) passed += t >= m;
      return o.lr * std::pow(o.gamma, passed);
    }
    case Schedule::kCosine: {
      const double span = std::max<double>(1.0, o.epochs - o.warmup_epochs);
      return o.lr * 0.5 * (1 + std::cos(M_PI * std::min(1.0, (t - o.warmup_epochs) / span)));
    }
  }
  return o.lr;
}

absl::StatusOr<TrainResult> Trainer::Run() {
  const TrainOptions& o = options_;
  if (o.epochs <= 0 || !(o.lr > 0) || o.warmup_epochs < 0 || o.warmup_epochs > o.epochs) {
    return absl::InvalidArgumentError(absl::StrCat("trainer: epochs ", o.epochs, " and lr ", o.lr,
                                                   " must be positive and warmup_epochs ", o.warmup_epochs,
                                                   " in [0, epochs]"));
  }
  at::set_num_threads(o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  // Everything follows the model: batches, the optimizer's state, checkpoints read back.
  const c10::Device device = runtime::DeviceOf(model_);
  if (o.data_parallel != nullptr && !device.is_cpu()) {
    return absl::UnimplementedError(absl::StrCat("trainer: data-parallel training on ", device.str(),
                                                 ": only Gloo on CPU tensors is wired so far (NCCL is not; "
                                                 "docs/distributed.md); use device cpu"));
  }
  std::unique_ptr<torch::optim::Optimizer> optimizer = MakeOptimizer(model_, o, arch_parameters_);
  TrainResult result;
  std::vector<at::Tensor> best_state;

  const std::string last_path = o.checkpoint_dir.empty() ? "" : o.checkpoint_dir + "/last.pt";
  const std::string best_path = o.checkpoint_dir.empty() ? "" : o.checkpoint_dir + "/best.pt";
  std::error_code ec;
  if (!o.checkpoint_dir.empty() &&
      (o.data_parallel == nullptr || o.data_parallel->rank() == 0 || o.checkpoint_on_every_rank)) {
    std::filesystem::create_directories(o.checkpoint_dir, ec);
    if (ec) return absl::PermissionDeniedError(absl::StrCat("trainer: cannot create ", o.checkpoint_dir, ": ", ec.message()));
  }

  // Resume: best weights first (into memory), then the last epoch's full state.
  if (!last_path.empty() && std::filesystem::exists(last_path, ec)) {
    torch::serialize::InputArchive best, archive;
    if (std::filesystem::exists(best_path, ec)) {
      if (absl::Status s = LoadArchive(best, best_path, device); !s.ok()) return s;
    }
    if (absl::Status s = LoadArchive(archive, last_path, device); !s.ok()) return s;
    if (std::filesystem::exists(best_path, ec)) {
      if (absl::Status s = LoadModuleFrom(model_, best, best_path); !s.ok()) return s;
      best_state = CopyState(model_);
    }
    try {
      torch::serialize::InputArchive model_archive, optimizer_archive;
      archive.read("model", model_archive);
      if (absl::Status s = LoadModuleFrom(model_, model_archive, last_path); !s.ok()) return s;
      archive.read("optimizer", optimizer_archive);
      optimizer->load(optimizer_archive);
      at::Tensor history, best_epoch, best_val, rng;
      archive.read("history", history);
      archive.read("best_epoch", best_epoch);
      archive.read("best_val_top1", best_val);
      archive.read("rng", rng);
      result.history = HistoryFrom(history);
      result.best_epoch = best_epoch.item<int64_t>();
      result.best_val_top1 = best_val.item<double>();
      at::Generator generator = at::detail::getDefaultCPUGenerator();
      generator.set_state(rng.to(at::kCPU));
      // A CUDA run's generator (dropout on the GPU), when resuming on CUDA; a run that
      // moves between a GPU and the CPU continues from the CPU generator alone.
      at::Tensor cuda_rng;
      if (device.is_cuda() && archive.try_read("rng_cuda", cuda_rng)) {
        at::Generator cuda_generator = at::globalContext().defaultGenerator(device);
        cuda_generator.set_state(cuda_rng.to(at::kCPU));
      }
      result.resumed_from_epoch = static_cast<int64_t>(result.history.size());
    } catch (const c10::Error& e) {
      return absl::DataLossError(absl::StrCat("trainer: cannot resume from ", last_path,
                                              " (a different network or build? delete it to restart): ",
                                              e.what_without_backtrace()));
    }
    if (o.progress && (o.data_parallel == nullptr || o.data_parallel->rank() == 0)) {
      absl::PrintF("resuming after epoch %d from %s\n", result.history.size(), last_path);
    }
  }

  dist::DataParallel* const dp = o.data_parallel;
  const bool writer = dp == nullptr || dp->rank() == 0;  // prints and writes checkpoints
  const bool writes_checkpoints = writer || o.checkpoint_on_every_rank;
  const bool progress = o.progress && writer;
  std::vector<at::Tensor> trained;  // what the optimizer steps: the gradients to average
  for (const auto& group : optimizer->param_groups()) {
    for (const at::Tensor& p : group.params()) trained.push_back(p);
  }
  if (dp != nullptr) {
    std::vector<at::Tensor> state = trained;
    for (const at::Tensor& b : model_.buffers()) state.push_back(b);
    if (absl::Status s = dp->Broadcast(state); !s.ok()) return s;
  }
  const bool tty = progress && isatty(fileno(stdout));
  const int64_t loader_steps = train_.num_batches();
  const int64_t steps = o.max_steps_per_epoch > 0 ? std::min(o.max_steps_per_epoch, loader_steps) : loader_steps;
  const auto run_start = Clock::now();
  int64_t images_this_run = 0;

  const int64_t first_epoch = static_cast<int64_t>(result.history.size());
  const int64_t end_epoch = o.stop_after_epochs > 0 ? std::min(o.epochs, first_epoch + o.stop_after_epochs) : o.epochs;
  for (int64_t epoch = first_epoch; epoch < end_epoch; ++epoch) {
    model_.train();
    train_.StartEpoch(epoch);
    const auto epoch_start = Clock::now();
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    data::Batch batch;
    for (int64_t step = 0; step < steps; ++step) {
      const std::string where = absl::StrFormat("training epoch %d, step %d", epoch + 1, step);
      if (absl::Status s = runtime::CheckInterrupt(where); !s.ok() && dp == nullptr) return s;
      absl::StatusOr<bool> more = train_.Next(&batch);
      if (!more.ok()) return more.status();
      if (!*more) break;
      data::ToDevice(&batch, device);
      const double lr = LearningRate(epoch + static_cast<double>(step) / steps);
      const double arch_lr = lr * o.arch_lr / o.lr;
      if (o.alternate_arch && !arch_parameters_.empty()) {
        const bool arch_step = (epoch * steps + step) % 2 == 1;
        SetLearningRate(*optimizer, arch_step ? 0.0 : lr, arch_step ? arch_lr : 0.0);
      } else {
        SetLearningRate(*optimizer, lr, arch_lr);
      }
      optimizer->zero_grad();
      const int64_t n = batch.labels.size(0);  // 0 only for a data-parallel shard
      at::Tensor logits, loss;
      double loss_value = 0, ce_value = 0;
      if (n > 0) {
        logits = model_.forward(batch.images);
        const at::Tensor ce = at::cross_entropy_loss(logits, batch.labels);
        loss = ce;
        if (extra_loss_) loss = loss + extra_loss_();
        loss_value = loss.item<double>();
        ce_value = extra_loss_ ? ce.item<double>() : loss_value;
      }
      // Divergence is the task loss exploding (or anything non-finite): a penalty term
      // may legitimately start large (Uhlich et al.'s memory penalty far from its target).
      const bool diverged = n > 0 && (!std::isfinite(loss_value) || ce_value > o.divergence_loss);
      bool others_diverged = false;
      if (dp != nullptr) {  // every rank stops at the same step, or none does
        absl::StatusOr<std::vector<double>> flags =
            dp->SumOverRanks({runtime::InterruptSignal() != 0 ? 1.0 : 0.0, diverged ? 1.0 : 0.0});
        if (!flags.ok()) return flags.status();
        if ((*flags)[0] > 0) {
          // The group stops as one: a rank not signalled itself ends as interrupted too.
          runtime::InterruptFromAnotherRank();
          return runtime::CheckInterrupt(where);
        }
        others_diverged = (*flags)[1] > 0 && !diverged;
      }
      if (diverged || others_diverged) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "trainer: %s at epoch %d, step %d: loss %g, cross-entropy %g (limit %g); the last good checkpoint "
            "is %s",
            diverged ? "diverged" : "another rank diverged", epoch, step, loss_value, ce_value, o.divergence_loss,
            last_path.empty() ? "(none: no checkpoint_dir)" : last_path));
      }
      if (n > 0) loss.backward();
      if (dp != nullptr) {
        absl::StatusOr<int64_t> global = dp->AverageGradients(trained, n);
        if (!global.ok()) return global.status();
        if (*global == 0) continue;  // no rank had an example (every one skipped as bad)
      }
      if (after_backward_) after_backward_();
      optimizer->step();
      if (after_step_) after_step_();
      if (n == 0) continue;
      loss_sum += loss_value * n;
      correct += logits.detach().argmax(1).eq(batch.labels).sum().item<int64_t>();
      seen += n;
      images_this_run += n;
      if (tty && (step % 10 == 0 || step + 1 == steps)) {
        const double elapsed = std::chrono::duration<double>(Clock::now() - run_start).count();
        const double rate = images_this_run / std::max(elapsed, 1e-9);
        const double remaining_images = (o.epochs - epoch) * static_cast<double>(steps) * n - (step + 1) * n;
        absl::PrintF("\repoch %d/%d step %d/%d loss %.4f acc %.2f%% %.0f img/s ETA %s   ", epoch + 1, o.epochs,
                     step + 1, steps, loss_sum / seen, 100.0 * correct / seen, rate, Duration(remaining_images / rate));
        std::fflush(stdout);
      }
    }
    if (dp != nullptr) {  // the global batch's statistics
      absl::StatusOr<std::vector<double>> sums =
          dp->SumOverRanks({loss_sum, static_cast<double>(correct), static_cast<double>(seen)});
      if (!sums.ok()) return sums.status();
      loss_sum = (*sums)[0];
      correct = static_cast<int64_t>(std::llround((*sums)[1]));
      seen = static_cast<int64_t>(std::llround((*sums)[2]));
    }
    if (seen == 0) return absl::InvalidArgumentError("trainer: the training loader produced no examples");

    EpochStats stats;
    stats.epoch = epoch;
    stats.lr = LearningRate(epoch + 1.0 - 1e-9);
    stats.train_loss = loss_sum / seen;
    stats.train_top1 = 100.0 * correct / seen;
    stats.seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    stats.images_per_second = seen / std::max(stats.seconds, 1e-9);
    if (dp != nullptr) {
      // Buffers (BatchNorm's running statistics) from rank 0, as DDP's broadcast_buffers
      // does: every rank validates, selects and checkpoints the same network.
      std::vector<at::Tensor> buffers;
      for (const at::Tensor& b : model_.buffers()) buffers.push_back(b);
      if (absl::Status s = dp->Broadcast(buffers); !s.ok()) return s;
    }
    if (before_validation_) {
      if (absl::Status s = before_validation_(); !s.ok()) return s;
    }
    if (validation_ != nullptr) {
      absl::StatusOr<EvalResult> v = Evaluate(model_, *validation_, o.max_steps_per_epoch);
      if (!v.ok()) return v.status();
      stats.val_loss = v->loss;
      stats.val_top1 = v->top1;
      stats.val_top5 = v->top5;
    }
    result.history.push_back(stats);
    // Model selection on the validation split only (the last epoch when there is none).
    const bool selectable = !selectable_ || selectable_();
    const bool improved = selectable && (validation_ == nullptr || !o.select_best || result.best_epoch < 0 ||
                                         stats.val_top1 > result.best_val_top1);
    if (improved) {
      result.best_epoch = epoch;
      result.best_val_top1 = stats.val_top1;
      best_state = CopyState(model_);
    }
    // The epoch's metrics are stored before the checkpoint moves past it: a kill between
    // the two replays the epoch, whose (identical) metrics the store's unique key absorbs.
    if (callback_) {
      if (absl::Status s = callback_(stats); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("trainer: epoch ", epoch + 1, ": ", s.message()));
      }
    }
    if (!o.checkpoint_dir.empty() && writes_checkpoints) {
      if (improved) {
        torch::serialize::OutputArchive best;
        model_.save(best);
        if (absl::Status s = SaveArchive(best, best_path); !s.ok()) return s;
      }
      torch::serialize::OutputArchive archive, model_archive, optimizer_archive;
      model_.save(model_archive);
      optimizer->save(optimizer_archive);
      archive.write("model", model_archive);
      archive.write("optimizer", optimizer_archive);
      archive.write("history", HistoryTensor(result.history));
      archive.write("best_epoch", at::scalar_tensor(result.best_epoch, at::kLong));
      archive.write("best_val_top1", at::scalar_tensor(result.best_val_top1, at::kDouble));
      archive.write("rng", at::detail::getDefaultCPUGenerator().get_state());
      if (device.is_cuda()) archive.write("rng_cuda", at::globalContext().defaultGenerator(device).get_state());
      if (absl::Status s = SaveArchive(archive, last_path); !s.ok()) return s;
    }
    if (progress) {
      absl::PrintF("%sepoch %d/%d: train loss %.4f acc %.2f%%, val loss %.4f top-1 %.2f%% top-5 %.2f%%, lr %.3g, "
                   "%.0f img/s, %.1f s%s\n",
                   tty ? "\r" : "", epoch + 1, o.epochs, stats.train_loss, stats.train_top1, stats.val_loss,
                   stats.val_top1, stats.val_top5, stats.lr, stats.images_per_second, stats.seconds,
                   improved && validation_ ? " (best)" : "");
      std::fflush(stdout);
    }
  }
  result.completed = static_cast<int64_t>(result.history.size()) == o.epochs;
  // A finished run hands back the best epoch's weights; a paused one keeps training state.
  if (result.completed && !best_state.empty()) RestoreState(model_, best_state);
  return result;
}

}  // namespace mpq::train
