#include "reports/leaderboard.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "reports/stats.h"
#include "reports/svg.h"

namespace mpq::reports {
namespace {

using Json = nlohmann::json;

struct Entry {
  std::string method, budget, experiment;
  int64_t seed = 0;
  int64_t candidate = -1;  // a knob search's candidate index; -1: not a search
  std::optional<BoardRun> run;
};

// A seed's result when its entries are a knob search: every candidate finished, then the
// best on validation among those within the budget (or among all, if none is). `run` is
// empty while the search is incomplete.
struct Choice {
  const Entry* entry = nullptr;
  int64_t candidates = 1;
};

Choice Choose(const std::vector<const Entry*>& cands, std::optional<double> budget_bitops,
              std::optional<double> budget_bytes) {
  Choice c;
  c.candidates = static_cast<int64_t>(cands.size());
  if (cands.size() == 1) {
    c.entry = cands[0]->run ? cands[0] : nullptr;
    return c;
  }
  for (const Entry* e : cands) {
    if (!e->run) return c;  // incomplete
  }
  const double tol = 1e-9;
  auto within = [&](const Entry* e) {
    return !((budget_bitops && e->run->bitops && *e->run->bitops > *budget_bitops * (1 + tol)) ||
             (budget_bytes && e->run->weight_bytes && *e->run->weight_bytes > *budget_bytes * (1 + tol)));
  };
  bool any_within = false;
  for (const Entry* e : cands) any_within = any_within || within(e);
  for (const Entry* e : cands) {
    if (any_within && !within(e)) continue;
    const double v = e->run->val_top1.value_or(-1), best = c.entry ? c.entry->run->val_top1.value_or(-1) : -2;
    if (v > best) c.entry = e;  // ties keep the lower candidate index
  }
  return c;
}

std::string Slug(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

}  // namespace

absl::Status LeaderboardSection(const Json& board, const std::string& source,
                                const std::function<std::optional<BoardRun>(const std::string&)>& lookup,
                                Document& doc) {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("report: leaderboard ", source, ": ", what));
  };
  if (!board.is_object() || !board.contains("name") || !board["name"].is_string() || !board.contains("entries") ||
      !board["entries"].is_array() || !board.contains("budgets") || !board["budgets"].is_array() ||
      !board.contains("baseline") || !board["baseline"].is_string() || !board.contains("epochs") ||
      !board["epochs"].is_number_integer()) {
    return bad("expected {name, epochs, baseline, budgets, seeds, entries} (written by leaderboard())");
  }
  const std::string name = board["name"], baseline = board["baseline"];
  const int64_t epochs = board["epochs"];
  std::vector<std::string> budgets, methods;
  for (const Json& b : board["budgets"]) {
    if (!b.is_string()) return bad(absl::StrCat("a budget that is not a string: ", b.dump()));
    budgets.push_back(b);
  }
  std::vector<Entry> entries;
  std::string model, dataset;
  for (const Json& e : board["entries"]) {
    if (!e.is_object() || !e.contains("method") || !e.contains("budget") || !e.contains("seed") ||
        !e.contains("spec") || !e["spec"].contains("name")) {
      return bad(absl::StrCat("an entry without method, budget, seed and spec.name: ", e.dump().substr(0, 200)));
    }
    Entry x;
    x.method = e["method"];
    x.budget = e["budget"];
    x.seed = e["seed"];
    x.experiment = e["spec"]["name"];
    if (e.contains("candidate")) {
      if (!e["candidate"].is_number_integer() || e["candidate"].get<int64_t>() < 0) {
        return bad(absl::StrCat("an entry whose candidate is not an index: ", e.dump().substr(0, 200)));
      }
      x.candidate = e["candidate"];
    }
    x.run = lookup(x.experiment);
    model = e["spec"].value("model", model);
    dataset = e["spec"].value("dataset", dataset);
    if (std::find(methods.begin(), methods.end(), x.method) == methods.end()) methods.push_back(x.method);
    entries.push_back(std::move(x));
  }
  std::vector<std::string> seeds;
  for (const Json& s : board.value("seeds", Json::array())) seeds.push_back(s.dump());

  doc.Heading(3, absl::StrCat("Leaderboard `", name, "`"));
  doc.Paragraph(absl::StrFormat(
      "%s on %s; seeds %s; %d epochs per run. Per budget and method: test top-1 over the finished seeds as mean "
      "± sample standard deviation and its 95%% Student-t interval; the achieved BitOps and weight size (means); "
      "the epochs the method accounts for (with its sensitivity pass converted to epochs: example passes over the "
      "training split) and the wall-clock from creation to finish (mean). Δ is the mean "
      "difference to %s over the seeds where both finished, with a two-sided paired t-test; **yes** = p < 0.05. "
      "The budget is what the %s runs at it achieved (their largest BitOps and weight size); a run above either "
      "is marked **over budget**, one whose method spends more epochs than %d, or a whole epoch less, is marked "
      "**epochs**. Not-yet-run seeds are counted, not guessed. A knob search (a method run at several settings of "
      "its budget knob) takes, per seed, the candidate with the best validation top-1 among those within the budget, "
      "once all have finished; its marks say which and what the search spent.",
      model, dataset, absl::StrJoin(seeds, ", "), epochs, baseline, baseline, epochs));

  const std::vector<std::string> header = {"method", "seeds finished", "test top-1 (%)", "95% CI", "BitOps (G)",
                                           "weights (KiB)", "epochs", "wall-clock (min)", "Δ vs " + baseline,
                                           "p", "significant", "marks"};
  Chart chart;
  chart.title = absl::StrCat("leaderboard ", name, ": test top-1 (mean ± sd over seeds) vs BitOps");
  chart.x_label = "BitOps";
  chart.y_label = "test top-1 (%)";
  chart.log_x = true;
  std::map<std::string, Series> series;
  for (size_t m = 0; m < methods.size(); ++m) {
    series[methods[m]] = Series{methods[m], PaletteColor(m), {}, /*line=*/true};
  }
  for (const std::string& budget : budgets) {
    std::optional<double> budget_bitops, budget_bytes;
    for (const Entry& e : entries) {
      if (e.method != baseline || e.budget != budget || !e.run) continue;
      if (e.run->bitops) budget_bitops = std::max(budget_bitops.value_or(0), *e.run->bitops);
      if (e.run->weight_bytes) budget_bytes = std::max(budget_bytes.value_or(0), *e.run->weight_bytes);
    }
    doc.Heading(4, budget_bitops ? absl::StrFormat("Budget %s: %.4g GBitOps, %.1f KiB of weights", budget,
                                                   *budget_bitops / 1e9, budget_bytes.value_or(0) / 1024)
                                 : absl::StrFormat("Budget %s (no %s run finished yet)", budget, baseline));
    std::map<int64_t, double> baseline_top1;  // by seed
    for (const Entry& e : entries) {
      if (e.method == baseline && e.budget == budget && e.run) baseline_top1[e.seed] = e.run->test_top1;
    }
    std::vector<std::vector<std::string>> rows;
    for (const std::string& method : methods) {
      std::vector<double> top1, bitops, bytes, wall, mine, theirs;
      std::vector<std::string> ids;
      std::set<std::string> spent;
      int total = 0, over = 0;
      bool spent_other = false;
      // Per seed (in the board's order), its entries: one, or a knob search's candidates.
      std::vector<int64_t> seed_order;
      std::map<int64_t, std::vector<const Entry*>> by_seed;
      for (const Entry& e : entries) {
        if (e.method != method || e.budget != budget) continue;
        if (!by_seed.count(e.seed)) seed_order.push_back(e.seed);
        by_seed[e.seed].push_back(&e);
      }
      int64_t searched = 1;
      std::vector<std::string> chosen;
      for (int64_t seed : seed_order) {
        const Choice choice = Choose(by_seed[seed], budget_bitops, budget_bytes);
        searched = std::max(searched, choice.candidates);
        ++total;
        if (choice.entry == nullptr) continue;
        const Entry& e = *choice.entry;
        if (choice.candidates > 1) chosen.push_back(absl::StrFormat("seed %d: #%d", seed, e.candidate));
        top1.push_back(e.run->test_top1);
        if (e.run->bitops) bitops.push_back(*e.run->bitops);
        if (e.run->weight_bytes) bytes.push_back(*e.run->weight_bytes);
        wall.push_back(e.run->wall_s / 60);
        spent.insert(e.run->sensitivity_epochs > 0
                         ? absl::StrFormat("%d + %.2f sensitivity", e.run->epochs, e.run->sensitivity_epochs)
                         : absl::StrCat(e.run->epochs));
        // Every run spends the board's epochs: more is flagged, and so is a whole epoch less.
        const double total_epochs = e.run->epochs + e.run->sensitivity_epochs;
        if (total_epochs > epochs + 1e-9 || total_epochs <= epochs - 1) spent_other = true;
        ids.push_back(absl::StrCat(e.run->id));
        const double tol = 1e-9;
        if ((budget_bitops && e.run->bitops && *e.run->bitops > *budget_bitops * (1 + tol)) ||
            (budget_bytes && e.run->weight_bytes && *e.run->weight_bytes > *budget_bytes * (1 + tol))) {
          ++over;
        }
        if (method != baseline && baseline_top1.count(e.seed)) {
          mine.push_back(e.run->test_top1);
          theirs.push_back(baseline_top1[e.seed]);
        }
      }
      const Summary s = Summarize(top1);
      auto mean = [](const std::vector<double>& v) {
        return v.empty() ? std::string("-") : absl::StrFormat("%.4g", Summarize(v).mean);
      };
      std::vector<std::string> marks;
      if (over > 0) marks.push_back(absl::StrFormat("**over budget** (%d of %d)", over, static_cast<int>(top1.size())));
      const std::vector<std::string> spent_text(spent.begin(), spent.end());
      if (spent_other) marks.push_back("**epochs**");
      if (searched > 1) {
        marks.push_back(absl::StrFormat(
            "knob search: %d candidates on validation, %d epochs in all per seed%s", searched, searched * epochs,
            chosen.empty() ? "" : absl::StrCat(" (", absl::StrJoin(chosen, ", "), ")")));
      }
      std::string delta = "-", p = "-", significant = "-";
      if (method == baseline) {
        delta = "(baseline)";
      } else if (!mine.empty()) {
        const PairedTest t = PairedT(mine, theirs);
        delta = absl::StrFormat("%+.2f (n = %d)", t.mean_difference, t.n);
        if (t.defined()) {
          p = absl::StrFormat("%.3g", t.p);
          significant = t.p < 0.05 ? "**yes**" : "no";
        }
      }
      rows.push_back({absl::StrCat(method, ids.empty() ? "" : absl::StrCat(" (runs ", absl::StrJoin(ids, ", "), ")")),
                      absl::StrFormat("%d of %d", s.n, total),
                      s.n == 0 ? "-" : s.n == 1 ? absl::StrFormat("%.2f", s.mean)
                                                : absl::StrFormat("%.2f ± %.2f", s.mean, s.sd),
                      s.has_ci() ? absl::StrFormat("[%.2f, %.2f]", s.ci_low, s.ci_high) : "-",
                      bitops.empty() ? "-" : absl::StrFormat("%.4g", Summarize(bitops).mean / 1e9),
                      bytes.empty() ? "-" : absl::StrFormat("%.1f", Summarize(bytes).mean / 1024),
                      spent_text.empty() ? "-" : absl::StrJoin(spent_text, ", "), mean(wall), delta, p, significant,
                      absl::StrJoin(marks, ", ")});
      if (s.n > 0 && !bitops.empty()) {
        series[method].points.emplace_back(Summarize(bitops).mean, s.mean);
        series[method].y_error.push_back(s.sd);
      }
    }
    doc.Table(header, rows);
  }
  for (const std::string& method : methods) {
    Series& s = series[method];
    std::vector<size_t> order(s.points.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s.points[a].first < s.points[b].first; });
    Series sorted = s;
    for (size_t i = 0; i < order.size(); ++i) {
      sorted.points[i] = s.points[order[i]];
      sorted.y_error[i] = s.y_error[order[i]];
    }
    chart.series.push_back(sorted);
  }
  doc.Figure(absl::StrCat("leaderboard_", Slug(name), ".svg"), chart.title, RenderChart(chart));
  return absl::OkStatus();
}

}  // namespace mpq::reports
