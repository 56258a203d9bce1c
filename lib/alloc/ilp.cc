#include "lib/alloc/ilp.h"

#include <glpk.h>

#include <cmath>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mpq::alloc {
namespace {

struct ProblemDeleter {
  void operator()(glp_prob* p) const { glp_delete_prob(p); }
};

// The cheapest total cost any choice can reach under the ties (tied items move
// together), for the error message of an infeasible budget.
double CheapestCost(const MultipleChoiceProblem& p) {
  const int64_t n = static_cast<int64_t>(p.cost.size());
  std::vector<int64_t> root(n);
  for (int64_t i = 0; i < n; ++i) root[i] = i;
  auto find = [&](int64_t i) {
    while (root[i] != i) i = root[i] = root[root[i]];
    return i;
  };
  for (const auto& [a, b] : p.ties) root[find(a)] = find(b);
  std::vector<std::vector<double>> group(n);
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double>& g = group[find(i)];
    if (g.empty()) g.assign(p.cost[i].size(), 0.0);
    for (size_t k = 0; k < g.size(); ++k) g[k] += p.cost[i][k];
  }
  double total = 0;
  for (const std::vector<double>& g : group) {
    if (g.empty()) continue;
    double best = std::numeric_limits<double>::infinity();
    for (double c : g) best = std::min(best, c);
    total += best;
  }
  return total;
}

}  // namespace

absl::StatusOr<MultipleChoiceSolution> SolveMultipleChoice(const MultipleChoiceProblem& p) {
  const int64_t items = static_cast<int64_t>(p.objective.size());
  if (items == 0) return absl::InvalidArgumentError("ilp: the problem has no items; expected at least one layer");
  if (static_cast<int64_t>(p.cost.size()) != items) {
    return absl::InvalidArgumentError(
        absl::StrCat("ilp: ", items, " objective rows but ", p.cost.size(), " cost rows; expected one per item"));
  }
  if (!std::isfinite(p.budget)) return absl::InvalidArgumentError("ilp: the budget is not finite");
  std::vector<int> first_column(items + 1, 1);  // GLPK columns are 1-based
  for (int64_t i = 0; i < items; ++i) {
    const size_t options = p.objective[i].size();
    if (options == 0 || p.cost[i].size() != options) {
      return absl::InvalidArgumentError(absl::StrCat("ilp: item ", i, " has ", options, " objective and ",
                                                     p.cost[i].size(), " cost options; expected the same number, >= 1"));
    }
    for (size_t k = 0; k < options; ++k) {
      if (!std::isfinite(p.objective[i][k]) || !std::isfinite(p.cost[i][k])) {
        return absl::InvalidArgumentError(absl::StrFormat("ilp: item %d option %d has objective %g and cost %g; "
                                                          "expected finite values",
                                                          i, k, p.objective[i][k], p.cost[i][k]));
      }
    }
    first_column[i + 1] = first_column[i] + static_cast<int>(options);
  }
  for (const auto& [a, b] : p.ties) {
    if (a < 0 || b < 0 || a >= items || b >= items) {
      return absl::InvalidArgumentError(absl::StrCat("ilp: tie (", a, ", ", b, ") names an item outside 0..", items - 1));
    }
    if (p.objective[a].size() != p.objective[b].size()) {
      return absl::InvalidArgumentError(absl::StrCat("ilp: tie (", a, ", ", b, ") joins items with ",
                                                     p.objective[a].size(), " and ", p.objective[b].size(),
                                                     " options; expected the same candidates"));
    }
  }
  const double cheapest = CheapestCost(p);
  if (cheapest > p.budget * (1 + 1e-12) + 1e-12) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "ilp: the budget %.6g is below the cheapest choice (%.6g, every item at its cheapest option); raise the "
        "budget fraction or add a smaller candidate",
        p.budget, cheapest));
  }

  glp_term_out(GLP_OFF);
  std::unique_ptr<glp_prob, ProblemDeleter> lp(glp_create_prob());
  glp_set_obj_dir(lp.get(), GLP_MIN);
  const int columns = first_column[items] - 1;
  glp_add_cols(lp.get(), columns);
  for (int64_t i = 0; i < items; ++i) {
    for (size_t k = 0; k < p.objective[i].size(); ++k) {
      const int c = first_column[i] + static_cast<int>(k);
      glp_set_col_kind(lp.get(), c, GLP_BV);
      glp_set_obj_coef(lp.get(), c, p.objective[i][k]);
    }
  }
  // Rows: one-hot per item, the budget, then k equalities per tie.
  std::vector<int> ia(1), ja(1);  // 1-based triplets
  std::vector<double> ar(1);
  auto add = [&](int row, int col, double v) {
    ia.push_back(row);
    ja.push_back(col);
    ar.push_back(v);
  };
  int rows = 0;
  auto new_row = [&](int type, double lo, double hi) {
    rows = glp_add_rows(lp.get(), 1);
    glp_set_row_bnds(lp.get(), rows, type, lo, hi);
    return rows;
  };
  for (int64_t i = 0; i < items; ++i) {
    const int r = new_row(GLP_FX, 1, 1);
    for (int c = first_column[i]; c < first_column[i + 1]; ++c) add(r, c, 1);
  }
  const int budget_row = new_row(GLP_UP, 0, p.budget);
  for (int64_t i = 0; i < items; ++i) {
    for (size_t k = 0; k < p.cost[i].size(); ++k) {
      if (p.cost[i][k] != 0) add(budget_row, first_column[i] + static_cast<int>(k), p.cost[i][k]);
    }
  }
  for (const auto& [a, b] : p.ties) {
    if (a == b) continue;
    for (size_t k = 0; k < p.objective[a].size(); ++k) {
      const int r = new_row(GLP_FX, 0, 0);
      add(r, first_column[a] + static_cast<int>(k), 1);
      add(r, first_column[b] + static_cast<int>(k), -1);
    }
  }
  glp_load_matrix(lp.get(), static_cast<int>(ia.size()) - 1, ia.data(), ja.data(), ar.data());

  glp_iocp parm;
  glp_init_iocp(&parm);
  parm.presolve = GLP_ON;  // solves the LP relaxation itself
  parm.msg_lev = GLP_MSG_OFF;
  parm.mip_gap = 0.0;  // prove optimality
  parm.tm_lim = static_cast<int>(std::min(p.time_limit_s * 1000.0, 2.0e9));
  const int ret = glp_intopt(lp.get(), &parm);
  const int status = glp_mip_status(lp.get());
  if (status == GLP_NOFEAS) {
    return absl::FailedPreconditionError(
        absl::StrFormat("ilp: GLPK found no choice within the budget %.6g under the ties; raise the budget fraction",
                        p.budget));
  }
  if (status != GLP_OPT && status != GLP_FEAS) {
    if (ret == GLP_ETMLIM) {
      return absl::DeadlineExceededError(absl::StrFormat(
          "ilp: GLPK found no feasible choice within the time limit of %g s; raise it", p.time_limit_s));
    }
    return absl::InternalError(absl::StrCat("ilp: glp_intopt returned ", ret, ", MIP status ", status));
  }
  MultipleChoiceSolution s;
  s.optimal = status == GLP_OPT && ret == 0;
  s.solver = absl::StrCat("GLPK ", glp_version(), " glp_intopt");
  s.option.assign(items, -1);
  for (int64_t i = 0; i < items; ++i) {
    for (size_t k = 0; k < p.objective[i].size(); ++k) {
      if (glp_mip_col_val(lp.get(), first_column[i] + static_cast<int>(k)) > 0.5) {
        s.option[i] = static_cast<int64_t>(k);
        s.objective += p.objective[i][k];
        s.cost += p.cost[i][k];
      }
    }
    if (s.option[i] < 0) return absl::InternalError(absl::StrCat("ilp: GLPK left item ", i, " without an option"));
  }
  return s;
}

}  // namespace mpq::alloc
