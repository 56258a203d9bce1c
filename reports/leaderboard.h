// leaderboard.h — the report's section for one leaderboard() board
// (experiments/defs.bzl): per budget, each method's test top-1 over seeds (mean, standard
// deviation, 95% Student-t interval), achieved BitOps and size, epochs and wall-clock
// spent, the paired difference to the baseline with a two-sided paired t-test, and a
// Pareto plot with error bars. Runs above their budget, or spending another number of
// epochs than the board's, are flagged, never hidden.
//
// A knob search (leaderboard() with a list of settings for a method's budget): entries of
// one method, budget and seed that differ by their "candidate" index. The seed's result
// is the candidate with the best validation top-1 among those at or under the budget
// (the best on validation of all of them, flagged over budget, when none is), once every
// candidate of that seed has finished; the row names the chosen candidates and what the
// search spent.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "reports/document.h"

namespace mpq::reports {

// What the section reads of a finished run.
struct BoardRun {
  int64_t id = 0;
  double test_top1 = 0;
  std::optional<double> bitops, weight_bytes;
  int64_t epochs = 0;  // the method's epoch budget (MethodOptions::EpochBudget)
  double wall_s = 0;   // finished_at - created_at
  double sensitivity_epochs = 0;  // its sensitivity pass in epochs (names::kDetailsSensitivityEpochs)
  std::optional<double> val_top1;  // what a knob search chooses by (never the test set)
};

// Appends the section for `board` (the contents of <name>.board.json; `source` names it
// in errors). lookup(experiment name) gives the latest finished run of that experiment.
absl::Status LeaderboardSection(const nlohmann::json& board, const std::string& source,
                                const std::function<std::optional<BoardRun>(const std::string&)>& lookup,
                                Document& doc);

}  // namespace mpq::reports
