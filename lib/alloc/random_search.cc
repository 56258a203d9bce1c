#include "lib/alloc/random_search.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "datasets/random.h"
#include "lib/alloc/option_reader.h"
#include "lib/train/state.h"

namespace mpq::alloc {
namespace {

using Json = nlohmann::json;

double CostOf(const std::vector<cost::LayerCost>& layers, const Allocation& a, BudgetMetric metric) {
  const cost::CostTotals t = cost::CostOfAllocation(layers, a).totals;
  return metric == BudgetMetric::kBitOps ? t.bitops : t.weight_bytes;
}

const char* Name(BudgetMetric m) { return m == BudgetMetric::kBitOps ? "bitops" : "weight_size"; }

}  // namespace

absl::StatusOr<std::shared_ptr<const MethodOptions>> RandomSearchOptions::Parse(const Json* options,
                                                                                const MethodContext& run) {
  auto o = std::make_shared<RandomSearchOptions>();
  OptionReader r(options, "random.");
  o->samples = r.Integer("samples", o->samples, 1, 100000);
  o->finetune_epochs = r.Integer("finetune_epochs", o->finetune_epochs, 1, 100000);
  o->finetune_lr = r.Number("finetune_lr", o->finetune_lr, Range::Positive());
  o->budget = r.OneOf("budget", Name(o->budget), {"bitops", "weight_size"}) == "bitops" ? BudgetMetric::kBitOps
                                                                                          : BudgetMetric::kWeightSize;
  o->budget_fraction = r.Number("budget_fraction", o->budget_fraction, {0, 1, true, false});
  o->budget_bits = r.Integer("budget_bits", o->budget_bits, 0, 16);
  o->weight_candidates = r.BitList("weight_candidates", o->weight_candidates, /*allow_empty=*/false);
  o->act_candidates = r.BitList("act_candidates", o->act_candidates, /*allow_empty=*/true);
  o->seed = run.seed;
  if (absl::Status s = r.Finish(); !s.ok()) return s;
  if (run.quant.weight_quantizer == nn::WeightQuantizer::kNone || run.quant.weight_bits == nn::kFullPrecision) {
    return absl::InvalidArgumentError(
        "\"weight_bits\": random search starts from a quantized model: set weight_quantizer and weight_bits (e.g. lin, "
        "4)");
  }
  if (!o->act_candidates.empty() && run.quant.act_quantizer == nn::ActQuantizer::kNone) {
    return absl::InvalidArgumentError("\"random.act_candidates\": sampling activation bits needs an act_quantizer");
  }
  if (run.validation_fraction == 0) {
    return absl::InvalidArgumentError(
        "\"validation_fraction\": random search keeps the best sample on validation: set validation_fraction > 0");
  }
  return std::shared_ptr<const MethodOptions>(std::move(o));
}

Json RandomSearchOptions::ToJson() const {
  return Json{{"samples", samples},
              {"finetune_epochs", finetune_epochs},
              {"finetune_lr", finetune_lr},
              {"budget", Name(budget)},
              {"budget_fraction", budget_fraction},
              {"budget_bits", budget_bits},
              {"weight_candidates", absl::StrJoin(weight_candidates, ",")},
              {"act_candidates", absl::StrJoin(act_candidates, ",")}};
}

double BudgetOf(const Allocation& start, const std::vector<cost::LayerCost>& layers, const RandomSearchOptions& o) {
  if (o.budget_bits == 0) return o.budget_fraction * CostOf(layers, start, o.budget);
  Allocation uniform = start;
  for (GroupBits& g : uniform.groups) {
    if (g.bits != nn::kFullPrecision) g.bits = o.budget_bits;
  }
  return CostOf(layers, uniform, o.budget);
}

absl::StatusOr<Allocation> SampleAllocation(const Allocation& start, const std::vector<cost::LayerCost>& layers,
                                            const RandomSearchOptions& o, double budget, uint64_t seed) {
  data::Rng rng(seed);
  Allocation a = start;
  std::vector<size_t> sampled;  // indices into a.groups
  auto candidates_of = [&](const GroupBits& g) -> const std::vector<int64_t>& {
    return g.is_weight ? o.weight_candidates : o.act_candidates;
  };
  for (size_t i = 0; i < a.groups.size(); ++i) {
    GroupBits& g = a.groups[i];
    if (g.bits == nn::kFullPrecision || candidates_of(g).empty()) continue;  // FP layers stay FP
    const std::vector<int64_t>& c = candidates_of(g);
    g.bits = c[rng.UniformInt(static_cast<int64_t>(c.size()))];
    sampled.push_back(i);
  }
  double cost = CostOf(layers, a, o.budget);
  while (cost > budget) {
    std::vector<size_t> lowerable;
    for (size_t i : sampled) {
      if (a.groups[i].bits > candidates_of(a.groups[i]).front()) lowerable.push_back(i);
    }
    if (lowerable.empty()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "random: the budget (%s %.6g) is below the cost of every group at its smallest candidate (%.6g); raise "
          "budget_fraction or add smaller candidates",
          Name(o.budget), budget, cost));
    }
    GroupBits& g = a.groups[lowerable[rng.UniformInt(static_cast<int64_t>(lowerable.size()))]];
    const std::vector<int64_t>& c = candidates_of(g);
    g.bits = *(std::lower_bound(c.begin(), c.end(), g.bits) - 1);  // the next smaller candidate
    cost = CostOf(layers, a, o.budget);
  }
  return a;
}

absl::StatusOr<AllocatorResult> RandomSearchAllocator::Run(AllocatorContext& ctx) {
  const RandomSearchOptions& o = options_;
  if (ctx.model == nullptr || ctx.train == nullptr || ctx.validation == nullptr) {
    return absl::InvalidArgumentError("random: the context needs a model, a training and a validation loader");
  }
  models::Model& model = *ctx.model;
  const bool persistent = !ctx.state_dir.empty();
  std::error_code ec;
  if (persistent) {
    std::filesystem::create_directories(ctx.state_dir, ec);
    if (ec) return absl::PermissionDeniedError(absl::StrCat("random: cannot create ", ctx.state_dir, ": ", ec.message()));
  }
  auto path = [&](const std::string& name) { return ctx.state_dir + "/" + name; };
  auto report = [&](const AllocationPoint& p) { return ctx.on_point ? ctx.on_point(p) : absl::OkStatus(); };

  Json state = {{"done", -1}, {"best", 0}, {"best_val_top1", -1.0}};
  if (persistent && std::filesystem::exists(path("state.json"), ec)) {
    absl::StatusOr<Json> s = train::ReadJsonState(path("state.json"), state);
    if (!s.ok()) return s.status();
    state = *s;
    if (absl::Status st = train::LoadModule(model, path("start.pt")); !st.ok()) return st;
  }
  auto save_state = [&]() { return persistent ? train::WriteJsonFile(path("state.json"), state) : absl::OkStatus(); };
  if (state["done"].get<int64_t>() < 0) {  // point 0: the trained starting model
    absl::StatusOr<AllocationPoint> p0 = MeasurePoint(ctx, 0, "start (the spec's uniform bits)");
    if (!p0.ok()) return p0.status();
    if (absl::Status s = report(*p0); !s.ok()) return s;
    if (persistent) {
      if (absl::Status s = train::SaveModule(model, path("start.pt")); !s.ok()) return s;
    }
    state["done"] = 0;
    if (absl::Status s = save_state(); !s.ok()) return s;
  }

  const std::vector<at::Tensor> start_state = train::CopyState(model);
  const Allocation start = ReadAllocation(model);
  model.eval();
  const cost::CostReport start_cost = cost::MeasureModelCost(
      model, [&](const at::Tensor& x) { return model.forward(x); }, ctx.input_shape);
  const double budget = BudgetOf(start, start_cost.layers, o);
  std::vector<at::Tensor> best_state;  // in memory when there is no state directory
  for (int64_t k = state["done"].get<int64_t>() + 1; k <= o.samples; ++k) {
    train::RestoreState(model, start_state);
    absl::StatusOr<Allocation> a = SampleAllocation(start, start_cost.layers, o, budget, data::MixSeed(o.seed, k));
    if (!a.ok()) return a.status();
    if (absl::Status s = ApplyAllocation(model, *a); !s.ok()) return s;
    train::TrainOptions to = ctx.training;
    to.epochs = o.finetune_epochs;
    to.lr = o.finetune_lr;
    to.warmup_epochs = 0;
    to.checkpoint_dir = persistent ? path(absl::StrCat("sample_", k)) : "";
    train::Trainer trainer(model, *ctx.train, ctx.validation, to);
    trainer.set_epoch_callback([&](const train::EpochStats& s) {
      return ctx.on_epoch ? ctx.on_epoch({names::kPhaseFinetune, k * 10000 + s.epoch,
                                          k - 1 + (s.epoch + 1.0) / o.finetune_epochs, s})
                          : absl::OkStatus();
    });
    absl::StatusOr<train::TrainResult> tr = trainer.Run();
    if (!tr.ok()) return tr.status();
    absl::StatusOr<AllocationPoint> p =
        MeasurePoint(ctx, k, absl::StrFormat("sample %d of %d under %s budget %.4g", k, o.samples, Name(o.budget), budget));
    if (!p.ok()) return p.status();
    if (absl::Status s = report(*p); !s.ok()) return s;
    if (persistent) {
      if (absl::Status s = train::SaveModule(model, path(absl::StrCat("sample_", k, ".pt"))); !s.ok()) return s;
    }
    if (p->val_top1 > state["best_val_top1"].get<double>()) {
      state["best"] = k;
      state["best_val_top1"] = p->val_top1;
      if (!persistent) best_state = train::CopyState(model);
    }
    state["done"] = k;
    if (absl::Status s = save_state(); !s.ok()) return s;
  }

  const int64_t best = state["best"].get<int64_t>();
  if (persistent) {
    if (absl::Status s = train::LoadModule(model, path(absl::StrCat("sample_", best, ".pt"))); !s.ok()) return s;
  } else {
    train::RestoreState(model, best_state);
  }
  AllocatorResult result;
  result.completed = true;
  result.final_point = best;
  result.points = o.samples + 1;
  result.allocation = ReadAllocation(model);
  result.stop_reason = absl::StrFormat("best of %d samples on validation: sample %d (%.2f%%)", o.samples, best,
                                       state["best_val_top1"].get<double>());
  Json details = o.ToJson();
  details["method"] = "random";
  details["budget_value"] = budget;
  details[names::kDetailsStopReason] = result.stop_reason;
  result.details_json = details.dump();
  return result;
}

}  // namespace mpq::alloc
