#include "reports/report.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "experiments/spec.h"
#include "lib/alloc/metric_names.h"
#include "lib/runtime/atomic_file.h"
#include "reports/document.h"
#include "reports/leaderboard.h"
#include "reports/svg.h"
#include "results/store.h"

namespace mpq::reports {
namespace {

using Json = nlohmann::json;
namespace names = alloc::names;

// ------------------------------------------------------------------ data

struct RunInfo {
  results::RunRecord record;
  std::optional<experiments::ExperimentSpec> spec;  // unset when the stored spec does not parse
  std::optional<results::FinalResult> result;
  Json extra;
  std::string model() const { return spec ? spec->model : "?"; }
  int64_t EpochBudget() const { return spec ? spec->method_options->EpochBudget(spec->epochs) : 0; }
};

std::string Fmt(const std::optional<double>& v, const char* f) { return v ? absl::StrFormat(f, *v) : ""; }
std::string Opt(double v, const char* f) { return absl::StrFormat(f, v); }

absl::StatusOr<Json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("report: cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return Json::parse(ss.str());
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("report: ", path, " is not valid JSON: ", e.what()));
  }
}

std::string Slug(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

std::string MethodOf(const RunInfo& r) {
  if (!r.spec) return "?";
  const models::QuantConfig& q = r.spec->quant;
  if (!r.spec->method->chooses_bits) {
    if (q.weight_quantizer == nn::WeightQuantizer::kNone || q.weight_bits == nn::kFullPrecision) return "FP32";
    return absl::StrFormat("uniform W%dA%d", q.weight_bits, q.act_bits);
  }
  return r.spec->method->name;
}

struct Point {
  int64_t index;
  std::map<std::string, double> values;
};

std::vector<Point> PointsOf(const std::vector<results::Metric>& metrics) {
  std::map<int64_t, Point> by;
  for (const results::Metric& m : metrics) {
    if (m.name.rfind(names::kPointPrefix, 0) != 0) continue;
    Point& p = by[m.step];
    p.index = m.step;
    p.values[m.name.substr(sizeof names::kPointPrefix - 1)] = m.value;  // a repeated row (a resumed write) keeps the last
  }
  std::vector<Point> out;
  for (auto& [k, p] : by) out.push_back(p);
  return out;
}

// Everything the sections read: every run, the latest (finished) run of each experiment
// name, the papers' rows, and the finished runs' metrics and points, grouped by network
// and dataset.
struct ReportData {
  std::unique_ptr<results::ResultStore> store;
  std::vector<RunInfo> runs;
  std::map<std::string, const RunInfo*> finished, latest;  // by experiment name
  std::map<std::string, Json> paper_rows;                  // paper row id -> row
  std::map<std::string, std::string> paper_title;          // paper file stem -> title
  std::map<std::pair<std::string, std::string>, std::vector<const RunInfo*>> groups;  // (model, dataset)
  std::map<int64_t, std::vector<Point>> points_of;
  std::map<int64_t, std::vector<results::Metric>> metrics_of;
};

// Reads the store and the paper files into `d` (which must stay where it is: the maps
// point into d.runs).
absl::Status LoadReportData(const ReportInputs& in, ReportData& d) {
  std::error_code ec;
  if (!std::filesystem::exists(in.db_path, ec)) {
    return absl::NotFoundError(absl::StrCat("report: no results database at ", in.db_path,
                                            "; run an experiment first (e.g. bazel run //experiments:quickstart) or "
                                            "pass --db=<path>"));
  }
  absl::StatusOr<std::unique_ptr<results::ResultStore>> store = results::ResultStore::OpenReadOnly(in.db_path);
  if (!store.ok()) return store.status();
  d.store = std::move(*store);
  absl::StatusOr<std::vector<results::RunRecord>> records = d.store->ListRuns();
  if (!records.ok()) return records.status();
  if (records->empty()) {
    return absl::FailedPreconditionError(absl::StrCat("report: the database ", in.db_path,
                                                      " has no runs yet; run an experiment first"));
  }
  for (const results::RunRecord& rec : *records) {
    RunInfo r;
    r.record = rec;
    absl::StatusOr<experiments::ExperimentSpec> spec =
        experiments::ParseStoredSpec(rec.spec_json, absl::StrCat("run ", rec.id));
    if (spec.ok()) r.spec = *spec;
    absl::StatusOr<std::optional<results::FinalResult>> res = d.store->GetResult(rec.id);
    if (!res.ok()) return res.status();
    r.result = *res;
    if (r.result) {
      try {
        r.extra = Json::parse(r.result->extra_json);
      } catch (const Json::exception&) {
        r.extra = Json::object();
      }
    }
    d.runs.push_back(std::move(r));
  }
  // In creation order (ids follow it within one database, not across imported snapshots).
  std::sort(d.runs.begin(), d.runs.end(), [](const RunInfo& a, const RunInfo& b) {
    return std::tie(a.record.created_at, a.record.id) < std::tie(b.record.created_at, b.record.id);
  });
  // The d.latest d.finished run of each experiment name, and the d.latest run of any status.
  for (const RunInfo& r : d.runs) {
    d.latest[r.record.name] = &r;
    if (r.record.status == "finished" && r.result) d.finished[r.record.name] = &r;
  }

  // Papers: id -> row, and file -> title.
  for (const std::string& f : in.paper_files) {
    absl::StatusOr<Json> p = ReadJsonFile(f);
    if (!p.ok()) return p.status();
    const std::string key = std::filesystem::path(f).stem().string();
    d.paper_title[key] = p->value("paper", key);
    if (!p->contains("rows") || !(*p)["rows"].is_array()) {
      return absl::InvalidArgumentError(absl::StrCat("report: ", f, ": expected a \"rows\" array"));
    }
    for (const Json& row : (*p)["rows"]) {
      if (!row.contains("id") || !row["id"].is_string()) {
        return absl::InvalidArgumentError(absl::StrCat("report: ", f, ": a row without a string \"id\": ", row.dump()));
      }
      Json r = row;
      r["source"] = absl::StrCat("experiments/papers/", key, ".json");
      d.paper_rows[row["id"].get<std::string>()] = r;
    }
  }

  for (const auto& [name, r] : d.finished) d.groups[{r->model(), r->result->dataset}].push_back(r);
  for (const auto& [name, r] : d.finished) {
    absl::StatusOr<std::vector<results::Metric>> m = d.store->GetMetrics(r->record.id);
    if (!m.ok()) return m.status();
    d.metrics_of[r->record.id] = *m;
    d.points_of[r->record.id] = PointsOf(*m);
  }
  return absl::OkStatus();
}

// Title, what the database holds, and what the marks mean.
absl::Status OverviewSection(ReportData& d, const ReportInputs& in, Document& doc) {
  int n_finished = 0, n_failed = 0, n_running = 0;
  for (const RunInfo& r : d.runs) {
    n_finished += r.record.status == "finished";
    n_failed += r.record.status == "failed";
    n_running += r.record.status == "running" || r.record.status == "interrupted";
  }
  doc.Heading(1, "mpqbench report");
  doc.Paragraph(absl::StrFormat("From `%s`: %d runs (%d finished, %d failed, %d running or interrupted). Every number marked "
                       "*ours* is a run in that %s (its id is given); every paper number names its source file "
                       "and row id.",
                       in.source_name.empty() ? std::filesystem::path(in.db_path).filename().string() : in.source_name,
                       d.runs.size(), n_finished, n_failed,
                       n_running, in.source_name.empty() ? "database" : "snapshot"));
  doc.Paragraph("Marks: **substitute dataset** = the run used another dataset than the paper; **reduced budget** = fewer "
       "epochs, fine-tune epochs or training examples than the paper-setting target of the same row.");
  return absl::OkStatus();
}

// Each leaderboard() board (reports/leaderboard.h), from the latest finished run of each
// of its experiments.
absl::Status LeaderboardsSection(ReportData& d, const ReportInputs& in, Document& doc) {
  if (in.board_files.empty()) return absl::OkStatus();
  doc.Heading(2, "Leaderboards");
  auto lookup = [&](const std::string& experiment) -> std::optional<BoardRun> {
    auto it = d.finished.find(experiment);
    if (it == d.finished.end() || !it->second->result || !it->second->result->test_top1) return std::nullopt;
    const RunInfo& r = *it->second;
    BoardRun b;
    b.id = r.record.id;
    b.test_top1 = *r.result->test_top1;
    b.bitops = r.result->bitops;
    b.weight_bytes = r.result->weight_bytes;
    b.val_top1 = r.result->val_top1;
    b.epochs = r.EpochBudget();
    if (!r.result->extra_json.empty()) {
      const Json extra = Json::parse(r.result->extra_json, nullptr, /*allow_exceptions=*/false);
      if (extra.is_object() && extra.contains(names::kExtraAllocatorDetails) && extra[names::kExtraAllocatorDetails].is_object()) {
        const Json& details = extra[names::kExtraAllocatorDetails];
        if (details.contains(names::kDetailsSensitivityEpochs) && details[names::kDetailsSensitivityEpochs].is_number()) {
          b.sensitivity_epochs = details[names::kDetailsSensitivityEpochs].get<double>();
        }
      }
    }
    b.wall_s = r.record.finished_at.value_or(r.record.created_at) - r.record.created_at;
    return b;
  };
  for (const std::string& f : in.board_files) {
    absl::StatusOr<Json> board = ReadJsonFile(f);
    if (!board.ok()) return board.status();
    if (absl::Status s = LeaderboardSection(*board, f, lookup, doc); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// Each paper table with the paper's rows beside our runs.
absl::Status PaperTablesSection(ReportData& d, const ReportInputs& in, Document& doc) {
  doc.Heading(2, "Paper tables");
  if (in.table_files.empty()) doc.Paragraph("No paper_table() targets were given.");
  // "memory" columns: Uhlich et al.'s count in KB (weights with biases; the largest
  // quantized activation), lib/cost/cost_model.h.
  const std::vector<std::string> header = {"source", "row", "dataset", "top-1 (%)", "B_w,eff", "B_a,eff",
                                           "C_C (Gbit-OPs)", "BitOps (G)", "weights (KiB)", "memory W / A max (KB)",
                                           "run / reference", "marks"};
  for (const std::string& f : in.table_files) {
    absl::StatusOr<Json> t = ReadJsonFile(f);
    if (!t.ok()) return t.status();
    const std::string paper = t->value("paper", ""), tname = t->value("table", ""), tdata = t->value("dataset", "");
    doc.Heading(3, absl::StrCat(d.paper_title.count(paper) ? d.paper_title[paper] : paper, " — ", tname, " (`",
                            t->value("name", ""), "`)"));
    std::vector<Json> exps;
    std::map<const Json*, int64_t> budget_of;  // each experiment's epoch budget (its method's accounting)
    for (const Json& e : t->value("experiments", Json::array())) exps.push_back(e);
    for (const Json& e : exps) {
      absl::StatusOr<experiments::ExperimentSpec> spec = experiments::ParseSpec(e.dump(), f);
      if (!spec.ok()) return spec.status();
      budget_of[&e] = spec->method_options->EpochBudget(spec->epochs);
    }
    std::vector<std::string> row_order;  // paper rows in the order their experiments appear
    for (const Json& e : exps) {
      const std::string pr = e.value("paper_row", "");
      if (!pr.empty() && std::find(row_order.begin(), row_order.end(), pr) == row_order.end()) row_order.push_back(pr);
    }
    row_order.push_back("");  // experiments without a paper row
    std::vector<std::vector<std::string>> rows;
    for (const std::string& pr : row_order) {
      if (!pr.empty()) {
        if (!d.paper_rows.count(pr)) {
          return absl::InvalidArgumentError(absl::StrCat("report: ", f, ": paper row '", pr,
                                                         "' is not in any experiments/papers/*.json"));
        }
        const Json& p = d.paper_rows[pr];
        auto num = [&](const char* k, const char* fmt) {
          return p.contains(k) && p[k].is_number() ? absl::StrFormat(fmt, p[k].get<double>()) : std::string();
        };
        // Published memory is in MB (KB / 1024, as the authors' code counts KB).
        auto mb_as_kb = [&](const char* k) {
          return p.contains(k) && p[k].is_number() ? absl::StrFormat("%.0f", p[k].get<double>() * 1024) : std::string("-");
        };
        const std::string memory = p.contains("memory_weight_mb") || p.contains("memory_act_mb_max")
                                       ? absl::StrCat(mb_as_kb("memory_weight_mb"), " / ", mb_as_kb("memory_act_mb_max"))
                                       : "";
        // Published weight size in MB of 2^20 bytes (HAWQ-V3's model zoo), shown in KiB.
        const std::string weights_kib = p.contains("weight_mb") && p["weight_mb"].is_number()
                                            ? absl::StrFormat("%.0f", p["weight_mb"].get<double>() * 1024)
                                            : std::string();
        rows.push_back({"paper", p.value("row", pr), tdata, num("top1", "%.2f"), num("bw_eff", "%.2f"),
                        num("ba_eff", "%.2f"), num("cc_gbitops", "%.1f"), num("bitops_g", "%.1f"), weights_kib, memory,
                        absl::StrCat("`", pr, "` (", p["source"].get<std::string>(), ")"), ""});
      }
      // The paper-setting reference for this row: an experiment on the paper's dataset.
      const Json* reference = nullptr;
      for (const Json& e : exps) {
        if (e.value("paper_row", "") == pr && !pr.empty() && e.value("dataset", "") == tdata) reference = &e;
      }
      for (const Json& e : exps) {
        if (e.value("paper_row", "") != pr) continue;
        const std::string name = e.value("name", "");
        const RunInfo* run = d.finished.count(name) ? d.finished[name] : nullptr;
        if (run == nullptr) {
          const RunInfo* any = d.latest.count(name) ? d.latest[name] : nullptr;
          rows.push_back({"ours", absl::StrCat("`", name, "`"), e.value("dataset", ""), "", "", "", "", "", "", "",
                          any ? absl::StrCat("run ", any->record.id, " (", any->record.status, ")") : "not run",
                          ""});
          continue;
        }
        const results::FinalResult& res = *run->result;
        std::vector<std::string> marks;
        if (!tdata.empty() && res.dataset != tdata) marks.push_back("substitute dataset");
        const int64_t subset = run->spec ? run->spec->train_subset : 0;
        bool reduced = run->EpochBudget() < budget_of[&e] || subset != e.value("train_subset", int64_t{0});
        if (reference != nullptr && reference != &e) {
          reduced = reduced || run->EpochBudget() < budget_of[reference] ||
                    (subset > 0 && reference->value("train_subset", int64_t{0}) == 0);
        }
        if (reduced) marks.push_back("reduced budget");
        rows.push_back({"ours", absl::StrCat("`", name, "` (", MethodOf(*run), ")"), res.dataset,
                        Fmt(res.test_top1, "%.2f"), Fmt(res.bw_eff, "%.2f"), Fmt(res.ba_eff, "%.2f"),
                        res.cc ? Opt(*res.cc / 1e9, "%.3g") : "", res.bitops ? Opt(*res.bitops / 1e9, "%.3g") : "",
                        res.weight_bytes ? Opt(*res.weight_bytes / 1024, "%.1f") : "",
                        res.memory_weight_kb ? absl::StrCat(Opt(*res.memory_weight_kb, "%.1f"), " / ",
                                                            res.memory_act_kb_max ? Opt(*res.memory_act_kb_max, "%.2f")
                                                                                  : std::string("-"))
                                             : "",
                        absl::StrCat("run ", run->record.id), absl::StrJoin(marks, ", ")});
      }
    }
    doc.Table(header, rows);
  }
  return absl::OkStatus();
}

// Test top-1 against BitOps and weight size, per network and dataset, with the Pareto front.
absl::Status ParetoSection(ReportData& d, Document& doc) {
  doc.Heading(2, "Accuracy vs cost");
  doc.Paragraph("Test top-1 of every finished run (the latest of each experiment) against BitOps and weight size, per network "
       "and dataset; iterative methods also show each stored point (line), and the black dashed line is the Pareto "
       "front over all of them.");
  for (auto& [key, members] : d.groups) {
    std::sort(members.begin(), members.end(),
              [](const RunInfo* a, const RunInfo* b) { return a->record.id < b->record.id; });
    for (const auto& [metric, label, scale, file] :
         std::vector<std::tuple<std::string, std::string, double, std::string>>{
             {"bitops", "BitOps (G)", 1e9, "pareto_bitops"}, {"weight_bytes", "weight size (KiB)", 1024, "pareto_size"}}) {
      Chart c;
      c.title = absl::StrCat(key.first, " on ", key.second, ": test top-1 vs ", label);
      c.x_label = label;
      c.y_label = "test top-1 (%)";
      c.log_x = true;
      std::vector<std::pair<double, double>> all;
      size_t color = 0;
      for (const RunInfo* r : members) {
        Series s;
        s.name = absl::StrCat(r->record.name, " (run ", r->record.id, ")");
        s.color = PaletteColor(color++);
        for (const Point& p : d.points_of[r->record.id]) {
          if (p.values.count(metric) && p.values.count("test_top1")) {
            s.points.emplace_back(p.values.at(metric) / scale, p.values.at("test_top1"));
          }
        }
        const std::optional<double> x = metric == "bitops" ? r->result->bitops : r->result->weight_bytes;
        if (s.points.size() <= 1 && x && r->result->test_top1) {
          s.points = {{*x / scale, *r->result->test_top1}};
        }
        s.line = s.points.size() > 1;
        s.marker = s.line ? 2.5 : 4.5;
        all.insert(all.end(), s.points.begin(), s.points.end());
        c.series.push_back(std::move(s));
      }
      // Pareto front: lowest cost for each accuracy level.
      std::sort(all.begin(), all.end());
      Series front;
      front.color = "#000000";
      front.line = true;
      front.dashed = true;
      front.marker = 0;
      front.name = "Pareto front";
      double best = -1e300;
      for (const auto& p : all) {
        if (p.second > best) {
          // Same cost, higher accuracy: the earlier point is dominated.
          if (!front.points.empty() && front.points.back().first == p.first) front.points.pop_back();
          front.points.push_back(p);
          best = p.second;
        }
      }
      if (front.points.size() > 1) c.series.push_back(front);
      doc.Figure(absl::StrCat(file, "_", Slug(key.first), "_", Slug(key.second), ".svg"), c.title, RenderChart(c));
    }
  }
  return absl::OkStatus();
}

// Every run beside each trajectory's point at no more BitOps.
absl::Status MatchedBitOpsSection(ReportData& d, Document& doc) {
  doc.Heading(2, "At matched BitOps");
  doc.Paragraph("Every finished run beside each iterative run (a method whose points are models: IMPQ, Uhlich et al.) "
       "of the same network and dataset whose trajectory spans its BitOps: the trajectory's point with the most "
       "BitOps not above the run's, so the iterative method is read at no more compute. Only runs with the same "
       "training budget are paired: the same training examples (`train_subset`) and the same epochs the method "
       "accounts for, within one (the allowance the leaderboard makes for sensitivity passes).");
  bool any_matched = false;
  for (auto& [key, members] : d.groups) {
    std::vector<std::vector<std::string>> rows;
    for (const RunInfo* t : members) {
      if (!t->spec || !t->spec->method->points_are_models) continue;
      std::vector<const Point*> usable;
      for (const Point& p : d.points_of[t->record.id]) {
        if (p.values.count("bitops") && p.values.count("test_top1")) usable.push_back(&p);
      }
      if (usable.size() < 2) continue;
      double lo = usable[0]->values.at("bitops"), hi = lo;
      for (const Point* p : usable) {
        lo = std::min(lo, p->values.at("bitops"));
        hi = std::max(hi, p->values.at("bitops"));
      }
      for (const RunInfo* r : members) {
        if (r == t || !r->result->bitops || !r->result->test_top1) continue;
        if (!r->spec || r->spec->train_subset != t->spec->train_subset ||
            std::abs(r->EpochBudget() - t->EpochBudget()) > 1) {
          continue;  // another training budget: not a matched comparison
        }
        const double b = *r->result->bitops;
        if (b < lo || b > hi) continue;
        const Point* best = nullptr;
        for (const Point* p : usable) {
          const double pb = p->values.at("bitops");
          if (pb <= b && (!best || pb > best->values.at("bitops"))) best = p;
        }
        auto bits = [](const std::optional<double>& w, const std::optional<double>& a) {
          return absl::StrCat(Fmt(w, "%.2f"), " / ", Fmt(a, "%.2f"));
        };
        auto value = [&](const char* k) -> std::optional<double> {
          if (!best->values.count(k)) return std::nullopt;
          return best->values.at(k);
        };
        const double pt = best->values.at("test_top1");
        rows.push_back({absl::StrFormat("`%s` (run %d)", r->record.name, r->record.id), MethodOf(*r),
                        Opt(b / 1e9, "%.3f"), bits(r->result->bw_eff, r->result->ba_eff),
                        Opt(*r->result->test_top1, "%.2f"),
                        absl::StrFormat("`%s` (run %d) point %d", t->record.name, t->record.id, best->index),
                        Opt(best->values.at("bitops") / 1e9, "%.3f"), bits(value("bw_eff"), value("ba_eff")),
                        Opt(pt, "%.2f"), Opt(pt - *r->result->test_top1, "%+.2f")});
      }
    }
    if (rows.empty()) continue;
    any_matched = true;
    doc.Heading(3, absl::StrCat(key.first, " on ", key.second));
    doc.Table({"run", "method", "GBitOps", "B_w,eff / B_a,eff", "test top-1", "iterative run at <= its BitOps",
           "GBitOps", "B_w,eff / B_a,eff", "test top-1", "difference"},
          std::move(rows));
  }
  if (!any_matched) doc.Paragraph("No finished run lies within an iterative run's BitOps range yet.");
  return absl::OkStatus();
}

// Per-layer bits of the final allocation of every run whose method chooses bits.
absl::Status BitMapSection(ReportData& d, Document& doc) {
  doc.Heading(2, "Bit-width maps");
  doc.Paragraph("Per-layer weight bits of the final allocation of every finished run that is not uniform (rows = layers in "
       "network order; a layer-wise group fills its row, kernel-wise groups are one cell per output channel), and "
       "the per-layer summary.");
  int maps = 0;
  for (const auto& [name, r] : d.finished) {
    if (!r->spec || !r->spec->method->chooses_bits) continue;
    absl::StatusOr<std::vector<int64_t>> its = d.store->ListAllocationIterations(r->record.id);
    if (!its.ok()) return its.status();
    if (its->empty()) continue;
    const int64_t final_point = r->extra.value(names::kExtraFinalPoint, its->back());
    absl::StatusOr<std::vector<results::GroupBits>> a = d.store->GetAllocation(r->record.id, final_point);
    if (!a.ok()) return a.status();
    std::vector<BitMapRow> map_rows;
    std::vector<std::vector<std::string>> summary;
    for (const results::GroupBits& g : *a) {
      const std::string label = g.is_weight ? g.layer : g.layer + " (act)";
      if (map_rows.empty() || map_rows.back().label != label) map_rows.push_back({label, {}});
      map_rows.back().bits.push_back(g.bits);
    }
    for (const BitMapRow& row : map_rows) {
      const auto [mn, mx] = std::minmax_element(row.bits.begin(), row.bits.end());
      double mean = 0;
      for (int64_t b : row.bits) mean += b;
      mean /= row.bits.size();
      summary.push_back({absl::StrCat("`", row.label, "`"), absl::StrCat(row.bits.size()), absl::StrCat(*mn),
                         absl::StrFormat("%.2f", mean), absl::StrCat(*mx)});
    }
    doc.Heading(3, absl::StrFormat("`%s`, run %d, point %d", name, r->record.id, final_point));
    doc.Figure(absl::StrFormat("bitmap_run%d.svg", r->record.id),
           absl::StrFormat("weight and activation bits of run %d at point %d", r->record.id, final_point),
           RenderBitMap(absl::StrFormat("%s (run %d), point %d", name, r->record.id, final_point), map_rows));
    doc.Table({"layer", "groups", "min bits", "mean bits", "max bits"}, summary);
    ++maps;
  }
  if (maps == 0) doc.Paragraph("No finished mixed-precision run yet (uniform runs have every group at the spec's bits).");
  return absl::OkStatus();
}

// Accuracy and cost at every point of runs with more than one point.
absl::Status TrajectorySection(ReportData& d, Document& doc) {
  doc.Heading(2, "Iterative methods: accuracy vs bits");
  int trajectories = 0;
  for (const auto& [name, r] : d.finished) {
    const std::vector<Point>& pts = d.points_of[r->record.id];
    if (pts.size() < 2) continue;
    doc.Heading(3, absl::StrFormat("`%s`, run %d", name, r->record.id));
    std::vector<std::vector<std::string>> rows;
    Chart c;
    c.title = absl::StrFormat("%s (run %d): top-1 vs B_w,eff", name, r->record.id);
    c.x_label = "B_w,eff (bits)";
    c.y_label = "top-1 (%)";
    Series val{"validation", PaletteColor(0), {}, true}, test{"test", PaletteColor(1), {}, true};
    auto v = [](const Point& p, const char* k, const char* f) {
      return p.values.count(k) ? absl::StrFormat(f, p.values.at(k)) : std::string();
    };
    for (const Point& p : pts) {
      rows.push_back({absl::StrCat(p.index), v(p, "val_top1", "%.2f"), v(p, "test_top1", "%.2f"),
                      v(p, "bw_eff", "%.3f"), v(p, "ba_eff", "%.3f"),
                      p.values.count("cc") ? absl::StrFormat("%.4g", p.values.at("cc") / 1e9) : "",
                      v(p, "compression_ratio", "%.2f"), v(p, names::kMemoryWeightKb, "%.1f"),
                      v(p, names::kMemoryActKbMax, "%.2f"), v(p, names::kMemoryActKbSum, "%.1f")});
      if (p.values.count("bw_eff") && p.values.count("val_top1")) val.points.emplace_back(p.values.at("bw_eff"), p.values.at("val_top1"));
      if (p.values.count("bw_eff") && p.values.count("test_top1")) test.points.emplace_back(p.values.at("bw_eff"), p.values.at("test_top1"));
    }
    c.series = {val, test};
    doc.Figure(absl::StrFormat("trajectory_run%d.svg", r->record.id), c.title, RenderChart(c));
    doc.Table({"point", "val top-1", "test top-1", "B_w,eff", "B_a,eff", "C_C (Gbit-OPs)", "CR", "memory W (KB)",
               "A max (KB)", "A sum (KB)"},
              rows);
    if (r->extra.contains(names::kExtraAllocatorDetails) &&
        r->extra[names::kExtraAllocatorDetails].contains(names::kDetailsStopReason)) {
      doc.Paragraph(absl::StrCat("Stopped: ", r->extra[names::kExtraAllocatorDetails][names::kDetailsStopReason].get<std::string>(),
                        "."));
    }
    ++trajectories;
  }
  if (trajectories == 0) doc.Paragraph("No finished run with more than one point yet.");
  return absl::OkStatus();
}

// A differentiable search's expected bits per layer by search epoch.
absl::Status SoftArchitectureSection(ReportData& d, Document& doc) {
  doc.Heading(2, "Differentiable search: soft architecture by epoch");
  int searches = 0;
  for (const auto& [name, r] : d.finished) {
    // alpha:<layer>:w<b> / a<b> = softmax probability of candidate b at search epoch (step).
    std::map<std::string, std::map<int64_t, std::pair<double, double>>> expected;  // layer -> epoch -> (E[b_w], E[b_a])
    std::set<int64_t> epochs;
    for (const results::Metric& m : d.metrics_of[r->record.id]) {
      std::string layer;
      bool is_weight = false;
      int64_t bits = 0;
      if (!names::ParseAlphaMetric(m.name, &layer, &is_weight, &bits)) continue;
      const char kind = is_weight ? 'w' : 'a';
      auto& cell = expected[layer][m.step];
      (kind == 'w' ? cell.first : cell.second) += bits * m.value;
      epochs.insert(m.step);
    }
    if (expected.empty()) continue;
    doc.Heading(3, absl::StrFormat("`%s`, run %d", name, r->record.id));
    doc.Paragraph("Expected bits E[b] = sum_i softmax(alpha)_i b_i per searched layer after each search epoch, weights / "
         "activations (the activation entry is the layer's input quantizer).");
    std::vector<std::string> head = {"layer"};
    for (int64_t e : epochs) head.push_back(absl::StrCat("epoch ", e));
    std::vector<std::vector<std::string>> rows;
    std::map<std::string, std::map<int64_t, std::pair<double, double>>> merged;
    std::vector<std::string> order;
    for (const auto& [layer, by_epoch] : expected) {
      const size_t dot = layer.rfind('.');
      const std::string unit = dot == std::string::npos ? layer : layer.substr(0, dot);
      if (!merged.count(unit)) order.push_back(unit);
      for (const auto& [e, wa] : by_epoch) {
        merged[unit][e].first += wa.first;
        merged[unit][e].second += wa.second;
      }
    }
    for (const std::string& unit : order) {
      std::vector<std::string> row = {absl::StrCat("`", unit, "`")};
      for (int64_t e : epochs) {
        const auto& wa = merged[unit][e];
        row.push_back(absl::StrFormat("%.2f / %.2f", wa.first, wa.second));
      }
      rows.push_back(std::move(row));
    }
    doc.Table(head, rows);
    ++searches;
  }
  if (searches == 0) doc.Paragraph("No finished run with a differentiable search yet.");
  return absl::OkStatus();
}

// Validation top-1 by epoch, per network and dataset.
absl::Status TrainingCurvesSection(ReportData& d, Document& doc) {
  doc.Heading(2, "Training curves");
  for (auto& [key, members] : d.groups) {
    Chart c;
    c.title = absl::StrCat(key.first, " on ", key.second, ": validation top-1 by epoch");
    c.x_label = "epoch";
    c.y_label = "validation top-1 (%)";
    size_t color = 0;
    for (const RunInfo* r : members) {
      Series s;
      s.name = absl::StrCat(r->record.name, " (run ", r->record.id, ")");
      s.color = PaletteColor(color++);
      s.line = true;
      s.marker = 2;
      std::map<double, double> by_epoch;  // a resumed epoch written twice keeps the last
      for (const results::Metric& m : d.metrics_of[r->record.id]) {
        if (m.name == names::kValTop1) by_epoch[m.epoch] = m.value;
      }
      for (const auto& [e, val] : by_epoch) s.points.emplace_back(e, val);
      if (!s.points.empty()) c.series.push_back(std::move(s));
    }
    doc.Figure(absl::StrCat("curves_", Slug(key.first), "_", Slug(key.second), ".svg"), c.title, RenderChart(c));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Report> BuildReport(const ReportInputs& in) {
  ReportData d;
  if (absl::Status s = LoadReportData(in, d); !s.ok()) return s;
  Document doc;
  for (const auto& section : {OverviewSection, PaperTablesSection, LeaderboardsSection}) {
    if (absl::Status s = section(d, in, doc); !s.ok()) return s;
  }
  for (const auto& section : {ParetoSection, MatchedBitOpsSection, BitMapSection, TrajectorySection,
                              SoftArchitectureSection, TrainingCurvesSection}) {
    if (absl::Status s = section(d, doc); !s.ok()) return s;
  }
  Report report;
  report.markdown = doc.ToMarkdown();
  report.html = doc.ToHtml("mpqbench report");
  report.figures = doc.figures();
  return report;
}

absl::Status WriteReport(const Report& report, const std::string& out_dir) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("report: cannot create ", out_dir, ": ", ec.message()));
  std::vector<std::pair<std::string, std::string>> files = report.figures;
  files.emplace_back("report.md", report.markdown);
  files.emplace_back("report.html", report.html);
  for (const auto& [name, content] : files) {
    if (absl::Status s = runtime::WriteFileAtomically(out_dir + "/" + name, content); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("report: ", s.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace mpq::reports
