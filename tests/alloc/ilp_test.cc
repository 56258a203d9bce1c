// The ILP against exhaustive enumeration: on random multiple-choice problems small
// enough to enumerate, GLPK's choice has the smallest objective among all choices that
// meet the budget and the ties.
#include "lib/alloc/ilp.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace mpq::alloc {
namespace {

struct Best {
  double objective = std::numeric_limits<double>::infinity();
  bool feasible = false;
};

Best Enumerate(const MultipleChoiceProblem& p) {
  const size_t n = p.objective.size();
  std::vector<size_t> choice(n, 0);
  Best best;
  while (true) {
    bool tied = true;
    for (const auto& [a, b] : p.ties) tied &= choice[a] == choice[b];
    double obj = 0, cost = 0;
    for (size_t i = 0; i < n; ++i) {
      obj += p.objective[i][choice[i]];
      cost += p.cost[i][choice[i]];
    }
    if (tied && cost <= p.budget && obj < best.objective) best = {obj, true};
    size_t i = 0;
    while (i < n && ++choice[i] == p.objective[i].size()) choice[i++] = 0;
    if (i == n) break;
  }
  return best;
}

// Problems shaped like HAWQ-V3's: Omega falls with more bits, cost rises.
MultipleChoiceProblem RandomProblem(std::mt19937& rng, size_t items, size_t options, double fraction) {
  std::uniform_real_distribution<double> u(0.1, 1.0);
  MultipleChoiceProblem p;
  double low = 0, high = 0;
  for (size_t i = 0; i < items; ++i) {
    const double scale = u(rng), macs = u(rng) * 100;
    std::vector<double> o, c;
    for (size_t k = 0; k < options; ++k) {
      o.push_back(scale * std::pow(4.0, -static_cast<double>(k)) * u(rng));
      c.push_back(macs * (k + 2) * (k + 2));
    }
    low += c.front();
    high += c.back();
    p.objective.push_back(o);
    p.cost.push_back(c);
  }
  p.budget = low + fraction * (high - low);
  return p;
}

TEST(MultipleChoiceIlpTest, MatchesExhaustiveEnumeration) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    MultipleChoiceProblem p = RandomProblem(rng, 7, 3, 0.1 + 0.02 * trial);
    if (trial % 2 == 1) p.ties = {{1, 4}, {2, 6}};
    const Best best = Enumerate(p);
    ASSERT_TRUE(best.feasible);
    absl::StatusOr<MultipleChoiceSolution> s = SolveMultipleChoice(p);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_TRUE(s->optimal);
    // GLPK's objective is a sum of the same doubles in another order: 1e-9 relative.
    EXPECT_NEAR(s->objective, best.objective, 1e-9 * std::abs(best.objective)) << "trial " << trial;
    EXPECT_LE(s->cost, p.budget);
    double obj = 0, cost = 0;
    for (size_t i = 0; i < p.objective.size(); ++i) {
      obj += p.objective[i][s->option[i]];
      cost += p.cost[i][s->option[i]];
    }
    EXPECT_DOUBLE_EQ(obj, s->objective);
    EXPECT_DOUBLE_EQ(cost, s->cost);
    for (const auto& [a, b] : p.ties) EXPECT_EQ(s->option[a], s->option[b]) << "trial " << trial;
  }
}

TEST(MultipleChoiceIlpTest, BudgetAtBothEndsGivesAllLowAndAllHigh) {
  std::mt19937 rng(3);
  MultipleChoiceProblem p = RandomProblem(rng, 10, 2, 0.0);
  absl::StatusOr<MultipleChoiceSolution> low = SolveMultipleChoice(p);
  ASSERT_TRUE(low.ok()) << low.status();
  for (int64_t k : low->option) EXPECT_EQ(k, 0);
  p = RandomProblem(rng, 10, 2, 1.0);
  absl::StatusOr<MultipleChoiceSolution> high = SolveMultipleChoice(p);
  ASSERT_TRUE(high.ok()) << high.status();
  for (int64_t k : high->option) EXPECT_EQ(k, 1);
}

TEST(MultipleChoiceIlpTest, InfeasibleBudgetNamesTheCheapestCost) {
  MultipleChoiceProblem p;
  p.objective = {{1, 0}, {1, 0}};
  p.cost = {{4, 8}, {4, 8}};
  p.budget = 7;
  absl::StatusOr<MultipleChoiceSolution> s = SolveMultipleChoice(p);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(s.status().message()).find("cheapest choice (8,"), std::string::npos) << s.status();
}

TEST(MultipleChoiceIlpTest, TiesAreHonoured) {
  // Budget 13: untied, item 1 (the costlier to leave low) goes high and item 0 stays
  // low (12); tied, both high (16) does not fit, so both stay low.
  MultipleChoiceProblem p;
  p.objective = {{1, 0}, {5, 0}};
  p.cost = {{4, 8}, {4, 8}};
  p.budget = 13;
  absl::StatusOr<MultipleChoiceSolution> untied = SolveMultipleChoice(p);
  ASSERT_TRUE(untied.ok()) << untied.status();
  EXPECT_EQ(untied->option, (std::vector<int64_t>{0, 1}));
  p.ties = {{0, 1}};
  absl::StatusOr<MultipleChoiceSolution> tied = SolveMultipleChoice(p);
  ASSERT_TRUE(tied.ok()) << tied.status();
  EXPECT_EQ(tied->option, (std::vector<int64_t>{0, 0}));
}

TEST(MultipleChoiceIlpTest, MalformedProblemsNameTheItem) {
  MultipleChoiceProblem p;
  p.objective = {{1, 0}, {1}};
  p.cost = {{4, 8}, {4, 8}};
  p.budget = 100;
  absl::StatusOr<MultipleChoiceSolution> s = SolveMultipleChoice(p);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.status().message()).find("item 1"), std::string::npos) << s.status();
  p.objective = {{1, NAN}, {1, 0}};
  s = SolveMultipleChoice(p);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.status().message()).find("item 0 option 1"), std::string::npos) << s.status();
  p.objective = {{1, 0}, {1, 0}};
  p.ties = {{0, 5}};
  s = SolveMultipleChoice(p);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.status().message()).find("tie (0, 5)"), std::string::npos) << s.status();
}

}  // namespace
}  // namespace mpq::alloc
