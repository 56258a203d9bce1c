// The leaderboard section on a hand-made board: statistics per budget and method,
// paired differences to the baseline, the flags (over budget, other epochs), seeds not
// yet run, the error-bar plot, and malformed boards.
#include "reports/leaderboard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <tuple>

#include "absl/strings/str_format.h"
#include "reports/stats.h"

namespace mpq::reports {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

Json Board() {
  Json entries = Json::array();
  for (const char* method : {"uniform", "other"}) {
    for (const char* budget : {"w2a2", "w4a4"}) {
      for (int seed : {1, 2, 3}) {
        entries.push_back({{"method", method},
                           {"budget", budget},
                           {"seed", seed},
                           {"spec", {{"name", absl::StrFormat("b_%s_%s_s%d", method, budget, seed)},
                                     {"model", "resnet20"},
                                     {"dataset", "fashion_mnist"}}}});
      }
    }
  }
  return {{"name", "b"}, {"epochs", 11}, {"baseline", "uniform"}, {"budgets", {"w2a2", "w4a4"}},
          {"seeds", {1, 2, 3}}, {"entries", entries}};
}

// Finished runs: uniform at 89.0/89.5/90.0 (w2a2, 0.2 GBitOps), other at +1, +2, +3 (w2a2),
// other's seed 3 over budget at w4a4, other's w4a4 seed 2 not run, other spends 12 epochs
// at w4a4.
std::map<std::string, BoardRun> Runs() {
  std::map<std::string, BoardRun> runs;
  int64_t id = 1;
  const double base[] = {89.0, 89.5, 90.0};
  for (int seed = 1; seed <= 3; ++seed) {
    runs[absl::StrFormat("b_uniform_w2a2_s%d", seed)] = {id++, base[seed - 1], 0.2e9, 10240.0, 11, 120};
    runs[absl::StrFormat("b_uniform_w4a4_s%d", seed)] = {id++, base[seed - 1] + 1, 0.7e9, 20480.0, 11, 120};
    runs[absl::StrFormat("b_other_w2a2_s%d", seed)] = {id++, base[seed - 1] + seed, 0.19e9, 10000.0, 11, 180};
    if (seed != 2) {
      runs[absl::StrFormat("b_other_w4a4_s%d", seed)] = {id++, 91.0, seed == 3 ? 0.75e9 : 0.69e9, 20000.0, 12, 240};
    }
  }
  return runs;
}

std::string Render(const Json& board) {
  const std::map<std::string, BoardRun> runs = Runs();
  Document doc;
  absl::Status s = LeaderboardSection(board, "b.board.json", [&](const std::string& name) -> std::optional<BoardRun> {
    auto it = runs.find(name);
    return it == runs.end() ? std::nullopt : std::optional<BoardRun>(it->second);
  }, doc);
  EXPECT_TRUE(s.ok()) << s;
  return doc.ToMarkdown();
}

TEST(LeaderboardTest, StatisticsPerBudgetAndMethod) {
  const std::string md = Render(Board());
  EXPECT_THAT(md, HasSubstr("Budget w2a2: 0.2 GBitOps, 10.0 KiB of weights"));
  // uniform w2a2: 89.0, 89.5, 90.0 -> mean 89.50, sd 0.50, CI from Summarize.
  const Summary u = Summarize({89.0, 89.5, 90.0});
  EXPECT_THAT(md, HasSubstr(absl::StrFormat("| 3 of 3 | 89.50 ± 0.50 | [%.2f, %.2f] |", u.ci_low, u.ci_high)));
  // other w2a2: differences 1, 2, 3 -> +2.00, paired p = 0.0742 (tests/reports/stats_test).
  const PairedTest t = PairedT({90.0, 91.5, 93.0}, {89.0, 89.5, 90.0});
  EXPECT_THAT(md, HasSubstr(absl::StrFormat("| +2.00 (n = 3) | %.3g | no |", t.p)));
  EXPECT_THAT(md, HasSubstr("| other (runs 3, 7, 10) | 3 of 3 |"));
  EXPECT_THAT(md, HasSubstr("| uniform (runs 1, 5, 8) | 3 of 3 | 89.50 ± 0.50 |"));
  EXPECT_THAT(md, HasSubstr("(baseline)"));
}

TEST(LeaderboardTest, FlagsAndMissingSeeds) {
  const std::string md = Render(Board());
  // other at w4a4: seeds 1 and 3 finished (seed 3 above uniform's 0.7 GBitOps), 12 epochs.
  EXPECT_THAT(md, HasSubstr("| 2 of 3 | 91.00 ± 0.00 |"));
  EXPECT_THAT(md, HasSubstr("**over budget** (1 of 2), **epochs**"));
  EXPECT_THAT(md, HasSubstr("| 12 |"));
  // Paired over the two seeds both finished: 91 - 90, 91 - 91.
  EXPECT_THAT(md, HasSubstr("| +0.50 (n = 2) |"));
}

// A sensitivity pass counts: 8 epochs + 3.00 of traces spends the board's 11 (no flag);
// 11 + 0.5 spends more, 9 + 0.5 a whole epoch less (both flagged).
TEST(LeaderboardTest, SensitivityPassesCountAsEpochs) {
  for (const auto& [epochs, sensitivity, flagged] :
       std::vector<std::tuple<int64_t, double, bool>>{{8, 3.0, false}, {11, 0.5, true}, {9, 0.5, true}}) {
    std::map<std::string, BoardRun> runs = Runs();
    for (auto& [name, run] : runs) {
      if (name.find("_other_w2a2_") != std::string::npos) {
        run.epochs = epochs;
        run.sensitivity_epochs = sensitivity;
      }
    }
    Document doc;
    ASSERT_TRUE(LeaderboardSection(Board(), "b.board.json", [&](const std::string& name) -> std::optional<BoardRun> {
      auto it = runs.find(name);
      return it == runs.end() ? std::nullopt : std::optional<BoardRun>(it->second);
    }, doc).ok());
    const std::string md = doc.ToMarkdown();
    const std::string cell = absl::StrFormat("| %d + %.2f sensitivity |", epochs, sensitivity);
    const size_t row = md.find("| other (runs 3, 7, 10) |");
    ASSERT_NE(row, std::string::npos) << md;
    const std::string line = md.substr(row, md.find('\n', row) - row);
    EXPECT_THAT(line, HasSubstr(cell)) << line;
    EXPECT_EQ(line.find("**epochs**") != std::string::npos, flagged) << line;
  }
}

TEST(LeaderboardTest, ParetoPlotWithErrorBars) {
  const std::map<std::string, BoardRun> runs = Runs();
  Document doc;
  ASSERT_TRUE(LeaderboardSection(Board(), "b.board.json", [&](const std::string& name) -> std::optional<BoardRun> {
    auto it = runs.find(name);
    return it == runs.end() ? std::nullopt : std::optional<BoardRun>(it->second);
  }, doc).ok());
  ASSERT_EQ(doc.figures().size(), 1u);
  EXPECT_EQ(doc.figures()[0].first, "leaderboard_b.svg");
  const std::string& svg = doc.figures()[0].second;
  EXPECT_THAT(svg, HasSubstr("<line x1="));  // error bars
  EXPECT_THAT(svg, HasSubstr(">uniform<"));
  EXPECT_THAT(svg, HasSubstr(">other<"));
}

TEST(LeaderboardTest, NothingRunYet) {
  Document doc;
  ASSERT_TRUE(LeaderboardSection(Board(), "b.board.json", [](const std::string&) { return std::nullopt; }, doc).ok());
  const std::string md = doc.ToMarkdown();
  EXPECT_THAT(md, HasSubstr("Budget w2a2 (no uniform run finished yet)"));
  EXPECT_THAT(md, HasSubstr("| uniform | 0 of 3 | - | - |"));
}

// A knob search: "searched" runs at 3 settings per seed. Per seed the result is the
// candidate with the best validation top-1 among those within the budget (never the test
// set); when none is within, the best on validation, flagged; incomplete seeds wait.
TEST(LeaderboardTest, KnobSearchChoosesOnValidationWithinTheBudget) {
  Json board = Board();
  for (int seed : {1, 2, 3}) {
    for (int k = 0; k < 3; ++k) {
      board["entries"].push_back({{"method", "searched"},
                                  {"budget", "w2a2"},
                                  {"seed", seed},
                                  {"candidate", k},
                                  {"spec", {{"name", absl::StrFormat("b_searched_w2a2_k%d_s%d", k, seed)}}}});
    }
  }
  std::map<std::string, BoardRun> runs = Runs();
  auto add = [&](int k, int seed, double test, double val, double bitops) {
    BoardRun r{static_cast<int64_t>(100 + 10 * seed + k), test, bitops, 10000.0, 11, 60};
    r.val_top1 = val;
    runs[absl::StrFormat("b_searched_w2a2_k%d_s%d", k, seed)] = r;
  };
  // Seed 1: k2 has the best validation but is over the 0.2 GBitOps budget; k1 is chosen
  // although k0 has the better test top-1.
  add(0, 1, 95.0, 80.0, 0.15e9);
  add(1, 1, 85.0, 81.0, 0.19e9);
  add(2, 1, 99.0, 90.0, 0.30e9);
  // Seed 2: every candidate over budget: the best on validation, flagged.
  add(0, 2, 70.0, 70.0, 0.25e9);
  add(1, 2, 72.0, 75.0, 0.26e9);
  add(2, 2, 71.0, 71.0, 0.27e9);
  // Seed 3: k2 not finished: the seed waits.
  add(0, 3, 60.0, 60.0, 0.1e9);
  add(1, 3, 61.0, 61.0, 0.1e9);
  Document doc;
  ASSERT_TRUE(LeaderboardSection(board, "b.board.json", [&](const std::string& name) -> std::optional<BoardRun> {
    auto it = runs.find(name);
    return it == runs.end() ? std::nullopt : std::optional<BoardRun>(it->second);
  }, doc).ok());
  const std::string md = doc.ToMarkdown();
  const size_t row = md.find("| searched (runs 111, 121) |");
  ASSERT_NE(row, std::string::npos) << md;
  const std::string line = md.substr(row, md.find('\n', row) - row);
  EXPECT_THAT(line, HasSubstr("| 2 of 3 | 78.50 ± 9.19 |")) << line;  // 85 and 72
  EXPECT_THAT(line, HasSubstr("**over budget** (1 of 2)")) << line;
  EXPECT_THAT(line, HasSubstr("knob search: 3 candidates on validation, 33 epochs in all per seed "
                              "(seed 1: #1, seed 2: #1)")) << line;
  // Paired with uniform's seeds 1 and 2 (89.0, 89.5): 85 - 89, 72 - 89.5.
  EXPECT_THAT(line, HasSubstr("| -10.75 (n = 2) |")) << line;

  // Without validation figures (older runs) nothing is preferred: the lowest index.
  for (auto& [name, run] : runs) {
    if (name.find("searched") != std::string::npos) run.val_top1.reset();
  }
  Document doc2;
  ASSERT_TRUE(LeaderboardSection(board, "b.board.json", [&](const std::string& name) -> std::optional<BoardRun> {
    auto it = runs.find(name);
    return it == runs.end() ? std::nullopt : std::optional<BoardRun>(it->second);
  }, doc2).ok());
  EXPECT_THAT(doc2.ToMarkdown(), HasSubstr("(seed 1: #0, seed 2: #0)"));

  // A candidate that is not an index is a named error.
  board["entries"].back()["candidate"] = "two";
  Document doc3;
  absl::Status s = LeaderboardSection(board, "b.board.json", [](const std::string&) { return std::nullopt; }, doc3);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("candidate is not an index"));
}

TEST(LeaderboardTest, MalformedBoardsAreNamedErrors) {
  Document doc;
  auto none = [](const std::string&) { return std::optional<BoardRun>(); };
  absl::Status s = LeaderboardSection(Json{{"name", "b"}}, "x.board.json", none, doc);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("leaderboard x.board.json: expected {name, epochs"));
  Json board = Board();
  board["entries"][0].erase("seed");
  s = LeaderboardSection(board, "x.board.json", none, doc);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("an entry without method, budget, seed and spec.name"));
}

}  // namespace
}  // namespace mpq::reports
