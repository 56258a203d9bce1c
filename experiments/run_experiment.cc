#include "experiments/run_experiment.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <exception>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "datasets/loader.h"
#include "datasets/random.h"
#include "datasets/registry.h"
#include "experiments/data_fingerprint.h"
#include "lib/alloc/allocator.h"
#include "lib/alloc/metric_names.h"
#include "lib/cost/cost_model.h"
#include "lib/dist/data_parallel.h"
#include "lib/models/registry.h"
#include "lib/runtime/device.h"
#include "lib/runtime/digest.h"
#include "lib/runtime/interrupt.h"
#include "lib/train/trainer.h"

namespace mpq::experiments {
namespace {

namespace names = alloc::names;

std::string Host() {
  char name[256] = {0};
  gethostname(name, sizeof name - 1);
  return name;
}

// Holds an flock on one run identity of one database for this process; released on
// scope exit (or the process's death).
class RunLock {
 public:
  explicit RunLock(const std::string& path) : fd_(open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644)) {}
  ~RunLock() {
    if (fd_ >= 0) close(fd_);  // closing releases the flock
  }
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  bool TryLock() { return fd_ >= 0 && flock(fd_, LOCK_EX | LOCK_NB) == 0; }

 private:
  int fd_;
};

// Everything one run works with, filled stage by stage.
struct Run {
  Run(const ExperimentSpec& spec_, results::ResultStore& store_, const RunnerOptions& options_)
      : spec(spec_), store(store_), options(options_) {}
  const ExperimentSpec& spec;
  results::ResultStore& store;
  const RunnerOptions& options;
  c10::Device device = c10::Device(c10::kCPU);  // the model, its batches, its allocator's work
  std::string fingerprint, hash, state_root, checkpoint_dir;
  // A data-parallel follower's own copy of rank 0's allocator state (alloc/, shared/) in
  // <checkpoint_dir>/rank_<r>, taken before training starts: the follower reads and
  // writes only there, so no file rank 0 is writing is ever read half-written. Removed
  // when the run ends, replaced at the next launch.
  std::string private_root;
  int64_t id = 0;
  std::unique_ptr<RunLock> lock;
  const data::DatasetEntry* dataset = nullptr;
  std::unique_ptr<data::Dataset> train_set, test_set;
  std::vector<int64_t> train_indices;
  std::unique_ptr<data::DataLoader> train, validation, test, calibration;
  models::ModelOptions model_options;  // the plain network
  std::shared_ptr<models::Model> model;
  train::TrainResult trained;

  dist::DataParallel* dp() const { return options.data_parallel; }
  // Writes the store, the lock, the state directory and the output: one process, or rank 0.
  bool writer() const { return dp() == nullptr || dp()->rank() == 0; }

  std::vector<int64_t> InputShape() const {
    return {1, model_options.in_channels, spec.image_size, spec.image_size};
  }
  train::TrainOptions Training() const {
    train::TrainOptions o = spec.Training();
    o.threads = options.threads;
    o.data_parallel = options.data_parallel;
    o.progress = writer();
    return o;
  }
  // The allocator's state directories: rank 0's, or a follower's private copy.
  std::string AllocStateDir() const { return writer() ? checkpoint_dir + "/alloc" : private_root + "/alloc"; }
  std::string SharedDir() const { return writer() ? state_root + "/shared" : private_root + "/shared"; }
};

// A finished run with the same identity, unless forced.
absl::StatusOr<std::optional<RunSummary>> LookUpCache(Run& run, std::optional<results::RunRecord>* previous) {
  absl::StatusOr<std::optional<results::RunRecord>> p = run.store.LatestRunWithSpecHash(run.hash);
  if (!p.ok()) return p.status();
  *previous = *p;
  if (!p->has_value() || (*p)->status != "finished" || run.options.force) return std::optional<RunSummary>();
  RunSummary summary;
  summary.name = run.spec.name;
  summary.run = (*p)->id;
  summary.status = "cached";
  absl::StatusOr<std::optional<results::FinalResult>> r = run.store.GetResult(summary.run);
  if (!r.ok()) return r.status();
  summary.result = *r;
  absl::PrintF("%s: cached result of run %d (code %s; the same spec, data and result-relevant sources now at %s); "
               "--force re-runs it\n",
               run.spec.name, summary.run, (*p)->code_version, run.options.code_version);
  return std::optional<RunSummary>(summary);
}

// The datasets, before anything is written: a missing one names how to get it.
absl::Status LoadData(Run& run, RunError* error) {
  const ExperimentSpec& spec = run.spec;
  run.dataset = *data::FindDataset(spec.dataset);  // validated by ParseSpec
  const std::string dir = spec.data_dir.empty() ? run.dataset->default_dir : spec.data_dir;
  if (dir.empty() && std::string(run.dataset->name) != "synthetic") {
    error->needs_data = true;
    return absl::FailedPreconditionError(
        absl::StrCat(spec.name, " needs the ", spec.dataset, " dataset: ", run.dataset->how_to_get));
  }
  absl::StatusOr<std::unique_ptr<data::Dataset>> train = run.dataset->load(dir, data::Split::kTrain);
  absl::StatusOr<std::unique_ptr<data::Dataset>> test =
      train.ok() ? run.dataset->load(dir, data::Split::kTest) : train.status();
  if (!train.ok() || !test.ok()) {
    error->needs_data = true;
    const absl::Status& s = !train.ok() ? train.status() : test.status();
    return absl::FailedPreconditionError(
        absl::StrCat(spec.name, ": ", s.message(), "\nto get the data: ", run.dataset->how_to_get));
  }
  run.train_set = std::move(*train);
  run.test_set = std::move(*test);
  return absl::OkStatus();
}

// The identity (spec, code, data fingerprint) and its lock, taken before the cache is
// consulted: of two processes started on one spec, the second waits for nothing and
// re-runs nothing; it is told the spec is busy.
absl::Status LockIdentity(Run& run) {
  absl::StatusOr<std::string> fingerprint = DataFingerprint(*run.train_set, *run.test_set, run.store);
  if (!fingerprint.ok()) return fingerprint.status();
  run.fingerprint = *fingerprint;
  const std::string& code =
      run.options.code_identity.empty() ? run.options.code_version : run.options.code_identity;
  run.hash = SpecHash(run.spec, code, run.fingerprint);
  if (!run.writer()) return absl::OkStatus();  // rank 0 holds the lock and names the state directory
  // State belongs to one database: its random id names the directory.
  run.state_root = absl::StrCat(run.options.workspace, "/results/checkpoints/", run.store.database_id());
  std::error_code ec;
  std::filesystem::create_directories(run.state_root, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create ", run.state_root, ": ", ec.message()));
  run.lock = std::make_unique<RunLock>(absl::StrCat(run.state_root, "/", run.hash, ".lock"));
  if (!run.lock->TryLock()) {
    return absl::UnavailableError(absl::StrCat(run.spec.name, ": another process is running this spec (lock ",
                                               run.state_root, "/", run.hash, ".lock)"));
  }
  return absl::OkStatus();
}

// The run row: the unfinished run of this identity resumed, or a new one whose state
// directory starts empty. --force always starts a new run from nothing (an unfinished
// one it replaces is marked failed, naming its successor).
absl::Status OpenRun(Run& run, const std::optional<results::RunRecord>& previous) {
  const ExperimentSpec& spec = run.spec;
  auto dir_of = [&](int64_t id) { return absl::StrCat(run.state_root, "/run_", id); };
  std::error_code ec;
  if (previous.has_value() && previous->status != "finished" && !run.options.force) {
    run.id = previous->id;
    run.checkpoint_dir = dir_of(run.id);
    std::filesystem::create_directories(run.checkpoint_dir, ec);
    if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create ", run.checkpoint_dir, ": ", ec.message()));
    if (absl::Status s = run.store.MarkRun(run.id, results::RunStatus::kRunning); !s.ok()) return s;
    absl::PrintF("%s: resuming run %d (%s) on %s\n", spec.name, run.id, previous->status, run.device.str());
    return absl::OkStatus();
  }
  results::NewRun n;
  n.name = spec.name;
  n.spec_json = SpecToJson(spec);
  n.spec_hash = run.hash;
  n.code_version = run.options.code_version;
  n.seed = spec.seed;
  n.host = Host();
  const int threads =
      run.options.threads > 0 ? run.options.threads : static_cast<int>(std::thread::hardware_concurrency());
  n.device = runtime::DescribeDevice(run.device, threads, runtime::CudaDeviceCount());
  n.data_fingerprint = run.fingerprint;
  absl::StatusOr<int64_t> id = run.store.CreateRun(n);
  if (!id.ok()) return id.status();
  run.id = *id;
  run.checkpoint_dir = dir_of(run.id);
  std::filesystem::remove_all(run.checkpoint_dir, ec);  // nothing of anyone else's
  std::filesystem::create_directories(run.checkpoint_dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create ", run.checkpoint_dir, ": ", ec.message()));
  if (previous.has_value() && previous->status != "finished") {
    if (absl::Status s = run.store.MarkRun(previous->id, results::RunStatus::kFailed,
                                           absl::StrCat("abandoned: --force started run ", run.id, " from nothing"));
        !s.ok()) {
      return s;
    }
  }
  absl::PrintF("%s: run %d (spec %s, code %s, data %s)\n", spec.name, run.id, run.hash, run.options.code_version,
               run.fingerprint);
  return absl::OkStatus();
}

// Train / validation split (per class, seeded), the training subset, and the loaders;
// a calibration split of the training examples with test-time transforms when the
// method measures on one.
absl::Status MakeLoaders(Run& run) {
  const ExperimentSpec& spec = run.spec;
  const uint64_t seed = static_cast<uint64_t>(spec.seed);
  absl::StatusOr<data::TrainValidationSplit> split =
      data::SplitTrainValidation(*run.train_set, spec.validation_fraction, seed);
  if (!split.ok()) return split.status();
  run.train_indices = split->train;
  if (spec.train_subset > 0 && spec.train_subset < static_cast<int64_t>(run.train_indices.size())) {
    data::Rng(data::MixSeed(seed, 0x737562ULL /* "sub" */)).Shuffle(run.train_indices);
    run.train_indices.resize(spec.train_subset);
    std::sort(run.train_indices.begin(), run.train_indices.end());
  }
  const data::Pipelines pipelines = run.dataset->pipelines(spec.image_size);
  data::LoaderOptions lo;
  lo.batch_size = spec.batch_size;
  lo.shuffle = true;
  lo.seed = seed;
  lo.num_workers = run.options.workers;
  lo.device = run.device;  // decoded on the CPU workers, delivered on the run's device
  lo.pin_memory = run.device.is_cuda();
  if (run.dp() != nullptr) {  // this rank's share of every global batch
    lo.shard_index = run.dp()->rank();
    lo.shard_count = run.dp()->world_size();
  }
  absl::StatusOr<std::unique_ptr<data::DataLoader>> train =
      data::DataLoader::Create(*run.train_set, run.train_indices, pipelines.train, lo);
  if (!train.ok()) return train.status();
  run.train = std::move(*train);
  lo.shuffle = false;
  // Validation, test and calibration are whole on every rank: the weights are the same
  // everywhere, so are the numbers, the selected epoch and a method's sensitivities.
  lo.shard_index = 0;
  lo.shard_count = 1;
  if (!split->validation.empty()) {
    absl::StatusOr<std::unique_ptr<data::DataLoader>> v =
        data::DataLoader::Create(*run.train_set, split->validation, pipelines.eval, lo);
    if (!v.ok()) return v.status();
    run.validation = std::move(*v);
  }
  std::vector<int64_t> test_indices(run.test_set->size());
  for (int64_t i = 0; i < run.test_set->size(); ++i) test_indices[i] = i;
  absl::StatusOr<std::unique_ptr<data::DataLoader>> test =
      data::DataLoader::Create(*run.test_set, test_indices, pipelines.eval, lo);
  if (!test.ok()) return test.status();
  run.test = std::move(*test);
  if (const double fraction = spec.method_options->CalibrationFraction(); fraction > 0) {
    std::vector<int64_t> calib = split->train;
    data::Rng(data::MixSeed(seed, 0x63616cULL /* "cal" */)).Shuffle(calib);
    calib.resize(std::max<size_t>(1, static_cast<size_t>(fraction * calib.size())));
    std::sort(calib.begin(), calib.end());
    absl::StatusOr<std::unique_ptr<data::DataLoader>> c =
        data::DataLoader::Create(*run.train_set, calib, pipelines.eval, lo);
    if (!c.ok()) return c.status();
    run.calibration = std::move(*c);
  }
  return absl::OkStatus();
}

// The model the allocator starts from: the plain network, or one with the method's
// search units (the plain one is then built by make_model).
absl::Status BuildModel(Run& run) {
  const ExperimentSpec& spec = run.spec;
  models::ModelOptions& mo = run.model_options;
  mo.in_channels = run.train_set->info().channels;
  mo.num_classes = run.train_set->info().num_classes;
  mo.image_size = spec.image_size;
  mo.quant = spec.quant;
  models::ModelOptions start = mo;
  if (spec.method->model_build == alloc::ModelBuild::kSearch) {
    start.quant.units = spec.method_options->SearchUnits();
    if (!start.quant.units) {
      return absl::InternalError(absl::StrCat("method ", spec.method->name, " builds a search model but its options "
                                              "give no SearchUnits()"));
    }
  }
  at::manual_seed(static_cast<uint64_t>(spec.seed));
  try {
    run.model = (*models::FindModel(spec.model))->make(start);
    run.model->to(run.device);  // initialized on the CPU (seeded), then moved
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(spec.name, ": cannot build ", spec.model, ": ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

// The spec's own training of the starting model, when the method wants one (its
// per-epoch metrics at step = batches done).
absl::Status TrainStartingModel(Run& run) {
  if (!run.spec.method->trains_starting_model) return absl::OkStatus();
  train::TrainOptions to = run.Training();
  to.checkpoint_dir = run.checkpoint_dir;
  train::Trainer trainer(*run.model, *run.train, run.validation.get(), to);
  trainer.set_epoch_callback([&](const train::EpochStats& s) -> absl::Status {
    if (!run.writer()) return absl::OkStatus();
    const int64_t step = (s.epoch + 1) * run.train->num_batches();
    const double epoch = s.epoch + 1.0;
    absl::Status st = run.store.AddMetrics(run.id, {{step, epoch, names::kTrainLoss, s.train_loss},
                                                    {step, epoch, names::kTrainTop1, s.train_top1},
                                                    {step, epoch, names::kValLoss, s.val_loss},
                                                    {step, epoch, names::kValTop1, s.val_top1},
                                                    {step, epoch, names::kValTop5, s.val_top5},
                                                    {step, epoch, names::kLr, s.lr},
                                                    {step, epoch, names::kImagesPerSecond, s.images_per_second}});
    if (!st.ok()) return st;
    return run.store.AddCheckpoint(run.id, s.epoch, run.checkpoint_dir + "/last.pt");
  });
  absl::StatusOr<train::TrainResult> trained = trainer.Run();
  if (!trained.ok()) return trained.status();
  run.trained = *trained;
  return absl::OkStatus();
}

void PrintPoint(const std::string& name, const alloc::AllocationPoint& p) {
  absl::PrintF("%s: point %d: val %.2f%% test %s B_w,eff %.3f B_a,eff %.3f C_C %.4g Gbit-OPs  %s\n", name, p.index,
               p.val_top1, p.test_top1 >= 0 ? absl::StrFormat("%.2f%%", p.test_top1) : "-", p.cost.bw_eff,
               p.cost.ba_eff, p.cost.cc / 1e9, p.note);
  std::fflush(stdout);
}

// The method's allocator: every point, its allocation and the allocator's training
// go to the store. Returns the allocator's result; run.model is the final network.
absl::StatusOr<alloc::AllocatorResult> RunAllocator(Run& run, std::string* allocator_name) {
  const ExperimentSpec& spec = run.spec;
  alloc::AllocatorContext ctx;
  ctx.model = run.model.get();
  ctx.train = run.train.get();
  ctx.validation = run.validation.get();
  ctx.test = run.test.get();
  ctx.calibration = run.calibration.get();
  ctx.training = run.Training();
  // A follower's allocator checkpoints go to its private state directory, so that it
  // finds there what rank 0 finds in its own (the run's main checkpoints stay rank 0's).
  ctx.training.checkpoint_on_every_rank = true;
  ctx.input_shape = run.InputShape();
  ctx.state_dir = run.AllocStateDir();
  ctx.shared_dir = run.SharedDir();
  ctx.on_point = [&](const alloc::AllocationPoint& p) -> absl::Status {
    const int64_t step = p.index;
    const double at = static_cast<double>(p.index);
    std::vector<results::Metric> m = {{step, at, names::PointMetric(names::kValTop1), p.val_top1},
                                      {step, at, names::PointMetric(names::kBwEff), p.cost.bw_eff},
                                      {step, at, names::PointMetric(names::kBaEff), p.cost.ba_eff},
                                      {step, at, names::PointMetric(names::kCc), p.cost.cc},
                                      {step, at, names::PointMetric(names::kBitops), p.cost.bitops},
                                      {step, at, names::PointMetric(names::kWeightBytes), p.cost.weight_bytes},
                                      {step, at, names::PointMetric(names::kCompressionRatio), p.cost.compression_ratio},
                                      {step, at, names::PointMetric(names::kMemoryWeightKb), p.cost.memory_weight_kb},
                                      {step, at, names::PointMetric(names::kMemoryActKbMax), p.cost.memory_act_kb_max},
                                      {step, at, names::PointMetric(names::kMemoryActKbSum), p.cost.memory_act_kb_sum}};
    if (p.test_top1 >= 0) m.push_back({step, at, names::PointMetric(names::kTestTop1), p.test_top1});
    if (!run.writer()) return absl::OkStatus();
    // Stored (idempotently: a replayed point overwrites itself) before it is printed.
    if (absl::Status st = run.store.AddMetrics(run.id, m); !st.ok()) return st;
    if (absl::Status st = run.store.AddAllocation(run.id, p.index, p.allocation.groups); !st.ok()) return st;
    PrintPoint(spec.name, p);
    return absl::OkStatus();
  };
  ctx.on_epoch = [&](const alloc::TrainingProgress& p) {
    if (!run.writer()) return absl::OkStatus();
    return run.store.AddMetrics(
        run.id, {{p.step, p.epoch, names::PhaseMetric(p.phase, names::kTrainLoss), p.stats.train_loss},
                 {p.step, p.epoch, names::PhaseMetric(p.phase, names::kValTop1), p.stats.val_top1},
                 {p.step, p.epoch, names::PhaseMetric(p.phase, names::kLr), p.stats.lr}});
  };
  ctx.on_metrics = [&](int64_t point, const std::vector<std::pair<std::string, double>>& values) -> absl::Status {
    std::vector<results::Metric> m;
    for (const auto& [name, value] : values) m.push_back({point, static_cast<double>(point), name, value});
    if (!run.writer()) return absl::OkStatus();
    return run.store.AddMetrics(run.id, m);
  };
  ctx.make_model = [&]() -> std::shared_ptr<models::Model> {
    std::shared_ptr<models::Model> model = (*models::FindModel(spec.model))->make(run.model_options);
    model->to(run.device);
    return model;
  };
  ctx.make_model_with = [&](const models::QuantConfig& quant) -> absl::StatusOr<std::shared_ptr<models::Model>> {
    const models::ModelEntry* entry = *models::FindModel(spec.model);
    if (quant.act_placement == models::ActPlacement::kReluOutput && !entry->relu_placement) {
      return absl::InvalidArgumentError(absl::StrCat("model ", spec.model, " cannot quantize ReLU outputs (",
                                                     spec.method->name, " needs act_placement relu)"));
    }
    models::ModelOptions mo = run.model_options;
    mo.quant = quant;
    std::shared_ptr<models::Model> model = entry->make(mo);
    model->to(run.device);
    return model;
  };
  std::unique_ptr<alloc::Allocator> allocator = spec.method->make(*spec.method_options);
  *allocator_name = allocator->name();
  absl::StatusOr<alloc::AllocatorResult> allocated = allocator->Run(ctx);
  if (!allocated.ok()) return allocated.status();
  if (!allocated->completed) return absl::AbortedError("allocator paused: " + allocated->stop_reason);
  if (allocated->model) run.model = allocated->model;  // a search method's retrained network
  return allocated;
}

// Test (and validation) accuracy and the cost model's figures of the final network.
absl::StatusOr<results::FinalResult> Evaluate(Run& run, const alloc::AllocatorResult& allocated,
                                              const std::string& allocator_name) {
  models::Model& model = *run.model;
  absl::StatusOr<train::EvalResult> test = train::Evaluate(model, *run.test);
  if (!test.ok()) return test.status();
  results::FinalResult r;
  if (run.validation) {
    absl::StatusOr<train::EvalResult> v = train::Evaluate(model, *run.validation);
    if (!v.ok()) return v.status();
    r.val_top1 = v->top1;
  }
  model.eval();
  const cost::CostReport cost =
      cost::MeasureModelCost(model, [&](const at::Tensor& x) { return model.forward(x); }, run.InputShape());
  r.dataset = run.spec.dataset;
  r.test_top1 = test->top1;
  r.test_top5 = test->top5;
  r.bitops = cost.totals.bitops;
  r.cc = cost.totals.cc;
  r.weight_bytes = cost.totals.weight_bytes;
  r.act_bytes_sum = cost.totals.act_bytes_sum;
  r.act_bytes_max = cost.totals.act_bytes_max;
  r.bw_eff = cost.totals.bw_eff;
  r.ba_eff = cost.totals.ba_eff;
  r.compression_ratio = cost.totals.compression_ratio;
  r.memory_weight_kb = cost.totals.memory_weight_kb;
  r.memory_act_kb_max = cost.totals.memory_act_kb_max;
  r.memory_act_kb_sum = cost.totals.memory_act_kb_sum;
  r.extra_json = absl::StrFormat(R"({"%s": %d, "%s": %.0f, "%s": %d, "%s": %d, "%s": "%s", "%s": %d, "%s": %d, "%s": %s})",
                                 names::kExtraBestEpoch, run.trained.best_epoch, names::kExtraMacs, cost.totals.macs,
                                 names::kExtraParams, cost.totals.params, names::kExtraTrainExamples,
                                 run.train_indices.size(), names::kExtraAllocator, allocator_name,
                                 names::kExtraFinalPoint, allocated.final_point, names::kExtraPoints, allocated.points,
                                 names::kExtraAllocatorDetails, allocated.details_json);
  return r;
}

// Data-parallel ranks hold identical weights and evaluate the whole sets, so they must
// agree on the result and on the final allocation; a disagreement (a rank that saw other
// data or chose other bits) fails the run instead of storing rank 0's numbers as if they
// were everyone's.
absl::Status CheckRanksAgree(Run& run, const results::FinalResult& r) {
  runtime::Fnv1a64 h;
  for (const alloc::GroupBits& g : alloc::ReadAllocation(*run.model).groups) {
    h.Add(g.layer).Add(g.is_weight ? "w" : "a").Add(absl::StrCat(":", g.group, ":", g.bits, ";"));
  }
  const std::vector<double> mine = {r.test_top1.value_or(-1), r.val_top1.value_or(-1),
                                    static_cast<double>(h.value() >> 24)};  // 40 bits: exact in a double
  absl::StatusOr<std::vector<double>> sums = run.dp()->SumOverRanks(mine);
  if (!sums.ok()) return sums.status();
  const char* what[] = {"test top-1", "validation top-1", "final allocation"};
  for (size_t i = 0; i < mine.size(); ++i) {
    if ((*sums)[i] != mine[i] * run.dp()->world_size()) {
      return absl::InternalError(absl::StrFormat(
          "%s: data-parallel ranks disagree on the %s (rank %d: %.17g, mean over %d ranks: %.17g); not stored",
          run.spec.name, what[i], run.dp()->rank(), mine[i], run.dp()->world_size(), (*sums)[i] / run.dp()->world_size()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RunSummary> RunExperiment(const ExperimentSpec& spec, results::ResultStore& store,
                                         const RunnerOptions& options, RunError* error) {
  Run run(spec, store, options);
  // The device, before anything is written: CUDA where there is none is this call's error.
  {
    const std::string& setting_text = options.device.empty() ? spec.device : options.device;
    absl::StatusOr<runtime::DeviceSetting> setting = runtime::ParseDeviceSetting(setting_text);
    if (!setting.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(spec.name, ": ", options.device.empty() ? "\"device\"" : "--device",
                                                     ": ", setting.status().message()));
    }
    absl::StatusOr<c10::Device> device = runtime::ResolveDevice(*setting);
    if (!device.ok()) {
      return absl::Status(device.status().code(), absl::StrCat(spec.name, ": ", device.status().message()));
    }
    if (run.dp() != nullptr && device->is_cuda()) {
      return absl::UnimplementedError(absl::StrCat(
          spec.name, ": data-parallel runs on ", device->str(), ": only Gloo on CPU tensors is wired so far (NCCL "
          "is not; docs/distributed.md); set device cpu"));
    }
    run.device = *device;
  }
  // Before the run row exists an exception is this call's error; after, the run's.
  absl::StatusOr<std::optional<RunSummary>> opened = [&]() -> absl::StatusOr<std::optional<RunSummary>> {
    try {
      if (absl::Status s = LoadData(run, error); !s.ok()) return s;
      if (absl::Status s = LockIdentity(run); !s.ok()) return s;
      if (!run.writer()) return std::optional<RunSummary>();  // rank 0 decides below
      std::optional<results::RunRecord> previous;
      absl::StatusOr<std::optional<RunSummary>> cached = LookUpCache(run, &previous);
      if (!cached.ok() || cached->has_value()) return cached;
      if (absl::Status s = OpenRun(run, previous); !s.ok()) return s;
      return std::optional<RunSummary>();
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat(spec.name, ": ", e.what_without_backtrace()));
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat(spec.name, ": ", e.what()));
    }
  }();
  if (run.dp() != nullptr) {
    // Rank 0's decision, to every rank: "error MESSAGE", "cached ID" or "run ID DIR".
    static int64_t calls = 0;  // the same sequence of specs on every rank
    std::string decision;
    if (run.writer()) {
      decision = !opened.ok()              ? absl::StrCat("error ", opened.status().message())
                 : opened->has_value()     ? absl::StrCat("cached ", (*opened)->run)
                                           : absl::StrCat("run ", run.id, " ", run.checkpoint_dir);
    }
    absl::StatusOr<std::string> shared =
        run.dp()->ShareFromRankZero(absl::StrCat("decision/", calls++, "/", spec.name), decision);
    if (!shared.ok()) return shared.status();
    if (!run.writer()) {
      if (!opened.ok()) return opened.status();
      if (absl::StartsWith(*shared, "error ")) {
        return absl::AbortedError(absl::StrCat(spec.name, ": rank 0: ", shared->substr(6)));
      }
      std::vector<std::string> words = absl::StrSplit(*shared, absl::MaxSplits(' ', 2));
      if (words.size() < 2 || !absl::SimpleAtoi(words[1], &run.id)) {
        return absl::InternalError(absl::StrCat(spec.name, ": rank 0's decision '", *shared, "' is malformed"));
      }
      if (words[0] == "cached") {
        RunSummary summary;
        summary.name = spec.name;
        summary.run = run.id;
        summary.status = "cached";
        return summary;
      }
      if (words.size() != 3) {
        return absl::InternalError(absl::StrCat(spec.name, ": rank 0's decision '", *shared, "' is malformed"));
      }
      run.checkpoint_dir = words[2];
      run.state_root = std::filesystem::path(run.checkpoint_dir).parent_path().string();
      // The follower's copy of rank 0's allocator state, taken while rank 0 waits below,
      // inside the run's directory: a follower killed outright (a second SIGTERM) leaves
      // it to be replaced by the next launch, not littering a temporary directory.
      run.private_root = absl::StrCat(run.checkpoint_dir, "/rank_", run.dp()->rank());
      std::error_code ec;
      std::filesystem::remove_all(run.private_root, ec);
      std::filesystem::create_directories(run.private_root, ec);
      if (ec) {
        return absl::InternalError(absl::StrCat(spec.name, ": rank ", run.dp()->rank(), ": cannot create ",
                                                run.private_root, ": ", ec.message()));
      }
      for (const auto& [from, to] : {std::pair<std::string, std::string>{run.checkpoint_dir + "/alloc", "/alloc"},
                                     {run.state_root + "/shared", "/shared"}}) {
        if (!std::filesystem::exists(from, ec)) continue;
        std::filesystem::copy(from, run.private_root + to, std::filesystem::copy_options::recursive, ec);
        if (ec) {
          return absl::InternalError(absl::StrCat(spec.name, ": rank ", run.dp()->rank(), ": cannot copy ", from,
                                                  " to ", run.private_root, to, ": ", ec.message()));
        }
      }
    }
    if (absl::StartsWith(*shared, "run ")) {
      // Rank 0 writes nothing more until every follower has its copy.
      if (absl::Status s = run.dp()->Barrier(); !s.ok()) return s;
    }
  }
  struct RemovePrivate {
    const std::string& dir;
    ~RemovePrivate() {
      std::error_code ec;
      if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
  } remove_private{run.private_root};
  if (!opened.ok()) return opened.status();
  if (opened->has_value()) return **opened;

  auto fail = [&](const absl::Status& s) -> absl::StatusOr<RunSummary> {
    // A stop requested by SIGTERM / SIGINT (lib/runtime/interrupt.h) is not a failure.
    const bool interrupted = absl::IsCancelled(s) && runtime::InterruptSignal() != 0;
    const results::RunStatus status = interrupted ? results::RunStatus::kInterrupted : results::RunStatus::kFailed;
    if (!run.writer()) return s;
    if (absl::Status m = store.MarkRun(run.id, status, std::string(s.message())); !m.ok()) {
      absl::FPrintF(stderr, "run %d: cannot mark it %s: %s\n", run.id, results::RunStatusName(status), m.message());
    }
    return s;
  };
  // From here on the run row exists: whatever goes wrong, by status or by exception
  // (LibTorch's c10::Error, std::bad_alloc, a JSON type error, ...), ends it as failed
  // with the message.
  std::string allocator_name;
  absl::StatusOr<alloc::AllocatorResult> allocated = absl::UnknownError("not run");
  absl::StatusOr<results::FinalResult> result = absl::UnknownError("not run");
  try {
    if (options.fault_after_stage == "open") throw std::runtime_error("injected fault after the run row (test hook)");
    if (absl::Status s = MakeLoaders(run); !s.ok()) return fail(s);
    if (absl::Status s = BuildModel(run); !s.ok()) return fail(s);
    if (absl::Status s = TrainStartingModel(run); !s.ok()) return fail(s);
    allocated = RunAllocator(run, &allocator_name);
    if (!allocated.ok()) return fail(allocated.status());
    result = Evaluate(run, *allocated, allocator_name);
    if (!result.ok()) return fail(result.status());
    if (run.dp() != nullptr) {
      if (absl::Status s = CheckRanksAgree(run, *result); !s.ok()) return fail(s);
    }
    if (options.fault_after_stage == "evaluate") throw std::runtime_error("injected fault before finishing (test hook)");
  } catch (const c10::Error& e) {
    return fail(absl::InternalError(absl::StrCat(spec.name, ": ", e.what_without_backtrace())));
  } catch (const std::exception& e) {
    return fail(absl::InternalError(absl::StrCat(spec.name, ": ", e.what())));
  }
  if (run.writer()) {
    if (absl::Status s = store.FinishRun(run.id, *result); !s.ok()) return fail(s);
  }

  RunSummary summary;
  summary.name = spec.name;
  summary.run = run.id;
  summary.status = "finished";
  summary.result = *result;
  if (!run.writer()) return summary;
  if (spec.method->trains_starting_model && allocated->points <= 1) {
    absl::PrintF("%s: run %d finished: test top-1 %.2f%% (model chosen at epoch %d by validation top-1 %.2f%%)\n",
                 spec.name, run.id, *result->test_top1, run.trained.best_epoch + 1, run.trained.best_val_top1);
  } else {
    absl::PrintF("%s: run %d finished: test top-1 %.2f%% at B_w,eff %.3f, B_a,eff %.3f (%s, final point %d: %s)\n",
                 spec.name, run.id, *result->test_top1, *result->bw_eff, *result->ba_eff, allocator_name,
                 allocated->final_point, allocated->stop_reason);
  }
  return summary;
}

}  // namespace mpq::experiments
