// run: runs experiment specs (experiments/spec.h) and records them in the results store.
//
//   bazel run //experiments:quickstart                     # an experiment() target calls this
//   bazel run //experiments:run -- --spec=experiments/specs/x.json --epochs=1 --data_dir=/data/cifar10
//
// For each spec: the run identity is SpecHash(spec, code version). A finished run with
// the same identity is a cache hit (printed, not re-run) unless --force; an unfinished
// one (killed, failed) resumes from its last checkpoint in
// results/checkpoints/<hash>/. Every epoch's metrics, the final test accuracy, the cost
// model's figures and the run's status go to the database. After all specs, a summary
// table lists each run. Exit status: 0 all finished, 1 a run failed, 2 data missing or
// bad arguments.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "datasets/loader.h"
#include "datasets/random.h"
#include "datasets/registry.h"
#include "experiments/spec.h"
#include "lib/alloc/edmips.h"
#include "lib/alloc/impq.h"
#include "lib/alloc/uniform.h"
#include "lib/cost/cost_model.h"
#include "lib/models/registry.h"
#include "lib/runtime/malloc_tuning.h"
#include "lib/train/trainer.h"
#include "results/store.h"

ABSL_FLAG(std::vector<std::string>, spec, {}, "Spec files (comma-separated), run in order.");
ABSL_FLAG(std::string, data_dir, "", "Override the specs' data_dir.");
ABSL_FLAG(std::vector<std::string>, dataset_dir, {},
          "Per-dataset data directories, NAME=DIR (comma-separated), e.g. cifar10=/data/cifar10; "
          "applied to the specs of that dataset.");
ABSL_FLAG(bool, skip_missing_data, false,
          "A spec whose dataset is not available is listed as 'no data' without making the exit status non-zero "
          "(for the nightly).");
ABSL_FLAG(int64_t, epochs, 0, "Override the specs' epochs (0 = keep).");
ABSL_FLAG(std::string, db, "", "Results database; default <workspace>/results/mpqbench.db.");
ABSL_FLAG(int, threads, 0, "LibTorch threads; 0 = all cores.");
ABSL_FLAG(int, workers, 1, "Data loader worker threads.");
ABSL_FLAG(bool, force, false, "Re-run finished specs instead of reporting the cached result.");

namespace mpq::experiments {
namespace {

std::string Workspace() {
  const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  return ws ? ws : std::filesystem::current_path().string();
}

// The code version a run records: `git describe --always --dirty` of the workspace.
std::string CodeVersion(const std::string& workspace) {
  const std::string cmd = absl::StrCat("git -C '", workspace, "' describe --always --dirty 2>/dev/null");
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  out = std::string(absl::StripAsciiWhitespace(out));
  return out.empty() ? "unknown" : out;
}

std::string Host() {
  char name[256] = {0};
  gethostname(name, sizeof name - 1);
  return name;
}

struct Summary {
  std::string name, status, note;
  int64_t run = 0;
  std::optional<results::FinalResult> result;
};

nn::WeightQuantizer WeightQuantizerOf(const std::string& s) {
  if (s == "none") return nn::WeightQuantizer::kNone;
  if (s == "dorefa") return nn::WeightQuantizer::kDorefa;
  if (s == "lsq") return nn::WeightQuantizer::kLsq;
  if (s == "hwgq") return nn::WeightQuantizer::kHwgq;
  if (s == "uhlich") return nn::WeightQuantizer::kUhlich;
  return nn::WeightQuantizer::kLin;
}

nn::ActQuantizer ActQuantizerOf(const std::string& s) {
  if (s == "dorefa") return nn::ActQuantizer::kDorefa;
  if (s == "pact") return nn::ActQuantizer::kPact;
  if (s == "lsq") return nn::ActQuantizer::kLsq;
  if (s == "hwgq") return nn::ActQuantizer::kHwgq;
  if (s == "uhlich") return nn::ActQuantizer::kUhlich;
  return nn::ActQuantizer::kNone;
}

train::TrainOptions TrainOptionsOf(const ExperimentSpec& s) {
  train::TrainOptions o;
  o.optimizer = s.optimizer == "adam" ? train::Optimizer::kAdam : train::Optimizer::kSgd;
  o.lr = s.lr;
  o.momentum = s.momentum;
  o.weight_decay = s.weight_decay;
  o.schedule = s.schedule == "constant"    ? train::Schedule::kConstant
               : s.schedule == "step"      ? train::Schedule::kStep
               : s.schedule == "multistep" ? train::Schedule::kMultiStep
                                           : train::Schedule::kCosine;
  o.warmup_epochs = s.warmup_epochs;
  o.epochs = s.epochs;
  o.threads = absl::GetFlag(FLAGS_threads);
  return o;
}

// The spec's allocator (lib/alloc). Specs are validated, so the schedules parse.
std::unique_ptr<alloc::Allocator> MakeAllocator(const ExperimentSpec& s) {
  if (s.method == "edmips") {
    alloc::EdmipsOptions o;
    o.cd = s.edmips_cd;
    o.search_epochs = s.edmips_search_epochs;
    o.search_step_size = s.edmips_search_step_size;
    o.arch_lr = s.edmips_arch_lr;
    o.alternate = s.edmips_alternate;
    o.discretize = s.edmips_discretize == "sample" ? alloc::Discretization::kSample : alloc::Discretization::kArgmax;
    o.seed = static_cast<uint64_t>(s.seed);
    return std::make_unique<alloc::EdmipsAllocator>(o);
  }
  if (s.method != "impq") return std::make_unique<alloc::UniformAllocator>();
  alloc::ImpqOptions o;
  o.metric = s.impq_metric == "code" ? alloc::SensitivityMetric::kCode : alloc::SensitivityMetric::kPaper;
  o.sensitivity.eval_top = s.impq_eval_top;
  o.weight_schedule = *alloc::ParseSchedule(s.impq_weight_schedule);
  o.act_schedule = *alloc::ParseSchedule(s.impq_act_schedule);
  o.max_iterations = s.impq_max_iterations;
  o.finetune_epochs = s.impq_finetune_epochs;
  o.finetune_lr = s.impq_finetune_lr;
  o.finetune_warmup_epochs = s.impq_finetune_warmup_epochs;
  o.target_bw_eff = s.impq_target_bw_eff;
  o.target_cc = s.impq_target_cc_gbitops * 1e9;
  o.max_val_drop = s.impq_max_val_drop;
  o.min_weight_bits = s.impq_min_weight_bits;
  o.min_act_bits = s.impq_min_act_bits;
  return std::make_unique<alloc::ImpqAllocator>(o);
}

std::vector<results::GroupBits> ToStore(const alloc::Allocation& a) {
  std::vector<results::GroupBits> out;
  out.reserve(a.groups.size());
  for (const alloc::GroupBits& g : a.groups) out.push_back({g.layer, g.is_weight, g.group, g.bits});
  return out;
}

// Holds an flock on a run's checkpoint directory for this process; released on scope exit.
class RunLock {
 public:
  explicit RunLock(const std::string& dir) : fd_(open((dir + "/lock").c_str(), O_CREAT | O_RDWR, 0644)) {}
  ~RunLock() {
    if (fd_ >= 0) close(fd_);  // closing releases the flock
  }
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  bool TryLock() { return fd_ >= 0 && flock(fd_, LOCK_EX | LOCK_NB) == 0; }

 private:
  int fd_;
};

// Exit-code classes: data missing is 2, everything else 1.
struct RunError {
  absl::Status status;
  bool needs_data = false;
};

absl::StatusOr<Summary> RunOne(const ExperimentSpec& spec, results::ResultStore& store, const std::string& workspace,
                               const std::string& code_version, RunError* error) {
  Summary summary;
  summary.name = spec.name;
  const std::string hash = SpecHash(spec, code_version);
  absl::StatusOr<std::optional<results::RunRecord>> previous = store.LatestRunWithSpecHash(hash);
  if (!previous.ok()) return previous.status();
  if (previous->has_value() && (*previous)->status == "finished" && !absl::GetFlag(FLAGS_force)) {
    summary.run = (*previous)->id;
    summary.status = "cached";
    absl::StatusOr<std::optional<results::FinalResult>> r = store.GetResult(summary.run);
    if (!r.ok()) return r.status();
    summary.result = *r;
    absl::PrintF("%s: cached result of run %d (same spec and code %s); --force re-runs it\n", spec.name, summary.run,
                 code_version);
    return summary;
  }

  // Data first: a missing dataset is reported before anything is written.
  const data::DatasetEntry* entry = *data::FindDataset(spec.dataset);
  std::string dir = spec.data_dir.empty() ? entry->default_dir : spec.data_dir;
  if (dir.empty() && std::string(entry->name) != "synthetic") {
    error->needs_data = true;
    return absl::FailedPreconditionError(
        absl::StrCat(spec.name, " needs the ", spec.dataset, " dataset: ", entry->how_to_get));
  }
  absl::StatusOr<std::unique_ptr<data::Dataset>> train_set = entry->load(dir, data::Split::kTrain);
  absl::StatusOr<std::unique_ptr<data::Dataset>> test_set =
      train_set.ok() ? entry->load(dir, data::Split::kTest) : train_set.status();
  if (!train_set.ok() || !test_set.ok()) {
    error->needs_data = true;
    const absl::Status& s = !train_set.ok() ? train_set.status() : test_set.status();
    return absl::FailedPreconditionError(absl::StrCat(spec.name, ": ", s.message(), "\nto get the data: ", entry->how_to_get));
  }

  // Checkpoints by identity; the lock keeps two processes off the same run.
  const std::string checkpoint_dir = absl::StrCat(workspace, "/results/checkpoints/", hash);
  std::filesystem::create_directories(checkpoint_dir);
  RunLock lock(checkpoint_dir);
  if (!lock.TryLock()) {
    return absl::UnavailableError(absl::StrCat(spec.name, ": another process is running this spec (", checkpoint_dir, ")"));
  }

  int64_t run = 0;
  if (previous->has_value() && (*previous)->status != "finished") {
    run = (*previous)->id;
    if (absl::Status s = store.MarkRun(run, results::RunStatus::kRunning); !s.ok()) return s;
    absl::PrintF("%s: resuming run %d (%s)\n", spec.name, run, (*previous)->status);
  } else {
    results::NewRun n;
    n.name = spec.name;
    n.spec_json = SpecToJson(spec);
    n.spec_hash = hash;
    n.code_version = code_version;
    n.seed = spec.seed;
    n.host = Host();
    const int threads = absl::GetFlag(FLAGS_threads) > 0 ? absl::GetFlag(FLAGS_threads)
                                                           : static_cast<int>(std::thread::hardware_concurrency());
    n.device = absl::StrCat("cpu (", threads, " threads)");
    absl::StatusOr<int64_t> id = store.CreateRun(n);
    if (!id.ok()) return id.status();
    run = *id;
    if (absl::GetFlag(FLAGS_force)) std::filesystem::remove(checkpoint_dir + "/last.pt");
    absl::PrintF("%s: run %d (spec %s, code %s)\n", spec.name, run, hash, code_version);
  }
  summary.run = run;

  auto fail = [&](const absl::Status& s) -> absl::StatusOr<Summary> {
    (void)store.MarkRun(run, results::RunStatus::kFailed, std::string(s.message()));
    return s;
  };

  absl::StatusOr<data::TrainValidationSplit> split =
      data::SplitTrainValidation(**train_set, spec.validation_fraction, static_cast<uint64_t>(spec.seed));
  if (!split.ok()) return fail(split.status());
  std::vector<int64_t> train_indices = split->train;
  if (spec.train_subset > 0 && spec.train_subset < static_cast<int64_t>(train_indices.size())) {
    data::Rng(data::MixSeed(static_cast<uint64_t>(spec.seed), 0x737562ULL /* "sub" */)).Shuffle(train_indices);
    train_indices.resize(spec.train_subset);
    std::sort(train_indices.begin(), train_indices.end());
  }
  const data::Pipelines pipelines = entry->pipelines(spec.image_size);
  data::LoaderOptions lo;
  lo.batch_size = spec.batch_size;
  lo.shuffle = true;
  lo.seed = static_cast<uint64_t>(spec.seed);
  lo.num_workers = absl::GetFlag(FLAGS_workers);
  absl::StatusOr<std::unique_ptr<data::DataLoader>> train_loader =
      data::DataLoader::Create(**train_set, train_indices, pipelines.train, lo);
  if (!train_loader.ok()) return fail(train_loader.status());
  lo.shuffle = false;
  std::unique_ptr<data::DataLoader> val_loader;
  if (!split->validation.empty()) {
    absl::StatusOr<std::unique_ptr<data::DataLoader>> v =
        data::DataLoader::Create(**train_set, split->validation, pipelines.eval, lo);
    if (!v.ok()) return fail(v.status());
    val_loader = std::move(*v);
  }
  std::vector<int64_t> test_indices((*test_set)->size());
  for (int64_t i = 0; i < (*test_set)->size(); ++i) test_indices[i] = i;
  absl::StatusOr<std::unique_ptr<data::DataLoader>> test_loader =
      data::DataLoader::Create(**test_set, test_indices, pipelines.eval, lo);
  if (!test_loader.ok()) return fail(test_loader.status());

  models::ModelOptions mo;
  mo.in_channels = (*train_set)->info().channels;
  mo.num_classes = (*train_set)->info().num_classes;
  mo.image_size = spec.image_size;
  mo.quant.weight_quantizer = WeightQuantizerOf(spec.weight_quantizer);
  mo.quant.granularity = spec.granularity == "per_tensor" ? nn::Granularity::kPerTensor : nn::Granularity::kPerChannel;
  mo.quant.weight_bits = spec.weight_bits;
  mo.quant.act_quantizer = ActQuantizerOf(spec.act_quantizer);
  mo.quant.act_bits = spec.act_bits;
  mo.quant.quantize_first_and_last = spec.quantize_first_and_last;
  const bool edmips = spec.method == "edmips";
  if (edmips) {  // validated by ParseSpec
    mo.quant.search_weight_bits = *ParseCandidates(spec.edmips_weight_candidates);
    mo.quant.search_act_bits = *ParseCandidates(spec.edmips_act_candidates);
  }
  models::ModelOptions search_options = mo;
  search_options.quant.mixed_search = edmips;
  at::manual_seed(static_cast<uint64_t>(spec.seed));
  std::shared_ptr<models::Model> model;
  try {
    model = (*models::FindModel(spec.model))->make(search_options);
  } catch (const c10::Error& e) {
    return fail(absl::InvalidArgumentError(absl::StrCat(spec.name, ": cannot build ", spec.model, ": ", e.what_without_backtrace())));
  }

  // The spec's training: the model itself (uniform), IMPQ's starting model; EdMIPS trains
  // inside its allocator (search, then the discrete network), so nothing here.
  train::TrainOptions to = TrainOptionsOf(spec);
  to.checkpoint_dir = checkpoint_dir;
  if (edmips) to.epochs = 0;
  train::Trainer trainer(*model, **train_loader, val_loader.get(), to);
  trainer.set_epoch_callback([&](const train::EpochStats& s) {
    const int64_t step = (s.epoch + 1) * (*train_loader)->num_batches();
    const double epoch = s.epoch + 1.0;
    absl::Status st = store.AddMetrics(run, {{step, epoch, "train_loss", s.train_loss},
                                             {step, epoch, "train_top1", s.train_top1},
                                             {step, epoch, "val_loss", s.val_loss},
                                             {step, epoch, "val_top1", s.val_top1},
                                             {step, epoch, "val_top5", s.val_top5},
                                             {step, epoch, "lr", s.lr},
                                             {step, epoch, "images_per_second", s.images_per_second}});
    if (st.ok()) st = store.AddCheckpoint(run, s.epoch, checkpoint_dir + "/last.pt");
    if (!st.ok()) absl::FPrintF(stderr, "warning: metrics of epoch %d not stored: %s\n", s.epoch, st.message());
  });
  absl::StatusOr<train::TrainResult> trained = edmips ? absl::StatusOr<train::TrainResult>(train::TrainResult{})
                                                      : trainer.Run();
  if (!trained.ok()) return fail(trained.status());

  // The allocator: uniform keeps the built bits (one point); IMPQ reduces iteratively
  // from the trained model. Each point goes to the store (metrics "point_*" with step =
  // point index, and the allocations table).
  std::unique_ptr<data::DataLoader> calibration_loader;
  if (spec.method == "impq") {
    std::vector<int64_t> calib = split->train;
    data::Rng(data::MixSeed(static_cast<uint64_t>(spec.seed), 0x63616cULL /* "cal" */)).Shuffle(calib);
    calib.resize(std::max<size_t>(1, static_cast<size_t>(spec.impq_eval_fraction * calib.size())));
    std::sort(calib.begin(), calib.end());
    absl::StatusOr<std::unique_ptr<data::DataLoader>> c = data::DataLoader::Create(**train_set, calib, pipelines.eval, lo);
    if (!c.ok()) return fail(c.status());
    calibration_loader = std::move(*c);
  }
  alloc::AllocatorContext actx;
  actx.model = model.get();
  actx.train = train_loader->get();
  actx.validation = val_loader.get();
  actx.test = test_loader->get();
  actx.calibration = calibration_loader.get();
  actx.training = TrainOptionsOf(spec);
  actx.input_shape = {1, mo.in_channels, spec.image_size, spec.image_size};
  actx.state_dir = checkpoint_dir + "/alloc";
  actx.on_point = [&](const alloc::AllocationPoint& p) -> absl::Status {
    const int64_t step = p.index;
    const double at = static_cast<double>(p.index);
    std::vector<results::Metric> m = {{step, at, "point_val_top1", p.val_top1},
                                      {step, at, "point_bw_eff", p.cost.bw_eff},
                                      {step, at, "point_ba_eff", p.cost.ba_eff},
                                      {step, at, "point_cc", p.cost.cc},
                                      {step, at, "point_bitops", p.cost.bitops},
                                      {step, at, "point_weight_bytes", p.cost.weight_bytes},
                                      {step, at, "point_compression_ratio", p.cost.compression_ratio}};
    if (p.test_top1 >= 0) m.push_back({step, at, "point_test_top1", p.test_top1});
    if (absl::Status st = store.AddMetrics(run, m); !st.ok()) return st;
    absl::PrintF("%s: point %d: val %.2f%% test %s B_w,eff %.3f B_a,eff %.3f C_C %.4g Gbit-OPs  %s\n", spec.name,
                 p.index, p.val_top1, p.test_top1 >= 0 ? absl::StrFormat("%.2f%%", p.test_top1) : "-",
                 p.cost.bw_eff, p.cost.ba_eff, p.cost.cc / 1e9, p.note);
    std::fflush(stdout);
    return store.AddAllocation(run, p.index, ToStore(p.allocation));
  };
  actx.on_epoch = [&](int64_t point, const train::EpochStats& s) {
    absl::Status st;
    if (edmips) {  // search epochs, then the discrete network's training (its curve is "val_top1")
      const bool search = point <= spec.edmips_search_epochs;
      const double at = search ? point : s.epoch + 1.0;
      const int64_t step = search ? point : s.epoch + 1;
      st = store.AddMetrics(run, {{step, at, search ? "search_train_loss" : "train_loss", s.train_loss},
                                  {step, at, search ? "search_val_top1" : "val_top1", s.val_top1},
                                  {step, at, search ? "search_lr" : "lr", s.lr}});
    } else {
      const int64_t step = point * 10000 + s.epoch;
      const double at = point - 1 + (s.epoch + 1.0) / std::max<int64_t>(1, spec.impq_finetune_epochs);
      st = store.AddMetrics(run, {{step, at, "finetune_train_loss", s.train_loss},
                                  {step, at, "finetune_val_top1", s.val_top1}});
    }
    if (!st.ok()) absl::FPrintF(stderr, "warning: allocator training metrics not stored: %s\n", st.message());
  };
  actx.on_metrics = [&](int64_t point, const std::vector<std::pair<std::string, double>>& values) -> absl::Status {
    std::vector<results::Metric> m;
    for (const auto& [name, value] : values) m.push_back({point, static_cast<double>(point), name, value});
    return store.AddMetrics(run, m);
  };
  actx.make_model = [&]() -> std::shared_ptr<models::Model> { return (*models::FindModel(spec.model))->make(mo); };
  std::unique_ptr<alloc::Allocator> allocator = MakeAllocator(spec);
  absl::StatusOr<alloc::AllocatorResult> allocated = allocator->Run(actx);
  if (!allocated.ok()) return fail(allocated.status());
  if (!allocated->completed) return fail(absl::AbortedError("allocator paused: " + allocated->stop_reason));
  if (allocated->model) model = allocated->model;  // EdMIPS: the retrained discrete network

  absl::StatusOr<train::EvalResult> test = train::Evaluate(*model, **test_loader);
  if (!test.ok()) return fail(test.status());
  std::optional<double> final_val;
  if (val_loader) {
    absl::StatusOr<train::EvalResult> v = train::Evaluate(*model, *val_loader);
    if (!v.ok()) return fail(v.status());
    final_val = v->top1;
  }
  model->eval();
  const cost::CostReport cost = cost::MeasureModelCost(
      *model, [&](const at::Tensor& x) { return model->forward(x); }, {1, mo.in_channels, spec.image_size, spec.image_size});
  results::FinalResult r;
  r.dataset = spec.dataset;
  r.test_top1 = test->top1;
  r.test_top5 = test->top5;
  r.val_top1 = final_val;
  r.bitops = cost.totals.bitops;
  r.cc = cost.totals.cc;
  r.weight_bytes = cost.totals.weight_bytes;
  r.act_bytes_sum = cost.totals.act_bytes_sum;
  r.act_bytes_max = cost.totals.act_bytes_max;
  r.bw_eff = cost.totals.bw_eff;
  r.ba_eff = cost.totals.ba_eff;
  r.compression_ratio = cost.totals.compression_ratio;
  r.extra_json = absl::StrFormat(
      R"({"best_epoch": %d, "macs": %.0f, "params": %d, "train_examples": %d, "allocator": "%s", "final_point": %d, "points": %d, "allocator_details": %s})",
      trained->best_epoch, cost.totals.macs, cost.totals.params, train_indices.size(), allocator->name(),
      allocated->final_point, allocated->points, allocated->details_json);
  if (absl::Status s = store.FinishRun(run, r); !s.ok()) return s;
  summary.status = "finished";
  summary.result = r;
  if (spec.method != "uniform") {
    absl::PrintF("%s: run %d finished: test top-1 %.2f%% at B_w,eff %.3f, B_a,eff %.3f (%s, final point %d: %s)\n",
                 spec.name, run, test->top1, cost.totals.bw_eff, cost.totals.ba_eff, allocator->name(), allocated->final_point,
                 allocated->stop_reason);
  } else {
    absl::PrintF("%s: run %d finished: test top-1 %.2f%% (model chosen at epoch %d by validation top-1 %.2f%%)\n",
                 spec.name, run, test->top1, trained->best_epoch + 1, trained->best_val_top1);
  }
  return summary;
}

void PrintTable(const std::vector<Summary>& rows, const std::string& db) {
  absl::PrintF("\n%-24s %6s %-9s %8s %8s %8s %12s %12s\n", "experiment", "run", "status", "top-1", "B_w,eff", "B_a,eff",
               "BitOps", "weights (B)");
  for (const Summary& s : rows) {
    auto f = [&](const std::optional<double>& v, const char* fmt) { return v ? absl::StrFormat(fmt, *v) : std::string("-"); };
    const results::FinalResult r = s.result.value_or(results::FinalResult{});
    absl::PrintF("%-24s %6s %-9s %8s %8s %8s %12s %12s\n", s.name, s.run ? absl::StrCat(s.run) : "-", s.status,
                 f(r.test_top1, "%.2f"), f(r.bw_eff, "%.2f"), f(r.ba_eff, "%.2f"), f(r.bitops, "%.4g"),
                 f(r.weight_bytes, "%.0f"));
    if (!s.note.empty()) absl::PrintF("    %s\n", s.note);
  }
  absl::PrintF("stored in %s (bazel run //results:query -- show <run>)\n", db);
}

}  // namespace
}  // namespace mpq::experiments

int main(int argc, char** argv) {
  mpq::runtime::TuneMallocForRepeatedLargeAllocations();
  absl::SetProgramUsageMessage("run --spec=FILE[,FILE...] [--data_dir=DIR] [--epochs=N] [--db=PATH] [--force]");
  const std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    absl::FPrintF(stderr, "run: unexpected argument '%s'; usage: %s\n", rest[1], absl::ProgramUsageMessage());
    return 2;
  }
  const std::vector<std::string> spec_files = absl::GetFlag(FLAGS_spec);
  if (spec_files.empty()) {
    absl::FPrintF(stderr, "run: no --spec given; usage: %s\n", absl::ProgramUsageMessage());
    return 2;
  }
  const std::string workspace = mpq::experiments::Workspace();
  std::vector<mpq::experiments::ExperimentSpec> specs;
  for (const std::string& file : spec_files) {
    std::ifstream in(file);
    if (!in) {
      absl::FPrintF(stderr, "run: cannot read spec file %s\n", file);
      return 2;
    }
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<mpq::experiments::ExperimentSpec> spec = mpq::experiments::ParseSpec(text.str(), file);
    if (!spec.ok()) {
      absl::FPrintF(stderr, "run: %s\n", spec.status().message());
      return 2;
    }
    if (!absl::GetFlag(FLAGS_data_dir).empty()) spec->data_dir = absl::GetFlag(FLAGS_data_dir);
    for (const std::string& entry : absl::GetFlag(FLAGS_dataset_dir)) {
      const size_t eq = entry.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size()) {
        absl::FPrintF(stderr, "run: --dataset_dir entry '%s' is not NAME=DIR\n", entry);
        return 2;
      }
      if (entry.substr(0, eq) == spec->dataset) spec->data_dir = entry.substr(eq + 1);
    }
    if (absl::GetFlag(FLAGS_epochs) > 0) spec->epochs = absl::GetFlag(FLAGS_epochs);
    specs.push_back(*spec);
  }
  std::string db = absl::GetFlag(FLAGS_db);
  if (db.empty()) db = workspace + "/results/mpqbench.db";
  absl::StatusOr<std::unique_ptr<mpq::results::ResultStore>> store = mpq::results::ResultStore::Open(db);
  if (!store.ok()) {
    absl::FPrintF(stderr, "run: %s\n", store.status().message());
    return 2;
  }
  const std::string code_version = mpq::experiments::CodeVersion(workspace);
  std::vector<mpq::experiments::Summary> rows;
  int exit_code = 0;
  for (const auto& spec : specs) {
    mpq::experiments::RunError error;
    absl::StatusOr<mpq::experiments::Summary> s = mpq::experiments::RunOne(spec, **store, workspace, code_version, &error);
    if (!s.ok()) {
      absl::FPrintF(stderr, "run: %s\n", s.status().message());
      mpq::experiments::Summary failed;
      failed.name = spec.name;
      failed.status = error.needs_data ? "no data" : "failed";
      failed.note = std::string(s.status().message());
      rows.push_back(failed);
      if (!(error.needs_data && absl::GetFlag(FLAGS_skip_missing_data))) {
        exit_code = std::max(exit_code, error.needs_data ? 2 : 1);
      }
      continue;
    }
    rows.push_back(*s);
  }
  mpq::experiments::PrintTable(rows, db);
  return exit_code;
}
