#include "lib/alloc/edmips.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "lib/alloc/option_reader.h"
#include "lib/nn/layer_record.h"
#include "lib/runtime/atomic_file.h"
#include "lib/train/state.h"
#include "lib/nn/mixq.h"

namespace mpq::alloc {
namespace {

using Json = nlohmann::json;

absl::StatusOr<Allocation> ReadAllocationFile(const std::string& path) {
  absl::StatusOr<Json> j = train::ReadJsonFile(path);
  if (!j.ok()) return j.status();
  return AllocationFromJson(j->dump(), path);
}

// (name, module) of every MixQConv2d / MixQAct, in module order.
std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> MixedModules(models::Model& model) {
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    if (dynamic_cast<nn::MixQConv2dImpl*>(item.value().get()) || dynamic_cast<nn::MixQActImpl*>(item.value().get())) {
      out.emplace_back(item.key(), item.value());
    }
  }
  return out;
}

}  // namespace

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

torch::nn::AnyModule EdmipsSearchUnits::MakeActivation(const models::QConvBnOptions&) const {
  return torch::nn::AnyModule(nn::MixQAct(nn::MixQActOptions().candidate_bits(act_bits_)));
}

torch::nn::AnyModule EdmipsSearchUnits::MakeConv(const models::QConvBnOptions& unit,
                                                 torch::ExpandingArray<2> padding) const {
  return torch::nn::AnyModule(nn::MixQConv2d(nn::MixQConv2dOptions(unit.in(), unit.out(), unit.kernel())
                                                 .stride(unit.stride())
                                                 .padding(padding)
                                                 .groups(unit.groups())
                                                 .candidate_bits(weight_bits_)));
}

absl::StatusOr<std::shared_ptr<const MethodOptions>> EdmipsOptions::Parse(const Json* options,
                                                                           const MethodContext& run) {
  auto o = std::make_shared<EdmipsOptions>();
  OptionReader r(options, "edmips.");
  o->cd = r.Number("cd", o->cd, Range::NonNegative());
  o->search_epochs = r.Integer("search_epochs", o->search_epochs, 1, 100000);
  o->search_step_size = r.Integer("search_step_size", o->search_step_size, 1, 100000);
  o->arch_lr = r.Number("arch_lr", o->arch_lr, Range::Positive());
  for (auto [key, list] : {std::pair<const char*, std::vector<int64_t>*>{"weight_candidates", &o->weight_candidates},
                           {"act_candidates", &o->act_candidates}}) {
    absl::StatusOr<std::vector<int64_t>> c = ParseCandidates(r.String(key, absl::StrJoin(*list, ",")));
    if (c.ok()) {
      *list = *c;
    } else {
      r.Fail(key, std::string(c.status().message()));
    }
  }
  o->discretize = r.OneOf("discretize", "argmax", {"argmax", "sample"}) == "sample" ? Discretization::kSample
                                                                                    : Discretization::kArgmax;
  o->alternate = r.Bool("alternate", o->alternate);
  o->seed = run.seed;
  if (absl::Status s = r.Finish(); !s.ok()) return s;
  if (run.quant.weight_quantizer != nn::WeightQuantizer::kHwgq || run.quant.act_quantizer != nn::ActQuantizer::kHwgq) {
    return absl::InvalidArgumentError(
        "\"weight_quantizer\": edmips searches HWGQ weights and activations: set weight_quantizer and act_quantizer "
        "to hwgq");
  }
  if (run.quant.granularity != nn::Granularity::kPerTensor) {
    return absl::InvalidArgumentError(
        "\"granularity\": edmips assigns one bit-width per layer: set granularity to per_tensor");
  }
  return std::shared_ptr<const MethodOptions>(std::move(o));
}

Json EdmipsOptions::ToJson() const {
  return Json{{"cd", cd},
              {"search_epochs", search_epochs},
              {"search_step_size", search_step_size},
              {"arch_lr", arch_lr},
              {"weight_candidates", absl::StrJoin(weight_candidates, ",")},
              {"act_candidates", absl::StrJoin(act_candidates, ",")},
              {"discretize", discretize == Discretization::kArgmax ? "argmax" : "sample"},
              {"alternate", alternate}};
}

std::shared_ptr<const models::ConvUnitFactory> EdmipsOptions::SearchUnits() const {
  return std::make_shared<EdmipsSearchUnits>(weight_candidates, act_candidates);
}

absl::StatusOr<ExpectedBitOps> ExpectedBitOps::Build(models::Model& model, std::vector<int64_t> input_shape) {
  std::map<const torch::nn::Module*, std::shared_ptr<torch::nn::Module>> owner;
  for (const auto& item : model.named_modules("", false)) owner[item.value().get()] = item.value();
  ExpectedBitOps e;
  {
    nn::LayerRecorder recorder;
    models::TraceForward(model, input_shape);
    std::map<const void*, const torch::nn::Module*> act_of;
    for (const nn::ActivationRecord& a : recorder.activations()) {
      if (dynamic_cast<const nn::MixQActImpl*>(a.module)) act_of[a.output.data_ptr()] = a.module;
    }
    for (const nn::LayerRecord& r : recorder.layers()) {
      if (!dynamic_cast<const nn::MixQConv2dImpl*>(r.module)) continue;
      Term t;
      t.macs = nn::Macs(r);
      t.conv = owner.at(r.module);
      auto it = act_of.find(r.input.data_ptr());
      if (it != act_of.end()) t.act = owner.at(it->second);
      e.terms_.push_back(std::move(t));
    }
  }
  if (e.terms_.empty()) {
    return absl::FailedPreconditionError(
        "edmips: the model has no MixQConv2d layer; build it with QuantConfig::units = EdmipsOptions::SearchUnits()");
  }
  e.reference_macs_ = e.terms_.front().macs;
  return e;
}

at::Tensor ExpectedBitOps::operator()() const {
  at::Tensor total;
  for (const Term& t : terms_) {
    const at::Tensor w = dynamic_cast<nn::MixQConv2dImpl&>(*t.conv).expected_weight_bits();
    const at::Tensor a = t.act ? dynamic_cast<nn::MixQActImpl&>(*t.act).expected_bits() : at::full({}, 32.0);
    const at::Tensor term = w * a * (t.macs / reference_macs_);
    total = total.defined() ? total + term : term;
  }
  return total;
}

Allocation Discretize(models::Model& model, Discretization how, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  Allocation a;
  std::vector<GroupBits> acts;
  for (const auto& [name, m] : MixedModules(model)) {
    at::Tensor alpha, candidates;
    const bool is_weight = dynamic_cast<nn::MixQConv2dImpl*>(m.get()) != nullptr;
    if (is_weight) {
      auto* c = dynamic_cast<nn::MixQConv2dImpl*>(m.get());
      alpha = c->alpha;
      candidates = c->candidate_bits;
    } else {
      auto* c = dynamic_cast<nn::MixQActImpl*>(m.get());
      alpha = c->alpha;
      candidates = c->candidate_bits;
    }
    // On the host, with the seeded CPU generator: the same allocation whatever the device.
    const at::Tensor p = at::softmax(alpha.detach().to(at::kCPU, at::kDouble), 0);
    const int64_t i = how == Discretization::kArgmax ? p.argmax().item<int64_t>()
                                                     : at::multinomial(p, 1, false, gen).item<int64_t>();
    (is_weight ? a.groups : acts).push_back({name, is_weight, 0, candidates[i].item<int64_t>()});
  }
  a.groups.insert(a.groups.end(), acts.begin(), acts.end());
  return a;
}

absl::StatusOr<AllocatorResult> EdmipsAllocator::Run(AllocatorContext& ctx) {
  const EdmipsOptions& o = options_;
  if (ctx.model == nullptr || ctx.train == nullptr || !ctx.make_model) {
    return absl::InvalidArgumentError("edmips: the context needs the search model, a training loader and make_model");
  }
  if (!(o.cd >= 0) || o.search_epochs < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("edmips: cd must be >= 0 (got ", o.cd, ") and search_epochs >= 1 (got ", o.search_epochs, ")"));
  }
  const bool persistent = !ctx.state_dir.empty();
  std::error_code ec;
  if (persistent) std::filesystem::create_directories(ctx.state_dir, ec);
  const std::string alloc_path = ctx.state_dir + "/allocation.json", done_path = ctx.state_dir + "/done.json";
  AllocatorResult result;
  result.details_json = Json{{"method", "edmips"},
                             {"cd", o.cd},
                             {"search_epochs", o.search_epochs},
                             {"discretize", o.discretize == Discretization::kArgmax ? "argmax" : "sample"},
                             {"alternate", o.alternate}}
                            .dump();
  auto paused = [&](int64_t point) {
    result.completed = false;
    result.stop_reason = "paused (stop_after_epochs)";
    result.final_point = point;
    return result;
  };

  // Search.
  Allocation allocation;
  if (persistent && std::filesystem::exists(alloc_path, ec)) {
    absl::StatusOr<Allocation> a = ReadAllocationFile(alloc_path);
    if (!a.ok()) return a.status();
    allocation = *a;
  } else {
    models::Model& search = *ctx.model;
    absl::StatusOr<ExpectedBitOps> penalty = ExpectedBitOps::Build(search, ctx.input_shape);
    if (!penalty.ok()) return penalty.status();
    std::vector<at::Tensor> arch;
    for (const auto& [name, m] : MixedModules(search)) {
      if (auto* c = dynamic_cast<nn::MixQConv2dImpl*>(m.get())) arch.push_back(c->alpha);
      if (auto* c = dynamic_cast<nn::MixQActImpl*>(m.get())) arch.push_back(c->alpha);
    }
    train::TrainOptions so = ctx.training;
    so.epochs = o.search_epochs;
    so.schedule = train::Schedule::kStep;
    so.step_size = o.search_step_size;
    so.gamma = 0.1;
    so.warmup_epochs = 0;
    so.arch_lr = o.arch_lr;
    so.arch_momentum = o.arch_momentum;
    so.arch_weight_decay = o.arch_weight_decay;
    so.alternate_arch = o.alternate;
    so.select_best = false;  // the search's result is its last architecture
    so.checkpoint_dir = persistent ? ctx.state_dir + "/search" : "";
    train::Trainer trainer(search, *ctx.train, ctx.validation, so);
    trainer.set_arch_parameters(arch);
    const ExpectedBitOps& cost = *penalty;
    trainer.set_extra_loss([&cost, cd = o.cd]() { return cost() * cd; });
    trainer.set_epoch_callback([&](const train::EpochStats& s) -> absl::Status {
      const int64_t point = s.epoch + 1;
      if (ctx.on_epoch) {
        if (absl::Status st = ctx.on_epoch({names::kPhaseSearch, point, static_cast<double>(point), s}); !st.ok()) {
          return st;
        }
      }
      std::vector<std::pair<std::string, double>> m;
      for (const auto& [name, mod] : MixedModules(search)) {
        at::Tensor alpha, candidates;
        std::string kind = "w";
        if (auto* c = dynamic_cast<nn::MixQConv2dImpl*>(mod.get())) {
          alpha = c->alpha;
          candidates = c->candidate_bits;
        } else {
          auto* a = dynamic_cast<nn::MixQActImpl*>(mod.get());
          alpha = a->alpha;
          candidates = a->candidate_bits;
          kind = "a";
        }
        const at::Tensor p = at::softmax(alpha.detach().to(at::kCPU, at::kDouble), 0);
        for (int64_t i = 0; i < p.numel(); ++i) {
          m.emplace_back(names::AlphaMetric(name, kind == "w", candidates[i].item<int64_t>()), p[i].item<double>());
        }
      }
      {
        at::NoGradGuard no_grad;
        m.emplace_back(names::kExpectedBitopsRatio, cost().item<double>());
      }
      if (ctx.on_metrics) {
        if (absl::Status st = ctx.on_metrics(point, m); !st.ok()) return st;
      }
      AllocationPoint p;
      p.index = point;
      p.allocation = ReadAllocation(search);
      p.val_top1 = s.val_top1;
      const bool was_training = search.is_training();
      search.eval();
      p.cost = cost::MeasureModelCost(
                   search, [&](const at::Tensor& x) { return search.forward(x); }, ctx.input_shape)
                   .totals;
      search.train(was_training);
      p.note = absl::StrFormat("search epoch %d: argmax architecture (validation of the soft network)", point);
      return ctx.on_point ? ctx.on_point(p) : absl::OkStatus();
    });
    absl::StatusOr<train::TrainResult> r = trainer.Run();
    if (!r.ok()) return r.status();
    if (!r->completed) return paused(static_cast<int64_t>(r->history.size()));
    allocation = Discretize(search, o.discretize, o.seed);
    if (persistent) {
      if (absl::Status s = runtime::WriteChecksummedFile(alloc_path, AllocationToJson(allocation)); !s.ok()) return s;
    }
  }

  // Retrain the discrete network.
  std::shared_ptr<models::Model> discrete = ctx.make_model();
  if (absl::Status s = ApplyAllocation(*discrete, allocation); !s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("edmips: the searched allocation does not fit the discrete network: ", s.message()));
  }
  train::TrainOptions ro = ctx.training;
  ro.checkpoint_dir = persistent ? ctx.state_dir + "/retrain" : "";
  const int64_t final_point = o.search_epochs + 1;
  train::Trainer retrain(*discrete, *ctx.train, ctx.validation, ro);
  retrain.set_epoch_callback([&](const train::EpochStats& s) {
    return ctx.on_epoch ? ctx.on_epoch({names::kPhaseTrain, s.epoch + 1, s.epoch + 1.0, s}) : absl::OkStatus();
  });
  absl::StatusOr<train::TrainResult> rr = retrain.Run();
  if (!rr.ok()) return rr.status();
  if (!rr->completed) return paused(o.search_epochs);
  if (!(persistent && std::filesystem::exists(done_path, ec))) {
    AllocatorContext final_ctx = ctx;
    final_ctx.model = discrete.get();
    absl::StatusOr<AllocationPoint> p = MeasurePoint(final_ctx, final_point, "retrained discrete network");
    if (!p.ok()) return p.status();
    if (ctx.on_point) {
      if (absl::Status s = ctx.on_point(*p); !s.ok()) return s;
    }
    if (persistent) {
      if (absl::Status s = train::WriteJsonFile(done_path, Json{{"final_point", final_point}}); !s.ok()) return s;
    }
  }
  result.completed = true;
  result.model = discrete;
  result.allocation = ReadAllocation(*discrete);
  result.final_point = final_point;
  result.points = final_point;
  result.stop_reason = absl::StrFormat("searched %d epochs, retrained %d", o.search_epochs, ro.epochs);
  return result;
}

}  // namespace mpq::alloc
