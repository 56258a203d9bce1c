#include "experiments/spec.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "datasets/registry.h"
#include "lib/alloc/schedule.h"
#include "lib/models/registry.h"

namespace mpq::experiments {
namespace {

using Json = nlohmann::json;

const std::vector<std::string> kWeightQuantizers = {"none", "lin", "dorefa", "lsq", "hwgq", "uhlich"};
const std::vector<std::string> kActQuantizers = {"none", "dorefa", "pact", "lsq", "hwgq", "uhlich"};

Json ToJson(const ExperimentSpec& s) {
  return Json{{"name", s.name},
              {"model", s.model},
              {"dataset", s.dataset},
              {"data_dir", s.data_dir},
              {"image_size", s.image_size},
              {"method", s.method},
              {"weight_quantizer", s.weight_quantizer},
              {"granularity", s.granularity},
              {"weight_bits", s.weight_bits},
              {"act_quantizer", s.act_quantizer},
              {"act_bits", s.act_bits},
              {"quantize_first_and_last", s.quantize_first_and_last},
              {"epochs", s.epochs},
              {"batch_size", s.batch_size},
              {"optimizer", s.optimizer},
              {"lr", s.lr},
              {"momentum", s.momentum},
              {"weight_decay", s.weight_decay},
              {"schedule", s.schedule},
              {"warmup_epochs", s.warmup_epochs},
              {"validation_fraction", s.validation_fraction},
              {"train_subset", s.train_subset},
              {"seed", s.seed},
              {"paper_row", s.paper_row},
              {"impq_metric", s.impq_metric},
              {"impq_eval_top", s.impq_eval_top},
              {"impq_eval_fraction", s.impq_eval_fraction},
              {"impq_weight_schedule", s.impq_weight_schedule},
              {"impq_act_schedule", s.impq_act_schedule},
              {"impq_max_iterations", s.impq_max_iterations},
              {"impq_finetune_epochs", s.impq_finetune_epochs},
              {"impq_finetune_lr", s.impq_finetune_lr},
              {"impq_finetune_warmup_epochs", s.impq_finetune_warmup_epochs},
              {"impq_target_bw_eff", s.impq_target_bw_eff},
              {"impq_target_cc_gbitops", s.impq_target_cc_gbitops},
              {"impq_max_val_drop", s.impq_max_val_drop},
              {"impq_min_weight_bits", s.impq_min_weight_bits},
              {"impq_min_act_bits", s.impq_min_act_bits},
              {"edmips_cd", s.edmips_cd},
              {"edmips_search_epochs", s.edmips_search_epochs},
              {"edmips_search_step_size", s.edmips_search_step_size},
              {"edmips_arch_lr", s.edmips_arch_lr},
              {"edmips_weight_candidates", s.edmips_weight_candidates},
              {"edmips_act_candidates", s.edmips_act_candidates},
              {"edmips_discretize", s.edmips_discretize},
              {"edmips_alternate", s.edmips_alternate}};
}

absl::Status Invalid(const std::string& source, const std::string& key, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": \"", key, "\": ", what));
}

absl::Status OneOf(const std::string& source, const std::string& key, const std::string& value,
                   const std::vector<std::string>& valid) {
  for (const std::string& v : valid) {
    if (v == value) return absl::OkStatus();
  }
  return Invalid(source, key, absl::StrCat("'", value, "' is not one of ", absl::StrJoin(valid, ", ")));
}

absl::Status Bits(const std::string& source, const std::string& key, int64_t bits) {
  if (bits == 32 || (bits >= 1 && bits <= 16)) return absl::OkStatus();
  return Invalid(source, key, absl::StrCat(bits, " is out of range; expected 1..16 or 32 (full precision)"));
}

}  // namespace

absl::StatusOr<ExperimentSpec> ParseSpec(const std::string& json_text, const std::string& source) {
  Json j;
  try {
    j = Json::parse(json_text);
  } catch (const Json::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON: ", e.what()));
  }
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(source, ": the spec must be a JSON object"));
  ExperimentSpec s;
  const Json defaults = ToJson(s);
  std::vector<std::string> valid_keys;
  for (const auto& item : defaults.items()) valid_keys.push_back(item.key());
  for (const auto& item : j.items()) {
    if (!defaults.contains(item.key())) {
      return Invalid(source, item.key(), absl::StrCat("unknown key; valid keys: ", absl::StrJoin(valid_keys, ", ")));
    }
    const Json& want = defaults[item.key()];
    const Json& got = item.value();
    const bool same_kind = (want.is_string() && got.is_string()) || (want.is_boolean() && got.is_boolean()) ||
                           (want.is_number_integer() && got.is_number_integer()) ||
                           (want.is_number_float() && got.is_number());
    if (!same_kind) {
      return Invalid(source, item.key(), absl::StrCat("expected a ", want.type_name(), ", got ", got.dump()));
    }
  }
  Json merged = defaults;
  merged.update(j);
  s.name = merged["name"];
  s.model = merged["model"];
  s.dataset = merged["dataset"];
  s.data_dir = merged["data_dir"];
  s.image_size = merged["image_size"];
  s.method = merged["method"];
  s.weight_quantizer = merged["weight_quantizer"];
  s.granularity = merged["granularity"];
  s.weight_bits = merged["weight_bits"];
  s.act_quantizer = merged["act_quantizer"];
  s.act_bits = merged["act_bits"];
  s.quantize_first_and_last = merged["quantize_first_and_last"];
  s.epochs = merged["epochs"];
  s.batch_size = merged["batch_size"];
  s.optimizer = merged["optimizer"];
  s.lr = merged["lr"];
  s.momentum = merged["momentum"];
  s.weight_decay = merged["weight_decay"];
  s.schedule = merged["schedule"];
  s.warmup_epochs = merged["warmup_epochs"];
  s.validation_fraction = merged["validation_fraction"];
  s.train_subset = merged["train_subset"];
  s.seed = merged["seed"];
  s.paper_row = merged["paper_row"];
  s.impq_metric = merged["impq_metric"];
  s.impq_eval_top = merged["impq_eval_top"];
  s.impq_eval_fraction = merged["impq_eval_fraction"];
  s.impq_weight_schedule = merged["impq_weight_schedule"];
  s.impq_act_schedule = merged["impq_act_schedule"];
  s.impq_max_iterations = merged["impq_max_iterations"];
  s.impq_finetune_epochs = merged["impq_finetune_epochs"];
  s.impq_finetune_lr = merged["impq_finetune_lr"];
  s.impq_finetune_warmup_epochs = merged["impq_finetune_warmup_epochs"];
  s.impq_target_bw_eff = merged["impq_target_bw_eff"];
  s.impq_target_cc_gbitops = merged["impq_target_cc_gbitops"];
  s.impq_max_val_drop = merged["impq_max_val_drop"];
  s.impq_min_weight_bits = merged["impq_min_weight_bits"];
  s.impq_min_act_bits = merged["impq_min_act_bits"];
  s.edmips_cd = merged["edmips_cd"];
  s.edmips_search_epochs = merged["edmips_search_epochs"];
  s.edmips_search_step_size = merged["edmips_search_step_size"];
  s.edmips_arch_lr = merged["edmips_arch_lr"];
  s.edmips_weight_candidates = merged["edmips_weight_candidates"];
  s.edmips_act_candidates = merged["edmips_act_candidates"];
  s.edmips_discretize = merged["edmips_discretize"];
  s.edmips_alternate = merged["edmips_alternate"];

  if (s.name.empty()) return Invalid(source, "name", "required");
  if (absl::StatusOr<const models::ModelEntry*> m = models::FindModel(s.model); !m.ok()) {
    return Invalid(source, "model", std::string(m.status().message()));
  }
  if (absl::StatusOr<const data::DatasetEntry*> d = data::FindDataset(s.dataset); !d.ok()) {
    return Invalid(source, "dataset", std::string(d.status().message()));
  }
  if (absl::Status st = OneOf(source, "method", s.method, {"uniform", "impq", "edmips"}); !st.ok()) return st;
  if (absl::Status st = OneOf(source, "weight_quantizer", s.weight_quantizer, kWeightQuantizers); !st.ok()) return st;
  if (absl::Status st = OneOf(source, "act_quantizer", s.act_quantizer, kActQuantizers); !st.ok()) return st;
  if (absl::Status st = OneOf(source, "granularity", s.granularity, {"per_channel", "per_tensor"}); !st.ok()) return st;
  if (absl::Status st = OneOf(source, "optimizer", s.optimizer, {"sgd", "adam"}); !st.ok()) return st;
  if (absl::Status st = OneOf(source, "schedule", s.schedule, {"constant", "step", "multistep", "cosine"}); !st.ok()) {
    return st;
  }
  if (absl::Status st = Bits(source, "weight_bits", s.weight_bits); !st.ok()) return st;
  if (absl::Status st = Bits(source, "act_bits", s.act_bits); !st.ok()) return st;
  if (s.epochs <= 0) return Invalid(source, "epochs", absl::StrCat(s.epochs, " must be > 0"));
  if (s.batch_size <= 0) return Invalid(source, "batch_size", absl::StrCat(s.batch_size, " must be > 0"));
  if (!(s.lr > 0)) return Invalid(source, "lr", absl::StrCat(s.lr, " must be > 0"));
  if (s.warmup_epochs < 0 || s.warmup_epochs > s.epochs) {
    return Invalid(source, "warmup_epochs", absl::StrCat(s.warmup_epochs, " must be in [0, epochs]"));
  }
  if (!(s.validation_fraction >= 0 && s.validation_fraction < 1)) {
    return Invalid(source, "validation_fraction", absl::StrCat(s.validation_fraction, " must be in [0, 1)"));
  }
  if (s.image_size <= 0 || s.train_subset < 0) {
    return Invalid(source, "image_size", "image_size must be > 0 and train_subset >= 0");
  }
  if (absl::Status st = OneOf(source, "impq_metric", s.impq_metric, {"paper", "code"}); !st.ok()) return st;
  for (const char* key : {"impq_weight_schedule", "impq_act_schedule"}) {
    if (absl::StatusOr<alloc::Schedule> sched = alloc::ParseSchedule(merged[key].get<std::string>()); !sched.ok()) {
      return Invalid(source, key, std::string(sched.status().message()));
    }
  }
  if (s.method == "impq") {
    if (s.weight_quantizer == "none" || s.weight_bits == 32) {
      return Invalid(source, "weight_bits",
                     "impq starts from a quantized model: set weight_quantizer and weight_bits (e.g. lin, 4)");
    }
    if (!s.impq_act_schedule.empty() && s.act_quantizer == "none") {
      return Invalid(source, "impq_act_schedule", "reducing activation bits needs an act_quantizer (e.g. pact)");
    }
    if (!(s.impq_eval_fraction > 0 && s.impq_eval_fraction <= 1)) {
      return Invalid(source, "impq_eval_fraction", absl::StrCat(s.impq_eval_fraction, " must be in (0, 1]"));
    }
    if (s.impq_max_iterations < 1 || s.impq_finetune_epochs < 1) {
      return Invalid(source, "impq_max_iterations", "impq_max_iterations and impq_finetune_epochs must be >= 1");
    }
    if (!(s.impq_finetune_lr > 0)) {
      return Invalid(source, "impq_finetune_lr", absl::StrCat(s.impq_finetune_lr, " must be > 0"));
    }
    if (s.impq_min_weight_bits < 1 || s.impq_min_act_bits < 1) {
      return Invalid(source, "impq_min_weight_bits", "bit floors must be >= 1");
    }
    if (s.impq_max_val_drop >= 0 && s.validation_fraction == 0) {
      return Invalid(source, "impq_max_val_drop", "needs a validation split (validation_fraction > 0)");
    }
  }
  if (s.method == "edmips") {
    if (s.weight_quantizer != "hwgq" || s.act_quantizer != "hwgq") {
      return Invalid(source, "weight_quantizer", "edmips searches HWGQ weights and activations: set weight_quantizer "
                                                 "and act_quantizer to hwgq");
    }
    if (s.granularity != "per_tensor") {
      return Invalid(source, "granularity", "edmips assigns one bit-width per layer: set granularity to per_tensor");
    }
    for (const char* key : {"edmips_weight_candidates", "edmips_act_candidates"}) {
      if (absl::StatusOr<std::vector<int64_t>> c = ParseCandidates(merged[key].get<std::string>()); !c.ok()) {
        return Invalid(source, key, std::string(c.status().message()));
      }
    }
    if (absl::Status st = OneOf(source, "edmips_discretize", s.edmips_discretize, {"argmax", "sample"}); !st.ok()) {
      return st;
    }
    if (!(s.edmips_cd >= 0)) return Invalid(source, "edmips_cd", absl::StrCat(s.edmips_cd, " must be >= 0"));
    if (s.edmips_search_epochs < 1 || s.edmips_search_step_size < 1) {
      return Invalid(source, "edmips_search_epochs", "edmips_search_epochs and edmips_search_step_size must be >= 1");
    }
    if (!(s.edmips_arch_lr > 0)) return Invalid(source, "edmips_arch_lr", "must be > 0");
  }
  return s;
}

absl::StatusOr<std::vector<int64_t>> ParseCandidates(const std::string& text) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int64_t b = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &b) || b < 1 || b > 4) {
      return absl::InvalidArgumentError(
          absl::StrCat("candidate '", part, "' is not a bit-width in 1..4 (the HWGQ constants exist for 1..4)"));
    }
    if (std::find(out.begin(), out.end(), b) != out.end()) {
      return absl::InvalidArgumentError(absl::StrCat("candidate ", b, " is listed twice"));
    }
    out.push_back(b);
  }
  return out;
}

std::string SpecToJson(const ExperimentSpec& spec) { return ToJson(spec).dump(); }

std::string SpecHash(const ExperimentSpec& spec, const std::string& code_version) {
  Json j = ToJson(spec);
  j.erase("data_dir");
  const std::string text = j.dump() + "\n" + code_version;
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

}  // namespace mpq::experiments
