// report.h — renders the results store as a comparison report: each paper table (from
// paper_table() targets) with the paper's rows beside ours, accuracy-vs-cost Pareto
// plots, per-layer bit-width maps, training curves and iterative methods' trajectories.
// One document model, written as Markdown (diff-friendly; SVG figures as files beside
// it) and as one self-contained HTML file (figures inline, no scripts, fonts or links
// to other files).
//
//   ReportInputs in;  in.db_path = "results/mpqbench.db";
//   in.paper_files = {"experiments/papers/impq2022.json"};  in.table_files = {...};
//   absl::StatusOr<Report> r = BuildReport(in);       // a missing/empty database is an error
//   absl::Status s = WriteReport(*r, "reports/out");  // report.md, report.html, *.svg
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mpq::reports {

struct ReportInputs {
  std::string db_path;
  std::string source_name;               // what the report says it was drawn from; default the database's file name
  std::vector<std::string> paper_files;  // experiments/papers/*.json
  std::vector<std::string> table_files;  // paper_table() outputs (<name>.table.json)
  std::vector<std::string> board_files;  // leaderboard() outputs (<name>.board.json); none = no section
};

struct Report {
  std::string markdown;
  std::string html;
  std::vector<std::pair<std::string, std::string>> figures;  // file name -> SVG (referenced by the Markdown)
};

absl::StatusOr<Report> BuildReport(const ReportInputs& inputs);

// Writes report.md, report.html and the figures into `out_dir` (created if needed);
// each file via a temporary name and rename, so a reader never sees half a report.
absl::Status WriteReport(const Report& report, const std::string& out_dir);

}  // namespace mpq::reports
