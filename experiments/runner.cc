// run: runs experiment specs (experiments/spec.h) and records them in the results store.
//
//   bazel run //experiments:quickstart                     # an experiment() target calls this
//   bazel run //experiments:run -- --spec=experiments/specs/x.json --epochs=1 --data_dir=/data/cifar10
//
// For each spec: the run identity is SpecHash(spec, code identity, dataset fingerprint),
// the code identity being a digest of the sources that can change a result
// (experiments/code_identity.h: a docs or tests commit keeps the cache),
// locked while it runs. A finished run with the same identity is a cache hit (printed,
// not re-run) unless --force (a new run from nothing); an unfinished one (killed,
// failed) resumes from its last checkpoint in results/checkpoints/<database id>/run_<id>/.
// docs/reliability.md lists what a run promises. Every epoch's metrics, the final test accuracy, the cost
// model's figures and the run's status go to the database. After all specs, a summary
// table lists each run. SIGTERM or SIGINT (Slurm's preemption, Ctrl-C) stops the current
// run at its next training step or Hutchinson iteration, stores it as interrupted
// (resumable) and starts no other. Exit status: 0 all finished, 1 a run failed, 2 data
// missing or bad arguments, 128 + the signal when interrupted (143 for SIGTERM).
// Data-parallel when the environment names a group (RANK/WORLD_SIZE/MASTER_ADDR/PORT or
// Slurm's SLURM_PROCID/SLURM_NTASKS): every rank runs this with the same specs; rank 0
// writes the store and prints (docs/distributed.md).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "experiments/code_identity.h"
#include "experiments/run_experiment.h"
#include "experiments/spec.h"
#include "lib/dist/data_parallel.h"
#include "lib/runtime/device.h"
#include "lib/runtime/interrupt.h"
#include "lib/runtime/malloc_tuning.h"
#include "results/store.h"

ABSL_FLAG(std::string, papers_dir, "",
          "Directory of the paper files (experiments/papers/*.json) that specs' paper_row must name; default: "
          "this binary's runfiles, else <workspace>/experiments/papers.");
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
ABSL_FLAG(std::string, device, "",
          "Where to compute, overriding the specs' \"device\": auto (a CUDA device when there is one, else the "
          "CPU), cpu, cuda, cuda:N; default: each spec's (auto unless it says).");
ABSL_FLAG(bool, force, false, "Re-run finished specs instead of reporting the cached result.");

namespace mpq::experiments {
namespace {

std::string Workspace() {
  const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  return ws ? ws : std::filesystem::current_path().string();
}

// Where experiments/papers is: --papers_dir, else the runfiles of this binary (bazel run,
// bazel test), else the workspace's source tree.
std::string PapersDir(const char* argv0, const std::string& workspace) {
  if (!absl::GetFlag(FLAGS_papers_dir).empty()) return absl::GetFlag(FLAGS_papers_dir);
  std::vector<std::string> candidates;
  if (const char* r = std::getenv("RUNFILES_DIR")) candidates.push_back(absl::StrCat(r, "/mpqbench/experiments/papers"));
  candidates.push_back(absl::StrCat(argv0, ".runfiles/mpqbench/experiments/papers"));
  candidates.push_back(workspace + "/experiments/papers");
  std::error_code ec;
  for (const std::string& c : candidates) {
    if (std::filesystem::is_directory(c, ec)) return c;
  }
  return candidates.back();
}

// The code version a run records: `git describe --always --dirty` of the workspace.
void PrintTable(const std::vector<RunSummary>& rows, const std::string& db) {
  absl::PrintF("\n%-24s %6s %-9s %8s %8s %8s %12s %12s\n", "experiment", "run", "status", "top-1", "B_w,eff", "B_a,eff",
               "BitOps", "weights (B)");
  for (const RunSummary& s : rows) {
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
  mpq::runtime::InstallInterruptHandlers();
  absl::SetProgramUsageMessage("run [--data_dir=DIR] [--epochs=N] [--db=PATH] [--device=D] [--force] SPEC_FILE... (or "
                               "--spec=FILE[,FILE...])");
  const std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  // Spec files as arguments (any path, commas included) and/or the --spec list.
  std::vector<std::string> spec_files = absl::GetFlag(FLAGS_spec);
  for (size_t i = 1; i < rest.size(); ++i) spec_files.emplace_back(rest[i]);
  if (spec_files.empty()) {
    absl::FPrintF(stderr, "run: no spec file given; usage: %s\n", absl::ProgramUsageMessage());
    return 2;
  }
  // --device names one device for every spec: checked before anything runs or is written.
  if (const std::string device = absl::GetFlag(FLAGS_device); !device.empty()) {
    absl::StatusOr<mpq::runtime::DeviceSetting> setting = mpq::runtime::ParseDeviceSetting(device);
    absl::StatusOr<c10::Device> resolved =
        setting.ok() ? mpq::runtime::ResolveDevice(*setting) : absl::StatusOr<c10::Device>(setting.status());
    if (!resolved.ok()) {
      absl::FPrintF(stderr, "run: --device: %s\n", resolved.status().message());
      return 2;
    }
  }
  const std::string workspace = mpq::experiments::Workspace();
  const std::string papers_dir = mpq::experiments::PapersDir(argv[0], workspace);
  std::optional<absl::StatusOr<std::set<std::string>>> paper_rows;  // read when a spec names a row
  std::vector<mpq::experiments::ExperimentSpec> specs;
  for (const std::string& file : spec_files) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) {  // a FIFO or device would block or never end
      absl::FPrintF(stderr, "run: spec file %s: %s\n", file,
                    std::filesystem::exists(file, ec) ? "not a regular file" : "no such file");
      return 2;
    }
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
    if (!spec->paper_row.empty()) {
      if (!paper_rows) paper_rows = mpq::experiments::ReadPaperRows(papers_dir);
      absl::Status row = paper_rows->ok() ? mpq::experiments::CheckPaperRow(*spec, **paper_rows, papers_dir)
                                          : paper_rows->status();
      if (!row.ok()) {
        absl::FPrintF(stderr, "run: %s: %s (--papers_dir sets where the paper files are)\n", file, row.message());
        return 2;
      }
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
    if (absl::GetFlag(FLAGS_epochs) > 0) {
      spec = mpq::experiments::WithEpochs(*spec, absl::GetFlag(FLAGS_epochs));
      if (!spec.ok()) {
        absl::FPrintF(stderr, "run: %s\n", spec.status().message());
        return 2;
      }
    }
    specs.push_back(*spec);
  }
  // Data-parallel when the environment says so (RANK / WORLD_SIZE or Slurm's; see
  // lib/dist/data_parallel.h): rank 0 writes the database; the others open a scratch one
  // of their own that nothing reads, and print nothing but errors.
  absl::StatusOr<mpq::dist::DistEnv> env = mpq::dist::DistEnvFromEnvironment();
  if (!env.ok()) {
    absl::FPrintF(stderr, "run: %s\n", env.status().message());
    return 2;
  }
  std::unique_ptr<mpq::dist::DataParallel> data_parallel;
  std::string scratch;
  if (env->world_size > 1) {
    absl::StatusOr<std::unique_ptr<mpq::dist::DataParallel>> dp = mpq::dist::DataParallel::Connect(*env);
    if (!dp.ok()) {
      absl::FPrintF(stderr, "run: %s\n", dp.status().message());
      return 2;
    }
    data_parallel = std::move(*dp);
    if (env->rank > 0) {
      std::string dir = (std::filesystem::temp_directory_path() / "mpqbench_rank_XXXXXX").string();
      if (mkdtemp(dir.data()) == nullptr) {
        absl::FPrintF(stderr, "run: rank %d: cannot create a scratch directory\n", env->rank);
        return 2;
      }
      scratch = dir;
      if (std::freopen("/dev/null", "w", stdout) == nullptr) return 2;  // rank 0 speaks for the group
    }
  }
  std::string db = absl::GetFlag(FLAGS_db);
  if (db.empty()) db = workspace + "/results/mpqbench.db";
  if (!scratch.empty()) db = scratch + "/scratch.db";
  struct RemoveScratch {
    std::string dir;
    ~RemoveScratch() {
      std::error_code ec;
      if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
  } remove_scratch{scratch};
  absl::StatusOr<std::unique_ptr<mpq::results::ResultStore>> store = mpq::results::ResultStore::Open(db);
  if (!store.ok()) {
    absl::FPrintF(stderr, "run: %s\n", store.status().message());
    return 2;
  }
  mpq::experiments::RunnerOptions options;
  options.workspace = workspace;
  options.code_version = mpq::experiments::CodeVersion(workspace);
  options.code_identity = mpq::experiments::CodeIdentity(workspace);
  options.data_parallel = data_parallel.get();
  options.force = absl::GetFlag(FLAGS_force);
  options.device = absl::GetFlag(FLAGS_device);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.workers = absl::GetFlag(FLAGS_workers);
  std::vector<mpq::experiments::RunSummary> rows;
  int exit_code = 0;
  for (const auto& spec : specs) {
    mpq::experiments::RunError error;
    absl::StatusOr<mpq::experiments::RunSummary> s = mpq::experiments::RunExperiment(spec, **store, options, &error);
    if (!s.ok() && mpq::runtime::InterruptSignal() != 0) {
      // SIGTERM / SIGINT: the run is stored as interrupted; do not start the next one.
      absl::FPrintF(stderr, "run: %s\n", s.status().message());
      mpq::experiments::RunSummary stopped;
      stopped.name = spec.name;
      stopped.status = "interrupted";
      stopped.note = std::string(s.status().message());
      rows.push_back(stopped);
      mpq::experiments::PrintTable(rows, db);
      return 128 + mpq::runtime::InterruptSignal();
    }
    if (!s.ok()) {
      absl::FPrintF(stderr, "run: %s\n", s.status().message());
      mpq::experiments::RunSummary failed;
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
