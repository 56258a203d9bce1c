#include "results/snapshot.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/runtime/atomic_file.h"
#include "nlohmann/json.hpp"

namespace mpq::results {
namespace {

using Json = nlohmann::json;

// Text that is canonical JSON (what nlohmann writes: sorted keys, no spaces) goes in as
// an object under `object_key`, so that the file shows its fields; anything else as a
// string under `string_key`, so that import gives back the same bytes either way.
void Embed(Json& into, const std::string& text, const char* object_key, const char* string_key) {
  try {
    Json parsed = Json::parse(text);
    if (parsed.dump() == text) {
      into[object_key] = std::move(parsed);
      return;
    }
  } catch (const Json::exception&) {
  }
  into[string_key] = text;
}

Json Optional(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

// The result's columns, in the order of the results table.
const char* const kResultFields[] = {"test_top1",     "test_top5",        "val_top1",         "bitops",
                                     "cc",            "weight_bytes",     "act_bytes_sum",    "act_bytes_max",
                                     "bw_eff",        "ba_eff",           "compression_ratio", "memory_weight_kb",
                                     "memory_act_kb_max", "memory_act_kb_sum"};

std::optional<double>* ResultField(FinalResult& r, const std::string& name) {
  if (name == "test_top1") return &r.test_top1;
  if (name == "test_top5") return &r.test_top5;
  if (name == "val_top1") return &r.val_top1;
  if (name == "bitops") return &r.bitops;
  if (name == "cc") return &r.cc;
  if (name == "weight_bytes") return &r.weight_bytes;
  if (name == "act_bytes_sum") return &r.act_bytes_sum;
  if (name == "act_bytes_max") return &r.act_bytes_max;
  if (name == "bw_eff") return &r.bw_eff;
  if (name == "ba_eff") return &r.ba_eff;
  if (name == "compression_ratio") return &r.compression_ratio;
  if (name == "memory_weight_kb") return &r.memory_weight_kb;
  if (name == "memory_act_kb_max") return &r.memory_act_kb_max;
  if (name == "memory_act_kb_sum") return &r.memory_act_kb_sum;
  return nullptr;
}

Json RunHeader(const RunRecord& r) {
  Json h = Json::object();
  h["id"] = r.id;
  h["name"] = r.name;
  Embed(h, r.spec_json, "spec", "spec_json");
  h["spec_hash"] = r.spec_hash;
  h["code_version"] = r.code_version;
  h["seed"] = r.seed;
  h["host"] = r.host;
  h["device"] = r.device;
  h["status"] = r.status;
  h["error"] = r.error;
  h["created_at"] = r.created_at;
  h["finished_at"] = Optional(r.finished_at);
  h["data_fingerprint"] = r.data_fingerprint;
  return h;
}

Json ResultObject(const FinalResult& f) {
  Json o = Json::object();
  o["dataset"] = f.dataset;
  FinalResult copy = f;
  for (const char* name : kResultFields) o[name] = Optional(*ResultField(copy, name));
  Embed(o, f.extra_json, "extra", "extra_json");
  return o;
}

// ------------------------------------------------------------------ parsing

// Errors name the source, the run's position and id, and the field.
class Reader {
 public:
  explicit Reader(std::string where) : where_(std::move(where)) {}
  absl::Status Error(const std::string& field, const std::string& problem) const {
    return absl::InvalidArgumentError(absl::StrCat(where_, ": ", field, ": ", problem));
  }
  template <typename T>
  absl::Status Get(const Json& o, const std::string& key, T& out, bool required = true) const {
    if (!o.contains(key)) return required ? Error(key, "missing") : absl::OkStatus();
    const Json& v = o[key];
    try {
      if constexpr (std::is_same_v<T, std::string>) {
        if (!v.is_string()) return Error(key, absl::StrCat("expected a string, got ", v.dump()));
      } else if constexpr (std::is_same_v<T, double>) {
        if (!v.is_number()) return Error(key, absl::StrCat("expected a number, got ", v.dump()));
      } else {
        if (!v.is_number_integer()) return Error(key, absl::StrCat("expected an integer, got ", v.dump()));
      }
      out = v.get<T>();
    } catch (const Json::exception& e) {
      return Error(key, e.what());
    }
    return absl::OkStatus();
  }
  absl::Status GetOptional(const Json& o, const std::string& key, std::optional<double>& out) const {
    if (!o.contains(key) || o[key].is_null()) {
      out.reset();
      return absl::OkStatus();
    }
    double v = 0;
    if (absl::Status s = Get(o, key, v); !s.ok()) return s;
    out = v;
    return absl::OkStatus();
  }
  // `object_key` (JSON, stored as its canonical text) or `string_key` (text as is).
  absl::Status GetEmbedded(const Json& o, const char* object_key, const char* string_key, std::string& out,
                           const std::string& fallback) const {
    if (o.contains(object_key)) {
      out = o[object_key].dump();
      return absl::OkStatus();
    }
    if (o.contains(string_key)) return Get(o, string_key, out);
    if (fallback.empty()) return Error(object_key, "missing");
    out = fallback;
    return absl::OkStatus();
  }

 private:
  std::string where_;
};

// Does `row` have one element per letter of `types` (s string, i integer, n number)?
bool RowMatches(const Json& row, const std::string& types) {
  if (!row.is_array() || row.size() != types.size()) return false;
  for (size_t i = 0; i < types.size(); ++i) {
    const Json& v = row[i];
    if ((types[i] == 's' && !v.is_string()) || (types[i] == 'i' && !v.is_number_integer()) ||
        (types[i] == 'n' && !v.is_number())) {
      return false;
    }
  }
  return true;
}

// Each row of the optional array `j[key]`, checked against `types` (RowMatches), given to
// take(row, "key[k]").
template <typename Take>
absl::Status ReadRows(const Reader& rd, const Json& j, const char* key, const std::string& types, const char* shape,
                      Take take) {
  if (!j.contains(key)) return absl::OkStatus();
  if (!j[key].is_array()) return rd.Error(key, "expected an array");
  int64_t k = 0;
  for (const Json& row : j[key]) {
    const std::string field = absl::StrCat(key, "[", k++, "]");
    if (!RowMatches(row, types)) return rd.Error(field, absl::StrCat("expected ", shape, ", got ", row.dump()));
    if (absl::Status s = take(row, field); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<RunExport> ParseRun(const Json& j, const std::string& where) {
  Reader rd(where);
  if (!j.is_object()) return rd.Error("run", "expected an object");
  RunExport out;
  if (!j.contains("run") || !j["run"].is_object()) return rd.Error("run", "missing, or not an object");
  const Json& h = j["run"];
  RunRecord& r = out.run;
  for (absl::Status s : {rd.Get(h, "id", r.id), rd.Get(h, "name", r.name), rd.Get(h, "spec_hash", r.spec_hash),
                         rd.Get(h, "code_version", r.code_version), rd.Get(h, "seed", r.seed),
                         rd.Get(h, "host", r.host), rd.Get(h, "device", r.device), rd.Get(h, "status", r.status),
                         rd.Get(h, "error", r.error, false), rd.Get(h, "created_at", r.created_at),
                         rd.GetOptional(h, "finished_at", r.finished_at),
                         rd.Get(h, "data_fingerprint", r.data_fingerprint, false),
                         rd.GetEmbedded(h, "spec", "spec_json", r.spec_json, "")}) {
    if (!s.ok()) return s;
  }
  if (r.status != "finished") return rd.Error("run.status", "'" + r.status + "'; a snapshot holds finished runs only");
  if (!j.contains("result") || !j["result"].is_object()) return rd.Error("result", "missing, or not an object");
  const Json& res = j["result"];
  FinalResult f;
  if (absl::Status s = rd.Get(res, "dataset", f.dataset); !s.ok()) return s;
  for (const char* name : kResultFields) {
    if (absl::Status s = rd.GetOptional(res, name, *ResultField(f, name)); !s.ok()) return s;
  }
  if (absl::Status s = rd.GetEmbedded(res, "extra", "extra_json", f.extra_json, "{}"); !s.ok()) return s;
  out.result = f;

  absl::Status rows = ReadRows(rd, j, "metrics", "sinnn", "[name, step, epoch, value, wall time]",
                                [&](const Json& m, const std::string&) -> absl::Status {
                                  out.metrics.push_back({{m[1].get<int64_t>(), m[2].get<double>(),
                                                          m[0].get<std::string>(), m[3].get<double>()},
                                                         m[4].get<double>()});
                                  return absl::OkStatus();
                                });
  if (!rows.ok()) return rows;
  rows = ReadRows(rd, j, "allocations", "issii", "[iteration, layer, kind, group, bits]",
                  [&](const Json& a, const std::string& field) -> absl::Status {
                    const std::string kind = a[2].get<std::string>();
                    if (kind != "weight" && kind != "activation") {
                      return rd.Error(field, absl::StrCat("kind '", kind, "'; expected weight or activation"));
                    }
                    const int64_t bits = a[4].get<int64_t>();
                    if (bits < 1 || bits > 32) return rd.Error(field, absl::StrCat(bits, " bits; expected 1..32"));
                    const int64_t iteration = a[0].get<int64_t>();
                    if (out.allocations.empty() || out.allocations.back().first != iteration) {
                      if (!out.allocations.empty() && out.allocations.back().first > iteration) {
                        return rd.Error(field, absl::StrCat("iteration ", iteration, " after ",
                                                            out.allocations.back().first,
                                                            "; expected ascending iterations"));
                      }
                      out.allocations.emplace_back(iteration, std::vector<GroupBits>());
                    }
                    out.allocations.back().second.push_back(
                        {a[1].get<std::string>(), kind == "weight", a[3].get<int64_t>(), bits});
                    return absl::OkStatus();
                  });
  if (!rows.ok()) return rows;
  return out;
}

}  // namespace

absl::StatusOr<std::string> ExportSnapshot(ResultStore& store, int* runs_written) {
  absl::StatusOr<std::vector<RunRecord>> runs = store.ListRuns();
  if (!runs.ok()) return runs.status();
  std::vector<RunExport> finished;
  for (const RunRecord& r : *runs) {
    if (r.status != "finished") continue;
    absl::StatusOr<RunExport> e = store.ExportRun(r.id);
    if (!e.ok()) return e.status();
    if (e->result) finished.push_back(std::move(*e));
  }
  if (runs_written) *runs_written = static_cast<int>(finished.size());
  std::stable_sort(finished.begin(), finished.end(), [](const RunExport& a, const RunExport& b) {
    return std::tie(a.run.created_at, a.run.spec_hash) < std::tie(b.run.created_at, b.run.spec_hash);
  });
  std::string out = absl::StrCat("{\"format\": \"", kSnapshotFormat, "\", \"version\": ", kSnapshotVersion,
                                 ", \"runs\": [\n");
  for (size_t i = 0; i < finished.size(); ++i) {
    const RunExport& e = finished[i];
    absl::StrAppend(&out, "{\"run\": ", RunHeader(e.run).dump(), ",\n \"result\": ", ResultObject(*e.result).dump(),
                    ",\n \"metrics\": [");
    for (size_t k = 0; k < e.metrics.size(); ++k) {
      const RunExport::TimedMetric& m = e.metrics[k];
      const Json row = {m.metric.name, m.metric.step, m.metric.epoch, m.metric.value, m.wall_time};
      absl::StrAppend(&out, k ? ",\n  " : "\n  ", row.dump());
    }
    absl::StrAppend(&out, "],\n \"allocations\": [");
    bool first = true;
    for (const auto& [iteration, groups] : e.allocations) {
      for (const GroupBits& g : groups) {
        const Json row = {iteration, g.layer, g.is_weight ? "weight" : "activation", g.group, g.bits};
        absl::StrAppend(&out, first ? "\n  " : ",\n  ", row.dump());
        first = false;
      }
    }
    absl::StrAppend(&out, "]}", i + 1 < finished.size() ? ",\n" : "\n");
  }
  absl::StrAppend(&out, "]}\n");
  return out;
}

absl::Status ExportSnapshotFile(ResultStore& store, const std::string& path, int* runs_written) {
  absl::StatusOr<std::string> text = ExportSnapshot(store, runs_written);
  if (!text.ok()) return text.status();
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::absolute(path, ec).parent_path();
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("export: cannot create ", dir.string(), ": ", ec.message()));
  return runtime::WriteFileAtomically(path, *text);
}

absl::StatusOr<std::vector<RunExport>> ParseSnapshot(const std::string& text, const std::string& source) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("snapshot ", source, " is not valid JSON: ", e.what()));
  }
  if (!j.is_object() || !j.contains("format") || j["format"] != kSnapshotFormat) {
    return absl::InvalidArgumentError(absl::StrCat("snapshot ", source, ": \"format\" is not \"", kSnapshotFormat,
                                                   "\"; not a results snapshot (write one with query export)"));
  }
  if (!j.contains("version") || !j["version"].is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat("snapshot ", source, ": \"version\" missing or not an integer"));
  }
  if (j["version"].get<int64_t>() > kSnapshotVersion) {
    return absl::FailedPreconditionError(absl::StrCat("snapshot ", source, ": version ", j["version"].dump(),
                                                      " is newer than this build reads (", kSnapshotVersion,
                                                      "); use a newer mpqbench"));
  }
  if (!j.contains("runs") || !j["runs"].is_array()) {
    return absl::InvalidArgumentError(absl::StrCat("snapshot ", source, ": \"runs\" missing or not an array"));
  }
  std::vector<RunExport> runs;
  for (size_t i = 0; i < j["runs"].size(); ++i) {
    const Json& r = j["runs"][i];
    std::string where = absl::StrCat("snapshot ", source, ": runs[", i, "]");
    if (r.is_object() && r.contains("run") && r["run"].is_object() && r["run"].contains("id")) {
      absl::StrAppend(&where, " (run ", r["run"]["id"].dump(), ")");
    }
    absl::StatusOr<RunExport> e = ParseRun(r, where);
    if (!e.ok()) return e.status();
    runs.push_back(std::move(*e));
  }
  return runs;
}

absl::StatusOr<SnapshotImport> ImportSnapshot(ResultStore& store, const std::string& text, const std::string& source) {
  absl::StatusOr<std::vector<RunExport>> runs = ParseSnapshot(text, source);
  if (!runs.ok()) return runs.status();
  SnapshotImport out;
  for (const RunExport& r : *runs) {
    absl::StatusOr<ImportResult> i = store.ImportRun(r);
    if (!i.ok()) return absl::Status(i.status().code(), absl::StrCat("snapshot ", source, ": ", i.status().message()));
    switch (i->outcome) {
      case ImportOutcome::kInserted: ++out.inserted; break;
      case ImportOutcome::kUpdated: ++out.updated; break;
      case ImportOutcome::kAlreadyPresent: ++out.already_present; break;
    }
  }
  return out;
}

absl::StatusOr<SnapshotImport> MergeDatabase(ResultStore& into, ResultStore& shard, const MergeFilter& filter) {
  absl::StatusOr<std::vector<RunRecord>> runs = shard.ListRuns();
  if (!runs.ok()) return runs.status();
  SnapshotImport out;
  for (const RunRecord& r : *runs) {
    if (filter.finished_only && r.status != "finished") continue;
    if (!filter.names.empty() && std::find(filter.names.begin(), filter.names.end(), r.name) == filter.names.end()) continue;
    absl::StatusOr<RunExport> e = shard.ExportRun(r.id);
    if (!e.ok()) return e.status();
    absl::StatusOr<ImportResult> i = into.ImportRun(*e, /*unfinished=*/true);
    if (!i.ok()) return absl::Status(i.status().code(), absl::StrCat("merge ", shard.path(), ": ", i.status().message()));
    switch (i->outcome) {
      case ImportOutcome::kInserted: ++out.inserted; break;
      case ImportOutcome::kUpdated: ++out.updated; break;
      case ImportOutcome::kAlreadyPresent: ++out.already_present; break;
    }
  }
  return out;
}

absl::StatusOr<SnapshotImport> ImportSnapshotFile(ResultStore& store, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("snapshot ", path, ": cannot read it (missing or unreadable)"));
  std::stringstream text;
  text << in.rdbuf();
  return ImportSnapshot(store, text.str(), path);
}

}  // namespace mpq::results
