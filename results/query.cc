// query: reads the results database.
//
//   bazel run //results:query -- runs                       # one line per run
//   bazel run //results:query -- show 7                     # spec, result, metrics summary, allocation sizes
//   bazel run //results:query -- export --out=results/published/snapshot.json   # finished runs (snapshot.h)
//   bazel run //results:query -- import results/published/snapshot.json        # idempotent
//   bazel run //results:query -- merge shard1.db shard2.db --into=results/mpqbench.db  # idempotent
//   bazel run //results:query -- merge results/mpqbench.db --into=x.db --names=exp_a --finished_only
//   bazel run //results:query -- export --csv --table=results --out=/tmp/results.csv
//   bazel run //results:query -- --db=/path/other.db runs
//
// Default database: results/mpqbench.db in the workspace (BUILD_WORKSPACE_DIRECTORY
// under `bazel run`, else the current directory); relative paths are taken from there
// too. `import` and `merge` create the database they write when it does not exist; every
// other command only reads. Missing or unreadable databases and files and unknown commands are errors with
// a message; exit status 1 (usage: 2).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "results/snapshot.h"
#include "results/store.h"

ABSL_FLAG(std::string, db, "", "Results database; default <workspace>/results/mpqbench.db.");
ABSL_FLAG(bool, csv, false, "export: one table as CSV instead of the snapshot of finished runs.");
ABSL_FLAG(std::string, table, "results", "export --csv: runs, results, metrics, allocations or checkpoints.");
ABSL_FLAG(std::string, out, "", "export: output file; default standard output.");
ABSL_FLAG(std::string, into, "", "merge: the database the shards are folded into; default --db's.");
ABSL_FLAG(std::vector<std::string>, names, {}, "merge: only runs of these experiments (comma-separated); default all.");
ABSL_FLAG(bool, finished_only, false, "merge: only finished runs (as import of a snapshot).");

namespace mpq::results {
namespace {

std::filesystem::path Workspace() {
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  return workspace ? workspace : ".";
}

// A path as the user meant it: relative to the workspace under `bazel run`.
std::string UserPath(const std::string& path) {
  const std::filesystem::path p(path);
  return p.is_absolute() ? path : (Workspace() / p).string();
}

std::string DefaultDatabase() { return (Workspace() / "results" / "mpqbench.db").string(); }

std::string CsvCell(const std::string& v) {
  if (v.find_first_of(",\"\n") == std::string::npos) return v;
  std::string quoted = "\"";
  for (char c : v) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string Fmt(const std::optional<double>& v, const char* format = "%.4g") {
  return v ? absl::StrFormat(format, *v) : std::string("-");
}

absl::Status Runs(ResultStore& store) {
  absl::StatusOr<std::vector<RunRecord>> runs = store.ListRuns();
  if (!runs.ok()) return runs.status();
  absl::PrintF("%5s  %-28s %-11s %-9s %8s %8s %8s  %s\n", "id", "name", "status", "dataset", "top1", "B_w,eff",
               "BitOps", "spec");
  for (const RunRecord& r : *runs) {
    absl::StatusOr<std::optional<FinalResult>> result = store.GetResult(r.id);
    if (!result.ok()) return result.status();
    const FinalResult res = result->value_or(FinalResult{});
    absl::PrintF("%5d  %-28s %-11s %-9s %8s %8s %8s  %s\n", r.id, r.name, r.status, res.dataset.empty() ? "-" : res.dataset,
                 Fmt(res.test_top1, "%.2f"), Fmt(res.bw_eff, "%.2f"), Fmt(res.bitops, "%.3g"), r.spec_hash.substr(0, 12));
  }
  if (runs->empty()) absl::PrintF("(no runs in %s)\n", store.path());
  return absl::OkStatus();
}

absl::Status Show(ResultStore& store, const std::string& id_text) {
  int64_t id = 0;
  if (!absl::SimpleAtoi(id_text, &id)) return absl::InvalidArgumentError("show: run id '" + id_text + "' is not a number");
  absl::StatusOr<RunRecord> run = store.GetRun(id);
  if (!run.ok()) return run.status();
  absl::PrintF("run %d: %s [%s]%s\n", run->id, run->name, run->status, run->error.empty() ? "" : " error: " + run->error);
  absl::PrintF("spec hash %s, code %s, seed %d, host %s, device %s\n", run->spec_hash, run->code_version, run->seed,
               run->host, run->device);
  absl::PrintF("spec %s\n", run->spec_json);
  absl::StatusOr<std::optional<FinalResult>> result = store.GetResult(id);
  if (!result.ok()) return result.status();
  if (result->has_value()) {
    const FinalResult& r = **result;
    absl::PrintF("result on %s: test top-1 %s, top-5 %s, val top-1 %s; BitOps %s, C_C %s, weights %s B, "
                 "B_w,eff %s, B_a,eff %s, CR %s\n",
                 r.dataset, Fmt(r.test_top1), Fmt(r.test_top5), Fmt(r.val_top1), Fmt(r.bitops), Fmt(r.cc),
                 Fmt(r.weight_bytes), Fmt(r.bw_eff), Fmt(r.ba_eff), Fmt(r.compression_ratio));
  }
  absl::StatusOr<std::vector<Metric>> metrics = store.GetMetrics(id);
  if (!metrics.ok()) return metrics.status();
  std::map<std::string, std::pair<int, Metric>> last;
  for (const Metric& m : *metrics) {
    auto& entry = last[m.name];
    entry.first++;
    entry.second = m;
  }
  for (const auto& [name, entry] : last) {
    absl::PrintF("metric %-16s %5d points, last %.4g at step %d (epoch %.2f)\n", name, entry.first, entry.second.value,
                 entry.second.step, entry.second.epoch);
  }
  return absl::OkStatus();
}

absl::Status ExportCsv(ResultStore& store);

// The snapshot of every finished run (results/snapshot.h), to --out or standard output.
absl::Status Export(ResultStore& store) {
  if (absl::GetFlag(FLAGS_csv)) return ExportCsv(store);
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) {
    absl::StatusOr<std::string> text = ExportSnapshot(store);
    if (!text.ok()) return text.status();
    std::cout << *text;
    return absl::OkStatus();
  }
  int runs = 0;
  if (absl::Status s = ExportSnapshotFile(store, UserPath(out), &runs); !s.ok()) return s;
  absl::FPrintF(stderr, "wrote %d finished runs of %s to %s\n", runs, store.path(), UserPath(out));
  return absl::OkStatus();
}

absl::Status Import(ResultStore& store, const std::vector<std::string>& files) {
  for (const std::string& f : files) {
    absl::StatusOr<SnapshotImport> i = ImportSnapshotFile(store, UserPath(f));
    if (!i.ok()) return i.status();
    absl::PrintF("%s: %d runs imported, %d replaced an unfinished copy, %d already in %s\n", UserPath(f), i->inserted,
                 i->updated, i->already_present, store.path());
  }
  return absl::OkStatus();
}

absl::Status Merge(ResultStore& into, const std::vector<std::string>& shards) {
  for (const std::string& f : shards) {
    std::error_code ec;
    if (std::filesystem::equivalent(UserPath(f), into.path(), ec)) {
      return absl::InvalidArgumentError(absl::StrCat("merge: ", UserPath(f), " is the database merged into"));
    }
    absl::StatusOr<std::unique_ptr<ResultStore>> shard = ResultStore::OpenReadOnly(UserPath(f));
    if (!shard.ok()) return shard.status();
    MergeFilter filter;
    filter.names = absl::GetFlag(FLAGS_names);
    filter.finished_only = absl::GetFlag(FLAGS_finished_only);
    absl::StatusOr<SnapshotImport> m = MergeDatabase(into, **shard, filter);
    if (!m.ok()) return m.status();
    absl::PrintF("%s: %d runs added, %d updated, %d already in %s\n", UserPath(f), m->inserted, m->updated,
                 m->already_present, into.path());
  }
  return absl::OkStatus();
}

absl::Status ExportCsv(ResultStore& store) {
  const std::string table = absl::GetFlag(FLAGS_table);
  const std::vector<std::string> tables = {"runs", "results", "metrics", "allocations", "checkpoints"};
  if (std::find(tables.begin(), tables.end(), table) == tables.end()) {
    return absl::InvalidArgumentError(absl::StrCat("export: unknown --table=", table, "; valid: ", absl::StrJoin(tables, ", ")));
  }
  absl::StatusOr<std::vector<std::vector<std::string>>> rows = store.QueryText("SELECT * FROM " + table);
  if (!rows.ok()) return rows.status();
  std::ofstream file;
  const std::string out = absl::GetFlag(FLAGS_out).empty() ? "" : UserPath(absl::GetFlag(FLAGS_out));
  if (!out.empty()) {
    file.open(out);
    if (!file) return absl::PermissionDeniedError("export: cannot write " + out);
  }
  std::ostream& os = out.empty() ? std::cout : file;
  for (const auto& row : *rows) {
    std::vector<std::string> cells;
    for (const std::string& v : row) cells.push_back(CsvCell(v));
    os << absl::StrJoin(cells, ",") << "\n";
  }
  if (!out.empty()) absl::FPrintF(stderr, "wrote %d rows of %s to %s\n", rows->size() - 1, table, out);
  return absl::OkStatus();
}

}  // namespace
}  // namespace mpq::results

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "query [--db=PATH] runs | show <run id> | export [--out=FILE] | export --csv [--table=T] [--out=FILE] | "
      "import SNAPSHOT... | merge SHARD... [--into=DB] [--names=A,B] [--finished_only]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 2) {
    absl::FPrintF(stderr, "usage: %s\n", absl::ProgramUsageMessage());
    return 2;
  }
  std::string path = absl::GetFlag(FLAGS_db);
  path = path.empty() ? mpq::results::DefaultDatabase() : mpq::results::UserPath(path);
  const std::string verb = args[1];
  if (verb == "import" || verb == "merge") {
    if (args.size() < 3) {
      absl::FPrintF(stderr, "query: %s needs at least one file; usage: %s\n", verb, absl::ProgramUsageMessage());
      return 2;
    }
    if (verb == "merge" && !absl::GetFlag(FLAGS_into).empty()) path = mpq::results::UserPath(absl::GetFlag(FLAGS_into));
    absl::StatusOr<std::unique_ptr<mpq::results::ResultStore>> store = mpq::results::ResultStore::Open(path);
    absl::Status status = store.status();
    const std::vector<std::string> files(args.begin() + 2, args.end());
    if (status.ok()) status = verb == "import" ? mpq::results::Import(**store, files) : mpq::results::Merge(**store, files);
    if (!status.ok()) {
      absl::FPrintF(stderr, "query: %s\n", status.message());
      return 1;
    }
    return 0;
  }
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    absl::FPrintF(stderr, "query: no results database at %s (run an experiment first, or pass --db)\n", path);
    return 1;
  }
  absl::StatusOr<std::unique_ptr<mpq::results::ResultStore>> store = mpq::results::ResultStore::OpenReadOnly(path);
  absl::Status status = store.status();
  if (status.ok()) {
    const std::string command = args[1];
    if (command == "runs") {
      status = mpq::results::Runs(**store);
    } else if (command == "show" && args.size() == 3) {
      status = mpq::results::Show(**store, args[2]);
    } else if (command == "export") {
      status = mpq::results::Export(**store);
    } else {
      absl::FPrintF(stderr, "query: unknown command '%s'; usage: %s\n", command, absl::ProgramUsageMessage());
      return 2;
    }
  }
  if (!status.ok()) {
    absl::FPrintF(stderr, "query: %s\n", status.message());
    return 1;
  }
  return 0;
}
