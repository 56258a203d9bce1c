// ilp.h — the integer linear program of HAWQ-V3 (Yao, Dong et al., ICML 2021, eq. 5;
// Zhen-Dong/HAWQ ILP.ipynb), as a multiple-choice problem solved exactly by GLPK's
// branch and cut (glp_intopt), the solver the authors' notebook calls through PuLP.
// Torch-free.
//
//   MultipleChoiceProblem p;
//   p.objective = {{0.9, 0.1}, {0.5, 0.0}};   // item i, option k: Omega_i(b_k)
//   p.cost      = {{4, 8}, {4, 8}};            // BitOps or size of that choice
//   p.budget = 12;  p.ties = {{0, 1}};         // items 0 and 1 take the same option
//   absl::StatusOr<MultipleChoiceSolution> s = SolveMultipleChoice(p);  // s->option = {0, 0}
//
// Variables x_ik in {0, 1}; minimise sum_ik objective_ik x_ik subject to
//   sum_k x_ik = 1 for every item i            (one bit-width per layer)
//   sum_ik cost_ik x_ik <= budget              (the BitOps or size budget)
//   x_ik = x_jk for every tie (i, j) and k     (a downsample shortcut follows its main path)
// The notebook writes the same program with one integer per layer in {1, 2} (4 or 8
// bits); the one-hot form takes any number of candidates. docs/hawq.md#ilp.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace mpq::alloc {

struct MultipleChoiceProblem {
  std::vector<std::vector<double>> objective;  // [item][option], finite
  std::vector<std::vector<double>> cost;       // same shape, finite
  double budget = 0;
  std::vector<std::pair<int64_t, int64_t>> ties;  // tied items have the same number of options
  double time_limit_s = 60;                       // GLPK's tm_lim; default 60 s
};

struct MultipleChoiceSolution {
  std::vector<int64_t> option;  // per item
  double objective = 0, cost = 0;
  bool optimal = true;  // false: the time limit stopped the search at a feasible point
  std::string solver;   // e.g. "GLPK 5.0 glp_intopt"
};

// InvalidArgument for a malformed problem (names the item and what is wrong);
// FailedPrecondition when no choice meets the budget (names the cheapest cost);
// DeadlineExceeded when the time limit passed before any feasible point was found.
absl::StatusOr<MultipleChoiceSolution> SolveMultipleChoice(const MultipleChoiceProblem& problem);

}  // namespace mpq::alloc
