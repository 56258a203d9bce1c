// render: the results store as a comparison report (report.h).
//
//   bazel run //reports:render -- [--db=results/mpqbench.db] [--out=reports/out]
//
// Writes <out>/report.md (+ its SVG figures) and <out>/report.html (self-contained).
// Paper rows come from experiments/papers/*.json, tables from the paper_table()
// targets. A missing or empty database is a clear error (exit 2).
#include <cstdlib>
#include <filesystem>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "reports/report.h"

ABSL_FLAG(std::string, db, "", "Results database; default <workspace>/results/mpqbench.db.");
ABSL_FLAG(std::string, out, "", "Output directory; default <workspace>/reports/out.");
ABSL_FLAG(std::string, papers_dir, "experiments/papers", "Directory of the papers' *.json.");
ABSL_FLAG(std::vector<std::string>, tables, {},
          "paper_table() files (comma-separated); default every *.table.json in experiments/.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("render [--db=PATH] [--out=DIR]");
  const std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    absl::FPrintF(stderr, "render: unexpected argument '%s'; usage: %s\n", rest[1], absl::ProgramUsageMessage());
    return 2;
  }
  const char* ws_env = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  const std::string ws = ws_env ? ws_env : std::filesystem::current_path().string();
  mpq::reports::ReportInputs in;
  in.db_path = absl::GetFlag(FLAGS_db).empty() ? ws + "/results/mpqbench.db" : absl::GetFlag(FLAGS_db);
  const std::string out = absl::GetFlag(FLAGS_out).empty() ? ws + "/reports/out" : absl::GetFlag(FLAGS_out);
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(absl::GetFlag(FLAGS_papers_dir), ec)) {
    if (e.path().extension() == ".json") in.paper_files.push_back(e.path().string());
  }
  if (ec || in.paper_files.empty()) {
    absl::FPrintF(stderr, "render: no paper files in %s\n", absl::GetFlag(FLAGS_papers_dir));
    return 2;
  }
  std::sort(in.paper_files.begin(), in.paper_files.end());
  in.table_files = absl::GetFlag(FLAGS_tables);
  if (in.table_files.empty()) {
    for (const auto& e : std::filesystem::directory_iterator("experiments", ec)) {
      const std::string name = e.path().filename().string();
      if (name.size() > 11 && name.substr(name.size() - 11) == ".table.json") in.table_files.push_back(e.path().string());
    }
    std::sort(in.table_files.begin(), in.table_files.end());
  }
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
               report->figures.size(), in.db_path);
  return 0;
}
