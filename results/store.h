// store.h — the SQLite results store: every run, its metrics over time, its final
// numbers, per-group bit allocations and checkpoints, in one database file.
//
//   absl::StatusOr<std::unique_ptr<ResultStore>> store = ResultStore::Open("results/mpqbench.db");
//   if (!store.ok()) return store.status();                     // names the path and the problem
//   absl::StatusOr<int64_t> run = (*store)->CreateRun(new_run);  // status "running"
//   (*store)->AddMetrics(*run, {{step, epoch, "train_loss", 0.41}});  // (run, name, step) is unique
//   (*store)->FinishRun(*run, result);                            // status "finished"
//
// Durability and concurrency: WAL journal, synchronous=FULL, a 30 s busy timeout, and
// every write is one BEGIN IMMEDIATE transaction (retried while another writer holds the
// lock), so several processes can write one file at once, and a process killed at any
// point leaves the database consistent with every earlier commit intact.
//
// Schema versions live in PRAGMA user_version; Open() applies the migrations in
// store.cc in order, each in its own transaction, and refuses a database newer than
// this build. docs/results.md documents the tables.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/alloc/group_bits.h"

struct sqlite3;

namespace mpq::results {

inline constexpr int kSchemaVersion = 3;
// PRAGMA application_id of our databases ("MPQB"): Open() refuses any other.
inline constexpr int64_t kApplicationId = 0x4d505142;

enum class RunStatus { kRunning, kFinished, kFailed, kInterrupted };
const char* RunStatusName(RunStatus s);

struct NewRun {
  std::string name;          // experiment target, e.g. "quickstart_fp32"
  std::string spec_json;     // the full spec as run
  std::string spec_hash;     // identity: hash of spec_json + code_version
  std::string code_version;  // e.g. git describe of the build
  int64_t seed = 0;
  std::string host;
  std::string device;        // e.g. "cpu (2 threads)"
  std::string data_fingerprint;  // digest of the dataset files the run reads
};

struct RunRecord {
  int64_t id = 0;
  std::string name, spec_json, spec_hash, code_version, host, device, status, error;
  int64_t seed = 0;
  double created_at = 0;                  // unix seconds
  std::optional<double> finished_at;
  std::string data_fingerprint;
};

struct Metric {
  int64_t step = 0;
  double epoch = 0;
  std::string name;   // e.g. "train_loss", "val_top1"
  double value = 0;
};

struct FinalResult {
  std::string dataset;       // the dataset actually used
  std::optional<double> test_top1, test_top5, val_top1;
  std::optional<double> bitops, cc, weight_bytes, act_bytes_sum, act_bytes_max;
  std::optional<double> bw_eff, ba_eff, compression_ratio;
  // Uhlich et al.'s memory in KB (lib/cost/cost_model.h): weights with biases, and the
  // activation quantizers' outputs, max and sum.
  std::optional<double> memory_weight_kb, memory_act_kb_max, memory_act_kb_sum;
  std::string extra_json = "{}";
};

// The allocations table's rows are lib/alloc's groups.
using GroupBits = alloc::GroupBits;

// One run with everything stored about it except its checkpoints (files on this
// machine), for snapshots (results/snapshot.h) and database merges.
struct RunExport {
  struct TimedMetric {
    Metric metric;
    double wall_time = 0;  // unix seconds when it was stored
  };
  RunRecord run;
  std::optional<FinalResult> result;
  std::vector<TimedMetric> metrics;                                     // in stored order
  std::vector<std::pair<int64_t, std::vector<GroupBits>>> allocations;  // by iteration, ascending
};

// What ImportRun did with a run.
enum class ImportOutcome {
  kInserted,        // a new row
  kUpdated,         // the same run (identity) was stored unfinished here: replaced by the finished one
  kAlreadyPresent,  // the same run is stored here finished: nothing written
};
struct ImportResult {
  int64_t id = 0;  // the run's id in this database
  ImportOutcome outcome = ImportOutcome::kInserted;
};

class ResultStore {
 public:
  // Opens (creating if needed) and migrates the database at `path`. A write waits up to
  // `busy_timeout_ms` for another process's transaction, then fails as "locked".
  //
  // Before writing anything it checks, on a read-only connection, that the file is ours
  // (our application_id, or an empty file), not newer than this build, and passes
  // PRAGMA quick_check; a database it refuses is left byte-identical.
  static absl::StatusOr<std::unique_ptr<ResultStore>> Open(const std::string& path, int busy_timeout_ms = 30000);
  // For readers (//results:query): never writes, works on read-only media; the schema
  // must be this build's.
  static absl::StatusOr<std::unique_ptr<ResultStore>> OpenReadOnly(const std::string& path);
  ~ResultStore();
  ResultStore(const ResultStore&) = delete;
  ResultStore& operator=(const ResultStore&) = delete;

  const std::string& path() const { return path_; }
  // Random, fixed at creation: names this database's checkpoint directories.
  const std::string& database_id() const { return database_id_; }
  absl::StatusOr<int> SchemaVersion();

  absl::StatusOr<int64_t> CreateRun(const NewRun& run);
  absl::Status AddMetrics(int64_t run, const std::vector<Metric>& metrics);
  absl::Status AddAllocation(int64_t run, int64_t iteration, const std::vector<GroupBits>& allocation);
  absl::Status AddCheckpoint(int64_t run, int64_t epoch, const std::string& checkpoint_path);
  // Stores the final result and marks the run finished, in one transaction.
  absl::Status FinishRun(int64_t run, const FinalResult& result);
  absl::Status MarkRun(int64_t run, RunStatus status, const std::string& error = "");

  absl::StatusOr<std::vector<RunRecord>> ListRuns();
  absl::StatusOr<RunRecord> GetRun(int64_t run);
  // The newest run with this spec hash, if any (for caching and resuming).
  absl::StatusOr<std::optional<RunRecord>> LatestRunWithSpecHash(const std::string& spec_hash);
  absl::StatusOr<std::optional<FinalResult>> GetResult(int64_t run);
  absl::StatusOr<std::vector<Metric>> GetMetrics(int64_t run);
  absl::StatusOr<std::vector<GroupBits>> GetAllocation(int64_t run, int64_t iteration);
  // The iterations (points) of a run that have an allocation, ascending.
  absl::StatusOr<std::vector<int64_t>> ListAllocationIterations(int64_t run);

  // Everything about one run but its checkpoints.
  absl::StatusOr<RunExport> ExportRun(int64_t run);
  // Stores a run exported from another database, in one transaction. A run's identity
  // is (spec_hash, created_at): importing the same run twice writes nothing the second
  // time, and a finished run replaces an unfinished copy of itself (its metrics,
  // allocations and result; checkpoints recorded here are kept). The run keeps its id
  // when that id is free here, else it gets a new one.
  // With `unfinished` (merging a shard database, //results:query merge), runs of any
  // status are taken: an unfinished incoming run is inserted as it is, and replaces an
  // unfinished copy here unless it has fewer metric rows (an older copy of the shard) or
  // is the same (as many rows, same status and error).
  // Refused (InvalidArgument, naming the run): without `unfinished`, a run that is not
  // finished; a finished run without a result; bits outside 1..32.
  absl::StatusOr<ImportResult> ImportRun(const RunExport& run, bool unfinished = false);

  // The digest cache of dataset files: a digest stays valid while the file's size and
  // modification time are unchanged.
  absl::StatusOr<std::optional<std::string>> CachedDigest(const std::string& path, int64_t size, int64_t mtime_ns);
  absl::Status PutDigest(const std::string& path, int64_t size, int64_t mtime_ns, const std::string& digest);

  // Runs a read-only query and returns rows of text cells (header first), for the CLI.
  absl::StatusOr<std::vector<std::vector<std::string>>> QueryText(const std::string& sql);

 private:
  ResultStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  absl::Status Migrate();
  absl::Status ReadDatabaseId();
  absl::Status Exec(const std::string& sql);
  // The results row of `run` (inside a transaction).
  absl::Status WriteResultRow(int64_t run, const FinalResult& result);
  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT, rolling back on error.
  template <typename Body>
  absl::Status Transaction(Body body);
  absl::Status Error(const std::string& what) const;

  sqlite3* db_;
  std::string path_;
  std::string database_id_;
};

}  // namespace mpq::results
