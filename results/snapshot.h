// snapshot.h — finished runs as one committed, diffable text file, so that measured
// results survive moving to another machine and a new clone's report shows them.
//
//   absl::Status s = ExportSnapshotFile(store, "results/published/snapshot.json");
//   absl::StatusOr<SnapshotImport> i = ImportSnapshotFile(store, "results/published/snapshot.json");
//
// The file is JSON, laid out one record per line so that `git diff` shows which runs,
// metrics and allocation rows changed:
//
//   {"format": "mpqbench-results-snapshot", "version": 1, "runs": [
//   {"run": {"id": 11, "name": "...", "spec_hash": "...", "code_version": "...", "spec": {...}, ...},
//    "result": {"dataset": "fashion_mnist", "test_top1": 89.43, ...},
//    "metrics": [
//     ["train_loss", 0, 1.0, 0.41, 1764600000.5],          name, step, epoch, value, wall time
//     ...],
//    "allocations": [
//     [0, "body.0.conv1.conv", "weight", 0, 8],             iteration, layer, kind, group, bits
//     ...]},
//   ...]}
//
// Runs are ordered by creation time (then spec hash), metrics and allocation rows as
// stored, so exporting the same database twice gives the same bytes, and export ->
// import into an empty database -> export gives them again. Only finished runs are
// exported; checkpoints are not (they are files on one machine). Importing is
// idempotent (ResultStore::ImportRun: identity is spec hash + creation time). A file
// that does not parse, or any run in it that is malformed, is refused before anything
// is written, with the file, the run's position and the field in the message.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "results/store.h"

namespace mpq::results {

inline constexpr char kSnapshotFormat[] = "mpqbench-results-snapshot";
inline constexpr int kSnapshotVersion = 1;

// Every finished run of `store`, as snapshot text; `runs_written` gets their number.
absl::StatusOr<std::string> ExportSnapshot(ResultStore& store, int* runs_written = nullptr);
// The same, written atomically to `path` (its directory is created).
absl::Status ExportSnapshotFile(ResultStore& store, const std::string& path, int* runs_written = nullptr);

// The runs of snapshot text; `source` names it in errors (e.g. the file path).
absl::StatusOr<std::vector<RunExport>> ParseSnapshot(const std::string& text, const std::string& source);

struct SnapshotImport {
  int inserted = 0, updated = 0, already_present = 0;
};
// Parses all of `text` first, then imports its runs one transaction each (a kill
// half-way leaves whole runs; importing again completes it).
absl::StatusOr<SnapshotImport> ImportSnapshot(ResultStore& store, const std::string& text, const std::string& source);
absl::StatusOr<SnapshotImport> ImportSnapshotFile(ResultStore& store, const std::string& path);

// Every run of `shard` (another database, e.g. one job's of a sweep), of any status,
// folded into `into` (ResultStore::ImportRun with unfinished runs): merging twice
// writes nothing new, and a shard whose run has since progressed or finished updates
// it. Each run is one transaction.
//
// `filter` narrows what is folded in: only runs whose experiment name is in `names` (empty:
// all), only finished ones. The Slurm executor (experiments/slurm.sh) uses it to give a
// new job shard the finished runs of its own experiment, so they are cache hits there.
struct MergeFilter {
  std::vector<std::string> names;
  bool finished_only = false;
};
absl::StatusOr<SnapshotImport> MergeDatabase(ResultStore& into, ResultStore& shard, const MergeFilter& filter = {});

}  // namespace mpq::results
