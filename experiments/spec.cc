#include "experiments/spec.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <sstream>
#include <fstream>
#include <filesystem>
#include <cstdio>
#include <limits>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "datasets/registry.h"
#include "lib/alloc/option_reader.h"
#include "lib/models/registry.h"
#include "lib/runtime/device.h"
#include "lib/runtime/digest.h"

namespace mpq::experiments {
namespace {

using Json = nlohmann::json;
using alloc::OptionReader;
using alloc::Range;

Json ToJson(const ExperimentSpec& s) {
  Json j{{"name", s.name},
         {"model", s.model},
         {"dataset", s.dataset},
         {"data_dir", s.data_dir},
         {"image_size", s.image_size},
         {"method", s.method->name},
         {"weight_quantizer", nn::Name(s.quant.weight_quantizer)},
         {"granularity", nn::Name(s.quant.granularity)},
         {"weight_bits", s.quant.weight_bits},
         {"act_quantizer", nn::Name(s.quant.act_quantizer)},
         {"act_bits", s.quant.act_bits},
         {"quantize_first_and_last", s.quant.quantize_first_and_last},
         {"epochs", s.epochs},
         {"batch_size", s.batch_size},
         {"optimizer", train::Name(s.optimizer)},
         {"lr", s.lr},
         {"momentum", s.momentum},
         {"weight_decay", s.weight_decay},
         {"schedule", train::Name(s.schedule)},
         {"warmup_epochs", s.warmup_epochs},
         {"validation_fraction", s.validation_fraction},
         {"train_subset", s.train_subset},
         {"seed", s.seed},
         {"paper_row", s.paper_row}};
  // Written only when not the default, so the identity of existing specs is unchanged.
  if (s.quant.act_placement == models::ActPlacement::kReluOutput) j["act_placement"] = "relu";
  if (s.device != "auto") j["device"] = s.device;
  j[s.method->name] = s.method_options->ToJson();
  return j;
}

// Bits: 1..16 or 32 (full precision); HWGQ has step constants for 1..4 only.
void ReadBits(OptionReader& r, const char* key, int64_t* bits, bool hwgq) {
  *bits = r.Integer(key, *bits, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
  if (*bits < 1 || (*bits > 16 && *bits != nn::kFullPrecision)) {
    r.Fail(key, absl::StrCat(*bits, " is out of range; expected 1..16 or 32 (full precision)"));
  } else if (hwgq && *bits > 4 && *bits != nn::kFullPrecision) {
    r.Fail(key, absl::StrCat(*bits, " bits with the hwgq quantizer: its step constants exist for 1..4 bits; expected "
                             "1..4 or 32"));
  }
}

absl::StatusOr<ExperimentSpec> FromJson(const Json& j, const std::string& source) {
  auto fail = [&](const absl::Status& s) { return absl::InvalidArgumentError(absl::StrCat(source, ": ", s.message())); };
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(source, ": the spec must be a JSON object"));
  ExperimentSpec s;
  OptionReader r(&j, "");
  s.name = r.String("name", "");
  if (s.name.empty()) r.Fail("name", "required");
  s.model = r.String("model", s.model);
  const models::ModelEntry* model = nullptr;
  if (absl::StatusOr<const models::ModelEntry*> m = models::FindModel(s.model); m.ok()) {
    model = *m;
  } else {
    r.Fail("model", std::string(m.status().message()));
  }
  s.dataset = r.String("dataset", s.dataset);
  const data::DatasetEntry* dataset = nullptr;
  if (absl::StatusOr<const data::DatasetEntry*> d = data::FindDataset(s.dataset); d.ok()) {
    dataset = *d;
  } else {
    r.Fail("dataset", std::string(d.status().message()));
  }
  s.data_dir = r.String("data_dir", "");
  s.image_size = r.Integer("image_size", 0, 0, 4096);
  if (s.image_size == 0 && model != nullptr) s.image_size = model->default_image_size;
  if (model != nullptr && s.image_size < model->min_image_size) {
    r.Fail("image_size", absl::StrCat(s.image_size, " is too small for ", s.model, ": expected >= ",
                                      model->min_image_size));
  } else if (model != nullptr && s.image_size % model->image_size_multiple != 0) {
    r.Fail("image_size", absl::StrCat(s.image_size, ": ", s.model, " needs a multiple of ", model->image_size_multiple));
  }
  if (dataset != nullptr && (s.image_size < dataset->min_image_size ||
                             (dataset->max_image_size > 0 && s.image_size > dataset->max_image_size))) {
    r.Fail("image_size",
           absl::StrCat(s.image_size, ": the ", s.dataset, " pipelines give images of ",
                        dataset->max_image_size == dataset->min_image_size
                            ? absl::StrCat(dataset->min_image_size, " pixels")
                            : absl::StrCat(dataset->min_image_size, " pixels or more (padded to image_size)"),
                        " for training and evaluation alike"));
  }
  const std::string method = r.String("method", "uniform");
  if (absl::StatusOr<const alloc::MethodEntry*> m = alloc::FindMethod(method); m.ok()) {
    s.method = *m;
  } else {
    r.Fail("method", std::string(m.status().message()));
  }
  const std::string wq = r.OneOf("weight_quantizer", "lin", nn::WeightQuantizerNames());
  s.quant.weight_quantizer = *nn::ParseWeightQuantizer(wq);
  s.quant.granularity = *nn::ParseGranularity(r.OneOf("granularity", "per_channel", nn::GranularityNames()));
  ReadBits(r, "weight_bits", &s.quant.weight_bits, s.quant.weight_quantizer == nn::WeightQuantizer::kHwgq);
  s.quant.act_quantizer = *nn::ParseActQuantizer(r.OneOf("act_quantizer", "none", nn::ActQuantizerNames()));
  ReadBits(r, "act_bits", &s.quant.act_bits, s.quant.act_quantizer == nn::ActQuantizer::kHwgq);
  s.quant.quantize_first_and_last = r.Bool("quantize_first_and_last", true);
  const std::string placement = r.OneOf("act_placement", "conv_input", {"conv_input", "relu"});
  if (placement == "relu") {
    s.quant.act_placement = models::ActPlacement::kReluOutput;
    if (model != nullptr && !model->relu_placement) {
      r.Fail("act_placement", absl::StrCat("\"relu\" is not implemented for ", s.model,
                                           " (resnet20, resnet18, resnet50, mobilenet_v1, vgg_small have it)"));
    }
  }
  // Bits without a quantizer would be recorded (and costed) but never applied.
  if (s.quant.weight_quantizer == nn::WeightQuantizer::kSymmetric && s.quant.weight_bits == 1) {
    r.Fail("weight_bits", "1 bit with the symmetric quantizer: it has 2^(B-1) - 1 = 0 positive levels; expected 2..16 or 32");
  }
  if (s.quant.weight_quantizer == nn::WeightQuantizer::kNone && s.quant.weight_bits != nn::kFullPrecision) {
    r.Fail("weight_bits", absl::StrCat(s.quant.weight_bits, " bits with weight_quantizer none: set a quantizer, or 32"));
  }
  if (s.quant.act_quantizer == nn::ActQuantizer::kNone && s.quant.act_bits != nn::kFullPrecision) {
    r.Fail("act_bits", absl::StrCat(s.quant.act_bits, " bits with act_quantizer none: set a quantizer (e.g. pact), or 32"));
  }
  s.epochs = r.Integer("epochs", s.epochs, 1, 1000000);
  s.batch_size = r.Integer("batch_size", s.batch_size, 1, 1 << 20);
  s.optimizer = *train::ParseOptimizer(r.OneOf("optimizer", "sgd", train::OptimizerNames()));
  s.lr = r.Number("lr", s.lr, {0, 1000, true, false});
  s.momentum = r.Number("momentum", s.momentum, {0, 1, false, true});
  s.weight_decay = r.Number("weight_decay", s.weight_decay, Range::Closed(0, 1));
  s.schedule = *train::ParseSchedule(r.OneOf("schedule", "cosine", train::ScheduleNames()));
  s.warmup_epochs = r.Integer("warmup_epochs", 0, 0, s.epochs);
  s.validation_fraction = r.Number("validation_fraction", s.validation_fraction, {0, 1, false, true});
  s.train_subset = r.Integer("train_subset", 0, 0, std::numeric_limits<int32_t>::max());
  s.seed = r.Integer("seed", s.seed, 0, std::numeric_limits<int64_t>::max());
  s.paper_row = r.String("paper_row", "");
  const std::string device = r.String("device", "auto");
  if (absl::StatusOr<runtime::DeviceSetting> d = runtime::ParseDeviceSetting(device); d.ok()) {
    s.device = runtime::Name(*d);
  } else {
    r.Fail("device", std::string(d.status().message()));
  }
  // The method's own object; another method's is refused with a reason.
  const Json* options = s.method != nullptr ? r.Object(s.method->name) : nullptr;
  for (const alloc::MethodEntry& m : alloc::Methods()) {
    if (j.contains(m.name) && (s.method == nullptr || s.method != &m)) {
      r.Fail(m.name, absl::StrCat("options of method ", m.name, ", but \"method\" is \"", method,
                                  "\": remove them or set \"method\": \"", m.name, "\""));
    }
  }
  if (s.method != nullptr && s.method->model_build == alloc::ModelBuild::kSearch &&
      s.quant.act_placement != models::ActPlacement::kConvInput) {
    r.Fail("act_placement", absl::StrCat("method ", s.method->name, " searches over conv units whose activation is "
                                         "their input: use \"conv_input\""));
  }
  if (absl::Status st = r.Finish(); !st.ok()) return fail(st);
  absl::StatusOr<std::shared_ptr<const alloc::MethodOptions>> parsed = s.method->parse(options, s.MethodContext());
  if (!parsed.ok()) return fail(parsed.status());
  s.method_options = *parsed;
  return s;
}

// Parses JSON text, refusing a key that appears twice in one object (nlohmann keeps
// the last silently, so `"epochs": -1, "epochs": 1` would pass) and nesting deeper
// than a spec can have (a deep value would overflow the stack when printed).
absl::StatusOr<Json> ParseJson(const std::string& text, const std::string& source) {
  constexpr int kMaxDepth = 64;
  std::vector<std::vector<std::string>> keys;  // per open object
  std::string error;
  auto check = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (!error.empty()) return true;
    if (depth > kMaxDepth) {
      error = absl::StrCat("nested deeper than ", kMaxDepth, " levels");
    } else if (event == Json::parse_event_t::object_start) {
      keys.emplace_back();
    } else if (event == Json::parse_event_t::object_end && !keys.empty()) {
      keys.pop_back();
    } else if (event == Json::parse_event_t::key && !keys.empty()) {
      const std::string key = parsed.get<std::string>();
      if (std::find(keys.back().begin(), keys.back().end(), key) != keys.back().end()) {
        error = absl::StrCat("\"", key, "\" is given twice in one object");
      }
      keys.back().push_back(key);
    }
    return true;
  };
  Json j;
  try {
    j = Json::parse(text, check);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON: ", e.what()));
  }
  if (!error.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": ", error));
  return j;
}

}  // namespace

train::TrainOptions ExperimentSpec::Training() const {
  train::TrainOptions o;
  o.optimizer = optimizer;
  o.lr = lr;
  o.momentum = momentum;
  o.weight_decay = weight_decay;
  o.schedule = schedule;
  o.warmup_epochs = warmup_epochs;
  o.epochs = epochs;
  return o;
}

alloc::MethodContext ExperimentSpec::MethodContext() const {
  alloc::MethodContext c;
  c.quant = quant;
  c.epochs = epochs;
  c.validation_fraction = validation_fraction;
  c.seed = static_cast<uint64_t>(seed);
  return c;
}

absl::StatusOr<ExperimentSpec> ParseSpec(const std::string& json_text, const std::string& source) {
  absl::StatusOr<Json> j = ParseJson(json_text, source);
  if (!j.ok()) return j.status();
  return FromJson(*j, source);
}

absl::StatusOr<ExperimentSpec> ParseStoredSpec(const std::string& json_text, const std::string& source) {
  absl::StatusOr<Json> j = ParseJson(json_text, source);
  if (!j.ok()) return j.status();
  if (!j->is_object()) return FromJson(*j, source);
  // Before the method registry, every method's options were top-level keys
  // "<method>_<option>", and the canonical JSON held all of them.
  const std::string method = j->value("method", "uniform");
  Json upgraded = Json::object(), options = Json::object();
  for (const auto& item : j->items()) {
    bool legacy = false;
    for (const alloc::MethodEntry& m : alloc::Methods()) {
      const std::string prefix = absl::StrCat(m.name, "_");
      if (!absl::StartsWith(item.key(), prefix)) continue;
      legacy = true;
      if (method == m.name) options[item.key().substr(prefix.size())] = item.value();
    }
    if (!legacy) upgraded[item.key()] = item.value();
  }
  if (!options.empty()) upgraded[method] = options;
  return FromJson(upgraded, source);
}

absl::StatusOr<ExperimentSpec> WithEpochs(const ExperimentSpec& spec, int64_t epochs) {
  Json j = ToJson(spec);
  j["epochs"] = epochs;
  return FromJson(j, absl::StrCat(spec.name, " with --epochs=", epochs));
}

std::string SpecToJson(const ExperimentSpec& spec) { return ToJson(spec).dump(); }

absl::StatusOr<std::set<std::string>> ReadPaperRows(const std::string& dir) {
  std::set<std::string> rows;
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  if (ec) return absl::NotFoundError(absl::StrCat("cannot list the paper files in ", dir, ": ", ec.message()));
  for (const std::filesystem::path& f : files) {
    std::ifstream in(f);
    std::stringstream text;
    text << in.rdbuf();
    try {
      const Json paper = Json::parse(text.str());
      for (const Json& row : paper.at("rows")) rows.insert(row.at("id").get<std::string>());
    } catch (const Json::exception& e) {
      return absl::DataLossError(absl::StrCat(f.string(), ": not a paper file (rows[].id): ", e.what()));
    }
  }
  if (rows.empty()) return absl::NotFoundError(absl::StrCat("no paper rows in ", dir, "/*.json"));
  return rows;
}

absl::Status CheckPaperRow(const ExperimentSpec& spec, const std::set<std::string>& rows, const std::string& dir) {
  if (spec.paper_row.empty() || rows.count(spec.paper_row)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(spec.name, ": \"paper_row\": '", spec.paper_row, "' is not a row of ",
                                                 dir, "/*.json (", rows.size(), " rows known)"));
}

std::string SpecHash(const ExperimentSpec& spec, const std::string& code_identity, const std::string& data_fingerprint) {
  Json j = ToJson(spec);
  j.erase("data_dir");  // where the data lives is not its identity; its fingerprint is
  j.erase("device");    // nor where it computes (the runs table records that)
  runtime::Fnv1a64 h;
  h.Add(j.dump()).Add("\n").Add(code_identity);
  // Appended only when given, so hashes of runs without a fingerprint stay as they were.
  if (!data_fingerprint.empty()) h.Add("\ndata ").Add(data_fingerprint);
  return h.Hex();
}

}  // namespace mpq::experiments
