// run_experiment.h — runs one experiment spec end to end and records it in the results
// store: the runner binary (runner.cc) calls it per spec; tests call it directly.
//
//   RunnerOptions o;  o.workspace = ws;  o.code_version = "abc123";
//   RunError error;
//   absl::StatusOr<RunSummary> s = RunExperiment(spec, *store, o, &error);
//
// Stages, in order (run_experiment.cc): the data (a missing dataset is an error before
// anything is written), the identity (spec, code version, dataset fingerprint) and its
// lock, the cache (a finished run with the same identity is returned unless `force`),
// the run row (a new run with an empty state directory, or the unfinished one resumed), the loaders (train / validation / test, and a calibration split when the
// method needs one), the model (plain or the method's search units), the starting
// training (when the method asks for it), the method's allocator (every point and its
// allocation stored), and the final evaluation and cost, stored with the run marked
// finished. A failure after the run row exists marks it failed with the message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "experiments/spec.h"
#include "results/store.h"

namespace mpq::dist {
class DataParallel;
}  // namespace mpq::dist

namespace mpq::experiments {

struct RunnerOptions {
  // State goes to <workspace>/results/checkpoints/<database id>/run_<id>/ (one run of one
  // database); the identity lock to <workspace>/results/checkpoints/<database id>/<hash>.lock.
  std::string workspace;
  std::string code_version;   // provenance, stored with the run (git describe)
  // The run identity's code part (experiments/code_identity.h); empty = code_version.
  std::string code_identity;
  // Data-parallel (lib/dist/data_parallel.h; not owned; nullptr = one process). Rank 0
  // runs as usual and alone writes the store, checkpoints and output; the other ranks
  // take rank 0's decisions (cached, resumed or new; its run id and state directory)
  // through the rendezvous store, train their shard of every batch, validate, test and
  // run a method's passes on the whole sets (as rank 0 does), and keep the method's
  // state in a private copy of rank 0's, taken before training starts and removed at
  // the end: they write nothing of the run's. Every method (docs/distributed.md).
  dist::DataParallel* data_parallel = nullptr;
  // Where to compute, overriding every spec's "device" (auto, cpu, cuda, cuda:N); "" =
  // the spec's. Resolved before anything is written: CUDA where there is none is an error.
  std::string device;
  bool force = false;         // re-run a finished spec
  int threads = 0;            // LibTorch threads; 0 = all cores
  int workers = 1;            // data loader worker threads
  // Test hook: throw a std::runtime_error after this stage ("open": the run row exists;
  // "evaluate": everything measured, nothing finished), to check that any exception
  // ends the run as failed.
  std::string fault_after_stage;
};

struct RunSummary {
  std::string name, status, note;  // status: finished, cached, failed, no data
  int64_t run = 0;
  std::optional<results::FinalResult> result;
};

// Why a run did not finish: data missing (exit status 2) or anything else (1).
struct RunError {
  bool needs_data = false;
};

absl::StatusOr<RunSummary> RunExperiment(const ExperimentSpec& spec, results::ResultStore& store,
                                         const RunnerOptions& options, RunError* error);

}  // namespace mpq::experiments
