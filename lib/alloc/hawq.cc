#include "lib/alloc/hawq.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "lib/alloc/allocation.h"
#include "lib/alloc/ilp.h"
#include "lib/alloc/option_reader.h"
#include "lib/alloc/trained_state.h"
#include "lib/nn/layer_record.h"
#include "lib/nn/qconv.h"
#include "lib/quant/symmetric.h"
#include "lib/train/state.h"
#include "lib/train/trainer.h"

namespace mpq::alloc {
namespace {

using Json = nlohmann::json;

Json TraceStateToJson(const HutchinsonState& s) {
  Json layers = Json::array();
  for (const LayerTrace& t : s.layers) {
    layers.push_back({{"layer", t.layer},
                      {"params", t.params},
                      {"trace", t.trace},
                      {"iterations", t.iterations},
                      {"relative_change", t.relative_change},
                      {"converged", t.converged},
                      {"sum", t.sum},
                      {"sum_squares", t.sum_squares},
                      {"standard_error", t.StandardError()}});
  }
  return Json{{"iteration", s.iteration}, {"layers", layers}};
}

absl::StatusOr<HutchinsonState> TraceStateFromJson(const Json& j, const std::string& path) {
  HutchinsonState s;
  try {
    s.iteration = j.at("iteration").get<int64_t>();
    for (const Json& l : j.at("layers")) {
      LayerTrace t;
      t.layer = l.at("layer").get<std::string>();
      t.params = l.at("params").get<int64_t>();
      t.trace = l.at("trace").get<double>();
      t.iterations = l.at("iterations").get<int64_t>();
      t.relative_change = l.at("relative_change").get<double>();
      t.converged = l.at("converged").get<bool>();
      t.sum = l.at("sum").get<double>();
      t.sum_squares = l.at("sum_squares").get<double>();
      s.layers.push_back(t);
    }
  } catch (const Json::exception& e) {
    return absl::DataLossError(absl::StrCat(path, ": not a Hutchinson state (", e.what(), "); delete it to restart"));
  }
  return s;
}

Json ProgramToJson(const HawqProgram& p) {
  Json layers = Json::array();
  for (const HawqLayer& l : p.layers) {
    layers.push_back({{"layer", l.layer},
                      {"params", l.params},
                      {"macs", l.macs},
                      {"act_layer", l.act_layer},
                      {"fixed", l.fixed},
                      {"omega", l.omega},
                      {"bits", l.bits}});
  }
  Json ties = Json::array();
  for (const auto& [a, b] : p.ties) ties.push_back({p.layers[a].layer, p.layers[b].layer});
  return Json{{"layers", layers},       {"ties", ties},           {"budget", p.budget},
              {"cost_low", p.cost_low}, {"cost_high", p.cost_high}, {"objective", p.objective},
              {"cost", p.cost},         {"optimal", p.optimal},   {"solver", p.solver}};
}

absl::StatusOr<HawqProgram> ProgramFromJson(const Json& j, const std::string& path) {
  HawqProgram p;
  try {
    std::map<std::string, int64_t> index;
    for (const Json& l : j.at("layers")) {
      HawqLayer h;
      h.layer = l.at("layer").get<std::string>();
      h.params = l.at("params").get<int64_t>();
      h.macs = l.at("macs").get<double>();
      h.act_layer = l.at("act_layer").get<std::string>();
      h.fixed = l.at("fixed").get<bool>();
      h.omega = l.at("omega").get<std::vector<double>>();
      h.bits = l.at("bits").get<int64_t>();
      index[h.layer] = static_cast<int64_t>(p.layers.size());
      p.layers.push_back(h);
    }
    for (const Json& t : j.at("ties")) p.ties.emplace_back(index.at(t.at(0)), index.at(t.at(1)));
    p.budget = j.at("budget").get<double>();
    p.cost_low = j.at("cost_low").get<double>();
    p.cost_high = j.at("cost_high").get<double>();
    p.objective = j.at("objective").get<double>();
    p.cost = j.at("cost").get<double>();
    p.optimal = j.at("optimal").get<bool>();
    p.solver = j.at("solver").get<std::string>();
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat(path, ": not a HAWQ program (", e.what(), "); delete it to re-solve"));
  }
  return p;
}

std::map<std::string, const torch::nn::Module*> ModulesByName(const torch::nn::Module& model) {
  std::map<std::string, const torch::nn::Module*> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) out[item.key()] = item.value().get();
  return out;
}

const at::Tensor* LayerWeight(const torch::nn::Module* m) {
  if (const auto* conv = dynamic_cast<const nn::QConv2dImpl*>(m)) return &conv->weight;
  if (const auto* fc = dynamic_cast<const nn::QLinearImpl*>(m)) return &fc->weight;
  return nullptr;
}

}  // namespace

const char* Name(HawqBudget budget) { return budget == HawqBudget::kBitOps ? "bitops" : "weight_size"; }

absl::StatusOr<std::shared_ptr<const MethodOptions>> HawqOptions::Parse(const Json* options, const MethodContext& run) {
  auto o = std::make_shared<HawqOptions>();
  OptionReader r(options, "hawq.");
  o->candidates = r.BitList("candidates", o->candidates, /*allow_empty=*/false, quant::kSymmetricMinBits);
  o->budget = r.OneOf("budget", Name(o->budget), {"bitops", "weight_size"}) == "bitops" ? HawqBudget::kBitOps
                                                                                        : HawqBudget::kWeightSize;
  o->budget_fraction = r.Number("budget_fraction", o->budget_fraction, Range::Closed(0, 1));
  o->budget_bits = r.Integer("budget_bits", o->budget_bits, 0, 16);
  if (o->budget_bits == 1) r.Fail("budget_bits", "1 is out of range; expected 0 (use budget_fraction) or 2..16");
  o->first_last_bits = r.Integer("first_last_bits", o->first_last_bits, quant::kSymmetricMinBits, 32);
  if (o->first_last_bits > 16 && o->first_last_bits != nn::kFullPrecision) {
    r.Fail("first_last_bits", absl::StrCat(o->first_last_bits, " is out of range; expected 2..16 or 32"));
  }
  o->act_bits = r.Integer("act_bits", o->act_bits, 0, 16);
  {
    const std::string g = r.OneOf("granularity", nn::Name(o->granularity), nn::GranularityNames());
    if (absl::StatusOr<nn::Granularity> parsed = nn::ParseGranularity(g); parsed.ok()) o->granularity = *parsed;
    const std::string a = r.OneOf("act_quantizer", nn::Name(o->act_quantizer), {"pact", "lsq"});
    if (absl::StatusOr<nn::ActQuantizer> parsed = nn::ParseActQuantizer(a); parsed.ok()) o->act_quantizer = *parsed;
    const std::string p = r.OneOf("trace_products", Name(o->trace_products), {"per_layer", "joint"});
    o->trace_products = p == "joint" ? TraceProducts::kJoint : TraceProducts::kPerLayer;
  }
  o->calibration_fraction = r.Number("calibration_fraction", o->calibration_fraction, {0, 1, true, false});
  o->trace_max_iterations = r.Integer("trace_max_iterations", o->trace_max_iterations, 1, 100000);
  o->trace_tolerance = r.Number("trace_tolerance", o->trace_tolerance, Range::NonNegative());
  o->finetune_epochs = r.Integer("finetune_epochs", o->finetune_epochs, 1, 100000);
  o->finetune_lr = r.Number("finetune_lr", o->finetune_lr, Range::Positive());
  o->ilp_time_limit_s = r.Number("ilp_time_limit_s", o->ilp_time_limit_s, Range::Positive());
  o->seed = run.seed;
  if (absl::Status s = r.Finish(); !s.ok()) return s;
  if (run.quant.weight_bits != nn::kFullPrecision || run.quant.act_quantizer != nn::ActQuantizer::kNone) {
    return absl::InvalidArgumentError(
        "\"weight_bits\": hawq measures Hessian traces on a full-precision network (the spec's `epochs` train it) "
        "and builds its own quantizers: leave weight_bits at 32 and act_quantizer at none, and set the method's "
        "options in \"hawq\"");
  }
  if (run.validation_fraction == 0) {
    return absl::InvalidArgumentError(
        "\"validation_fraction\": hawq keeps the best fine-tuning epoch on validation: set validation_fraction > 0");
  }
  return std::shared_ptr<const MethodOptions>(std::move(o));
}

Json HawqOptions::ToJson() const {
  return Json{{"candidates", absl::StrJoin(candidates, ",")},
              {"budget", Name(budget)},
              {"budget_fraction", budget_fraction},
              {"budget_bits", budget_bits},
              {"first_last_bits", first_last_bits},
              {"act_bits", act_bits},
              {"granularity", nn::Name(granularity)},
              {"act_quantizer", nn::Name(act_quantizer)},
              {"calibration_fraction", calibration_fraction},
              {"trace_max_iterations", trace_max_iterations},
              {"trace_tolerance", trace_tolerance},
              {"trace_products", Name(trace_products)},
              {"finetune_epochs", finetune_epochs},
              {"finetune_lr", finetune_lr},
              {"ilp_time_limit_s", ilp_time_limit_s}};
}

models::QuantConfig HawqOptions::Quant() const {
  models::QuantConfig q;
  q.weight_quantizer = nn::WeightQuantizer::kSymmetric;
  q.granularity = granularity;
  q.weight_bits = candidates.back();
  q.act_quantizer = act_quantizer;
  q.act_bits = act_bits > 0 ? act_bits : candidates.back();
  q.quantize_first_and_last = true;  // at first_last_bits
  q.act_placement = models::ActPlacement::kConvInput;
  q.units = nullptr;
  return q;
}

std::vector<std::pair<std::string, std::string>> LayersReadingOneTensor(models::Model& model,
                                                                         const std::vector<int64_t>& input_shape) {
  const std::map<std::string, const torch::nn::Module*> modules = ModulesByName(model);
  std::map<const torch::nn::Module*, std::string> names;
  for (const auto& [name, m] : modules) names[m] = name;
  std::vector<std::pair<std::string, std::string>> ties;
  {
    nn::LayerRecorder recorder;
    models::TraceForward(model, input_shape);
    std::map<const void*, std::string> first_reader;
    for (const nn::LayerRecord& r : recorder.layers()) {
      const auto name = names.find(r.module);
      if (name == names.end()) continue;
      auto [it, inserted] = first_reader.emplace(r.input.data_ptr(), name->second);
      if (!inserted) ties.emplace_back(it->second, name->second);
    }
  }
  return ties;
}

absl::StatusOr<HawqProgram> SolveHawqProgram(models::Model& quantized, const std::vector<int64_t>& input_shape,
                                             const std::vector<LayerTrace>& traces,
                                             const std::vector<std::pair<std::string, std::string>>& ties,
                                             const HawqOptions& o) {
  const bool was_training = quantized.is_training();
  quantized.eval();
  const cost::CostReport report = cost::MeasureModelCost(
      quantized, [&](const at::Tensor& x) { return quantized.forward(x); }, input_shape);
  quantized.train(was_training);
  if (report.layers.size() < 3) {
    return absl::InvalidArgumentError(absl::StrCat("hawq: the network has ", report.layers.size(),
                                                   " quantized layers; expected at least 3 (the first and the last "
                                                   "are fixed, the others are allocated)"));
  }
  std::map<std::string, const LayerTrace*> trace_of;
  for (const LayerTrace& t : traces) trace_of[t.layer] = &t;
  const std::map<std::string, const torch::nn::Module*> modules = ModulesByName(quantized);

  HawqProgram p;
  std::map<std::string, int64_t> index;
  const size_t n = report.layers.size();
  for (size_t i = 0; i < n; ++i) {
    const cost::LayerCost& c = report.layers[i];
    HawqLayer l;
    l.layer = c.name;
    l.params = c.params;
    l.macs = c.macs;
    l.act_layer = c.act_layer;
    l.fixed = i == 0 || i + 1 == n;
    auto t = trace_of.find(c.name);
    if (t == trace_of.end()) {
      return absl::InvalidArgumentError(absl::StrCat("hawq: no Hessian trace for layer '", c.name,
                                                     "'; the traces must come from the same architecture"));
    }
    auto m = modules.find(c.name);
    const at::Tensor* w = m == modules.end() ? nullptr : LayerWeight(m->second);
    if (w == nullptr) return absl::InternalError(absl::StrCat("hawq: layer '", c.name, "' has no weight"));
    at::NoGradGuard no_grad;
    const int64_t groups = o.granularity == nn::Granularity::kPerChannel ? w->size(0) : 1;
    for (int64_t b : o.candidates) {
      const at::Tensor q = quant::SymmetricQuantize(*w, at::full({groups}, b, at::kInt));
      const double squared = (q - *w).to(at::kDouble).square().sum().item<double>();
      l.omega.push_back(t->second->trace / static_cast<double>(t->second->params) * squared);
    }
    if (l.fixed) l.bits = o.first_last_bits;
    index[c.name] = static_cast<int64_t>(p.layers.size());
    p.layers.push_back(l);
  }
  // Ties: layers reading one tensor, and layers fed by one activation quantizer.
  std::vector<std::pair<std::string, std::string>> all_ties = ties;
  std::map<std::string, std::string> reader_of_act;
  for (const HawqLayer& l : p.layers) {
    if (l.act_layer.empty()) continue;
    auto [it, inserted] = reader_of_act.emplace(l.act_layer, l.layer);
    if (!inserted) all_ties.emplace_back(it->second, l.layer);
  }
  for (const auto& [a, b] : all_ties) {
    auto ia = index.find(a), ib = index.find(b);
    if (ia == index.end() || ib == index.end()) {
      return absl::InvalidArgumentError(absl::StrCat("hawq: tie between '", a, "' and '", b,
                                                     "' names a layer the quantized network does not have"));
    }
    p.ties.emplace_back(ia->second, ib->second);
  }
  // A layer tied to a fixed one is fixed too (at first_last_bits), until nothing changes.
  for (bool changed = true; changed;) {
    changed = false;
    for (const auto& [a, b] : p.ties) {
      if (p.layers[a].fixed != p.layers[b].fixed) {
        HawqLayer& free = p.layers[a].fixed ? p.layers[b] : p.layers[a];
        free.fixed = true;
        free.bits = o.first_last_bits;
        changed = true;
      }
    }
  }
  auto cost_of = [&](const HawqLayer& l, int64_t b) {
    if (o.budget == HawqBudget::kWeightSize) return static_cast<double>(l.params) * static_cast<double>(b) / 8.0;
    const int64_t a = l.act_layer.empty() ? nn::kFullPrecision : (o.act_bits > 0 ? o.act_bits : b);
    return l.macs * static_cast<double>(b) * static_cast<double>(a);
  };
  MultipleChoiceProblem problem;
  problem.time_limit_s = o.ilp_time_limit_s;
  std::vector<int64_t> item_of(p.layers.size(), -1), layer_of;
  for (size_t i = 0; i < p.layers.size(); ++i) {
    const HawqLayer& l = p.layers[i];
    if (l.fixed) continue;
    item_of[i] = static_cast<int64_t>(layer_of.size());
    layer_of.push_back(static_cast<int64_t>(i));
    problem.objective.push_back(l.omega);
    std::vector<double> c;
    for (int64_t b : o.candidates) c.push_back(cost_of(l, b));
    p.cost_low += c.front();
    p.cost_high += c.back();
    if (o.budget_bits > 0) p.budget += cost_of(l, o.budget_bits);
    problem.cost.push_back(c);
  }
  if (layer_of.empty()) return absl::InvalidArgumentError("hawq: every layer is fixed; nothing to allocate");
  for (const auto& [a, b] : p.ties) {
    if (item_of[a] >= 0 && item_of[b] >= 0) problem.ties.emplace_back(item_of[a], item_of[b]);
  }
  if (o.budget_bits == 0) p.budget = p.cost_low + o.budget_fraction * (p.cost_high - p.cost_low);
  problem.budget = p.budget;
  absl::StatusOr<MultipleChoiceSolution> s = SolveMultipleChoice(problem);
  if (!s.ok()) return absl::Status(s.status().code(), absl::StrCat("hawq: ", s.status().message()));
  for (size_t k = 0; k < layer_of.size(); ++k) p.layers[layer_of[k]].bits = o.candidates[s->option[k]];
  p.objective = s->objective;
  p.cost = s->cost;
  p.optimal = s->optimal;
  p.solver = s->solver;
  return p;
}

absl::StatusOr<AllocatorResult> HawqAllocator::Run(AllocatorContext& ctx) {
  const HawqOptions& o = options_;
  if (ctx.model == nullptr || ctx.train == nullptr || ctx.validation == nullptr || ctx.calibration == nullptr ||
      !ctx.make_model_with) {
    return absl::InvalidArgumentError(
        "hawq: the context needs the trained float model, training, validation and calibration loaders and "
        "make_model_with");
  }
  const bool persistent = !ctx.state_dir.empty();
  std::error_code ec;
  if (persistent) {
    std::filesystem::create_directories(ctx.state_dir, ec);
    if (ec) return absl::PermissionDeniedError(absl::StrCat("hawq: cannot create ", ctx.state_dir, ": ", ec.message()));
  }
  auto path = [&](const std::string& name) { return ctx.state_dir + "/" + name; };
  auto exists = [&](const std::string& name) { return persistent && std::filesystem::exists(path(name), ec); };

  // 1. Hessian traces of the float network.
  HutchinsonOptions ho;
  ho.max_iterations = o.trace_max_iterations;
  ho.tolerance = o.trace_tolerance;
  ho.products = o.trace_products;
  ho.seed = o.seed;
  HutchinsonState traces;
  if (exists("hutchinson.json")) {
    absl::StatusOr<Json> j = train::ReadJsonFile(path("hutchinson.json"));
    if (!j.ok()) return j.status();
    absl::StatusOr<HutchinsonState> s = TraceStateFromJson(*j, path("hutchinson.json"));
    if (!s.ok()) return s.status();
    traces = *s;
  }
  // The trace cache (ctx.shared_dir): runs whose trained network, calibration batches and
  // trace options are identical (HutchinsonInputsDigest) share one trace pass; only
  // finished traces are cached, and a run copies them into its own state.
  Json trace_cache = nullptr;
  std::string cache_path;
  if (!ctx.shared_dir.empty()) {
    absl::StatusOr<std::string> key = HutchinsonInputsDigest(*ctx.model, *ctx.calibration, ho);
    if (!key.ok()) return key.status();
    cache_path = ctx.shared_dir + "/hawq_traces/" + *key + ".json";
    trace_cache = Json{{"key", *key}, {"hit", false}};
    if (!traces.Finished(ho) && std::filesystem::exists(cache_path, ec)) {
      absl::StatusOr<Json> j = train::ReadJsonFile(cache_path);
      if (!j.ok()) return j.status();
      absl::StatusOr<HutchinsonState> cached = TraceStateFromJson(*j, cache_path);
      if (!cached.ok()) return cached.status();
      if (!cached->Finished(ho)) {
        return absl::DataLossError(absl::StrCat(cache_path, ": cached traces are unfinished (", cached->iteration,
                                                " iterations); delete the file to recompute them"));
      }
      traces = *cached;
      trace_cache["hit"] = true;
      if (persistent) {
        if (absl::Status s = train::WriteJsonFile(path("hutchinson.json"), *j); !s.ok()) return s;
      }
    }
  }
  if (!traces.Finished(ho)) {
    absl::Status s = EstimateHessianTraces(*ctx.model, *ctx.calibration, ho, &traces, [&](const HutchinsonState& st) {
      return persistent ? train::WriteJsonFile(path("hutchinson.json"), TraceStateToJson(st)) : absl::OkStatus();
    });
    if (!s.ok()) return s;
  }
  if (!cache_path.empty() && !std::filesystem::exists(cache_path, ec)) {
    std::filesystem::create_directories(std::filesystem::path(cache_path).parent_path(), ec);
    if (ec) return absl::PermissionDeniedError(absl::StrCat("hawq: cannot create the trace cache for ", cache_path));
    if (absl::Status s = train::WriteJsonFile(cache_path, TraceStateToJson(traces)); !s.ok()) return s;
  }

  // 2. The quantized network from the float one; 3. the program.
  absl::StatusOr<std::shared_ptr<models::Model>> built = ctx.make_model_with(o.Quant());
  if (!built.ok()) return built.status();
  std::shared_ptr<models::Model> net = *built;
  if (absl::Status s = CopyTrainedState(*ctx.model, *net); !s.ok()) return s;
  HawqProgram program;
  if (exists("ilp.json")) {
    absl::StatusOr<Json> j = train::ReadJsonFile(path("ilp.json"));
    if (!j.ok()) return j.status();
    absl::StatusOr<HawqProgram> p = ProgramFromJson(*j, path("ilp.json"));
    if (!p.ok()) return p.status();
    program = *p;
  } else {
    absl::StatusOr<HawqProgram> p =
        SolveHawqProgram(*net, ctx.input_shape, traces.layers, LayersReadingOneTensor(*ctx.model, ctx.input_shape), o);
    if (!p.ok()) return p.status();
    program = *p;
    if (persistent) {
      if (absl::Status s = train::WriteJsonFile(path("ilp.json"), ProgramToJson(program)); !s.ok()) return s;
    }
  }

  // 4. The chosen bits: each layer's weights, and its input activation (tied or fixed).
  std::map<std::string, int64_t> weight_bits, act_bits;
  for (const HawqLayer& l : program.layers) {
    weight_bits[l.layer] = l.bits;
    if (!l.act_layer.empty()) act_bits[l.act_layer] = o.act_bits > 0 && !l.fixed ? o.act_bits : l.bits;
  }
  Allocation allocation = ReadAllocation(*net);
  for (GroupBits& g : allocation.groups) {
    const std::map<std::string, int64_t>& bits = g.is_weight ? weight_bits : act_bits;
    if (auto it = bits.find(g.layer); it != bits.end()) g.bits = it->second;
  }
  if (absl::Status s = ApplyAllocation(*net, allocation); !s.ok()) return s;

  AllocatorContext net_ctx = ctx;
  net_ctx.model = net.get();
  auto bits_note = [&]() {
    std::map<int64_t, int64_t> count;
    for (const HawqLayer& l : program.layers) ++count[l.bits];
    std::vector<std::string> parts;
    for (const auto& [b, c] : count) parts.push_back(absl::StrCat(c, " at ", b));
    const std::string knob = o.budget_bits > 0 ? absl::StrCat("all at ", o.budget_bits, " bits")
                                               : absl::StrFormat("r = %.2f", o.budget_fraction);
    return absl::StrFormat("%s budget %.4g (%s): %s layers", Name(o.budget), program.budget, knob,
                           absl::StrJoin(parts, ", "));
  };
  const std::string train_dir = persistent ? path("finetune") : "";
  if (!exists("point0.json")) {
    absl::StatusOr<AllocationPoint> p0 =
        MeasurePoint(net_ctx, 0, absl::StrCat("the ILP's bits before fine-tuning (post-training); ", bits_note()));
    if (!p0.ok()) return p0.status();
    if (ctx.on_point) {
      if (absl::Status s = ctx.on_point(*p0); !s.ok()) return s;
    }
    if (ctx.on_metrics) {
      std::vector<std::pair<std::string, double>> m;
      for (const LayerTrace& t : traces.layers) {
        m.emplace_back(names::HessianTraceMetric(t.layer), t.trace);
        m.emplace_back(names::HessianTraceMetric(t.layer, "iterations"), static_cast<double>(t.iterations));
        m.emplace_back(names::HessianTraceMetric(t.layer, "relative_change"), t.relative_change);
        m.emplace_back(names::HessianTraceMetric(t.layer, "standard_error"), t.StandardError());
      }
      for (const HawqLayer& l : program.layers) {
        for (size_t k = 0; k < o.candidates.size(); ++k) {
          m.emplace_back(names::OmegaMetric(l.layer, o.candidates[k]), l.omega[k]);
        }
      }
      if (absl::Status s = ctx.on_metrics(0, m); !s.ok()) return s;
    }
    if (persistent) {
      if (absl::Status s = train::WriteJsonFile(path("point0.json"), Json{{"reported", true}}); !s.ok()) return s;
    }
  }

  // 5. Quantization-aware fine-tuning; the best validation epoch is kept.
  train::TrainOptions to = ctx.training;
  to.epochs = o.finetune_epochs;
  to.lr = o.finetune_lr;
  to.schedule = train::Schedule::kCosine;
  to.warmup_epochs = 0;
  to.select_best = true;
  to.checkpoint_dir = train_dir;
  train::Trainer trainer(*net, *ctx.train, ctx.validation, to);
  trainer.set_epoch_callback([&](const train::EpochStats& s) {
    return ctx.on_epoch ? ctx.on_epoch({names::kPhaseFinetune, s.epoch, s.epoch + 1.0, s}) : absl::OkStatus();
  });
  absl::StatusOr<train::TrainResult> trained = trainer.Run();
  if (!trained.ok()) return trained.status();
  AllocatorResult result;
  if (!trained->completed) {
    result.completed = false;
    result.final_point = 0;
    result.points = 1;
    result.stop_reason = "paused (stop_after_epochs)";
    return result;
  }
  if (!exists("done.json")) {
    absl::StatusOr<AllocationPoint> p1 = MeasurePoint(
        net_ctx, 1,
        absl::StrFormat("fine-tuned %d epochs, epoch %d kept (validation); %s", o.finetune_epochs,
                        trained->best_epoch + 1, bits_note()));
    if (!p1.ok()) return p1.status();
    if (ctx.on_point) {
      if (absl::Status s = ctx.on_point(*p1); !s.ok()) return s;
    }
    if (persistent) {
      if (absl::Status s = train::WriteJsonFile(path("done.json"), Json{{"final_point", 1}}); !s.ok()) return s;
    }
  }
  Json details = o.ToJson();
  details["method"] = "hawq";
  details["program"] = ProgramToJson(program);
  details["traces"] = TraceStateToJson(traces);
  details["trace_cache"] = trace_cache;  // null: no cache; else its key and whether this run reused it
  details["selected_epoch"] = trained->best_epoch + 1;
  {
    // The trace pass at its cost, cached or not (the traces are part of the method): per
    // iteration one first-order pass with create_graph over the calibration examples, and
    // one second-order backward per layer still estimating (per_layer) or one in all (joint).
    int64_t outer = 0, layer_iterations = 0;
    for (const LayerTrace& t : traces.layers) {
      outer = std::max(outer, t.iterations);
      layer_iterations += t.iterations;
    }
    const double passes = static_cast<double>(ctx.calibration->num_examples()) *
                          static_cast<double>(outer + (o.trace_products == TraceProducts::kJoint ? outer : layer_iterations));
    details["sensitivity_example_passes"] = passes;
    details[names::kDetailsSensitivityEpochs] = passes / static_cast<double>(ctx.train->num_examples());
  }
  result.stop_reason = absl::StrFormat("ILP (%s, %s) then %d fine-tuning epochs; epoch %d kept",
                                       program.optimal ? "optimal" : "time limit", bits_note(), o.finetune_epochs,
                                       trained->best_epoch + 1);
  details[names::kDetailsStopReason] = result.stop_reason;
  result.details_json = details.dump();
  result.completed = true;
  result.model = net;
  result.allocation = ReadAllocation(*net);
  result.final_point = 1;
  result.points = 2;
  return result;
}

}  // namespace mpq::alloc
