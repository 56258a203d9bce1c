// render: the results store as a comparison report (report.h).
//
//   bazel run //reports:render -- [--db=results/mpqbench.db] [--out=reports/out]
//   bazel run //reports:render -- --snapshot=results/published/snapshot.json   # no database needed
//
// Writes <out>/report.md (+ its SVG figures) and <out>/report.html (self-contained).
// Paper rows come from experiments/papers/*.json, tables from the paper_table()
// targets. With --snapshot the report is drawn from the snapshot files alone (imported
// into a temporary database that is removed afterwards; run ids are the snapshot's).
// A missing or empty database or snapshot is a clear error (exit 2).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "reports/report.h"
#include "results/snapshot.h"

ABSL_FLAG(std::string, db, "", "Results database; default <workspace>/results/mpqbench.db.");
ABSL_FLAG(std::vector<std::string>, snapshot, {},
          "Draw the report from these snapshot files (comma-separated; //results:query -- export) instead of --db.");
ABSL_FLAG(std::string, out, "", "Output directory; default <workspace>/reports/out.");
ABSL_FLAG(std::string, papers_dir, "experiments/papers", "Directory of the papers' *.json.");
ABSL_FLAG(std::vector<std::string>, boards, {},
          "leaderboard() files (comma-separated); default every *.board.json in experiments/.");
ABSL_FLAG(std::vector<std::string>, tables, {},
          "paper_table() files (comma-separated); default every *.table.json in experiments/.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("render [--db=PATH | --snapshot=FILE,...] [--out=DIR]");
  const std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    absl::FPrintF(stderr, "render: unexpected argument '%s'; usage: %s\n", rest[1], absl::ProgramUsageMessage());
    return 2;
  }
  const char* ws_env = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  const std::string ws = ws_env ? ws_env : std::filesystem::current_path().string();
  auto user_path = [&](const std::string& p) { return std::filesystem::path(p).is_absolute() ? p : ws + "/" + p; };
  mpq::reports::ReportInputs in;
  in.db_path = absl::GetFlag(FLAGS_db).empty() ? ws + "/results/mpqbench.db" : user_path(absl::GetFlag(FLAGS_db));
  // --snapshot: a temporary database holding the snapshots' runs, removed at exit.
  std::unique_ptr<std::string, void (*)(std::string*)> temp_dir(nullptr, [](std::string* d) {
    std::error_code ignored;
    std::filesystem::remove_all(*d, ignored);
    delete d;
  });
  const std::vector<std::string> snapshots = absl::GetFlag(FLAGS_snapshot);
  if (!snapshots.empty()) {
    if (!absl::GetFlag(FLAGS_db).empty()) {
      absl::FPrintF(stderr, "render: give --db or --snapshot, not both\n");
      return 2;
    }
    std::string pattern = (std::filesystem::temp_directory_path() / "mpqbench-render-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      absl::FPrintF(stderr, "render: cannot create a temporary directory %s\n", pattern);
      return 2;
    }
    temp_dir.reset(new std::string(pattern));
    in.db_path = pattern + "/snapshot.db";
    absl::StatusOr<std::unique_ptr<mpq::results::ResultStore>> store = mpq::results::ResultStore::Open(in.db_path);
    if (!store.ok()) {
      absl::FPrintF(stderr, "render: %s\n", store.status().message());
      return 2;
    }
    for (const std::string& f : snapshots) {
      absl::StatusOr<mpq::results::SnapshotImport> i = mpq::results::ImportSnapshotFile(**store, user_path(f));
      if (!i.ok()) {
        absl::FPrintF(stderr, "render: %s\n", i.status().message());
        return 2;
      }
    }
    in.source_name = absl::StrJoin(snapshots, ", ");
  }
  const std::string out = absl::GetFlag(FLAGS_out).empty() ? ws + "/reports/out" : user_path(absl::GetFlag(FLAGS_out));
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(absl::GetFlag(FLAGS_papers_dir), ec)) {
    if (e.path().extension() == ".json") in.paper_files.push_back(e.path().string());
  }
  if (ec || in.paper_files.empty()) {
    absl::FPrintF(stderr, "render: no paper files in %s\n", absl::GetFlag(FLAGS_papers_dir));
    return 2;
  }
  std::sort(in.paper_files.begin(), in.paper_files.end());
  // The flag's files, else every experiments/*<suffix> in the runfiles, sorted.
  auto files = [&](const std::vector<std::string>& given, const std::string& suffix) {
    if (!given.empty()) return given;
    std::vector<std::string> found;
    for (const auto& e : std::filesystem::directory_iterator("experiments", ec)) {
      const std::string name = e.path().filename().string();
      if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
        found.push_back(e.path().string());
      }
    }
    std::sort(found.begin(), found.end());
    return found;
  };
  in.table_files = files(absl::GetFlag(FLAGS_tables), ".table.json");
  in.board_files = files(absl::GetFlag(FLAGS_boards), ".board.json");
  absl::StatusOr<mpq::reports::Report> report = mpq::reports::BuildReport(in);
  if (!report.ok()) {
    absl::FPrintF(stderr, "render: %s\n", report.status().message());
    return 2;
  }
  if (absl::Status s = mpq::reports::WriteReport(*report, out); !s.ok()) {
    absl::FPrintF(stderr, "render: %s\n", s.message());
    return 2;
  }
  absl::PrintF("render: wrote %s/report.md, %s/report.html and %d figures from %s\n", out, out,
               report->figures.size(), in.source_name.empty() ? in.db_path : in.source_name);
  return 0;
}
