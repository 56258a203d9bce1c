#include "lib/alloc/impq.h"

#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lib/alloc/metric_names.h"
#include "lib/alloc/option_reader.h"
#include "lib/cost/cost_model.h"
#include "lib/train/state.h"

namespace mpq::alloc {
namespace {

using Json = nlohmann::json;

}  // namespace

absl::StatusOr<std::shared_ptr<const MethodOptions>> ImpqOptions::Parse(const Json* options, const MethodContext& run) {
  auto o = std::make_shared<ImpqOptions>();
  OptionReader r(options, "impq.");
  const std::string metric = r.OneOf("metric", Name(o->metric), {"paper", "code"});
  o->metric = metric == "code" ? SensitivityMetric::kCode : SensitivityMetric::kPaper;
  const std::string reduction = r.OneOf("reduction", Name(o->reduction), {"exact", "threshold"});
  o->reduction = reduction == "threshold" ? ReductionRule::kThreshold : ReductionRule::kExact;
  o->sensitivity.eval_top = r.Integer("eval_top", o->sensitivity.eval_top, 0, 1 << 20);
  o->eval_fraction = r.Number("eval_fraction", o->eval_fraction, {0, 1, true, false});
  for (auto [key, schedule] : {std::pair<const char*, Schedule*>{"weight_schedule", &o->weight_schedule},
                               {"act_schedule", &o->act_schedule}}) {
    absl::StatusOr<Schedule> parsed = ParseSchedule(r.String(key, FormatSchedule(*schedule)));
    if (parsed.ok()) {
      *schedule = *parsed;
    } else {
      r.Fail(key, std::string(parsed.status().message()));
    }
  }
  o->max_iterations = r.Integer("max_iterations", o->max_iterations, 1, 100000);
  o->finetune_epochs = r.Integer("finetune_epochs", o->finetune_epochs, 1, 100000);
  o->finetune_lr = r.Number("finetune_lr", o->finetune_lr, Range::Positive());
  o->finetune_warmup_epochs = r.Integer("finetune_warmup_epochs", o->finetune_warmup_epochs, 0, o->finetune_epochs);
  o->target_bw_eff = r.Number("target_bw_eff", o->target_bw_eff, Range::Closed(0, 32));
  o->target_cc = r.Number("target_cc_gbitops", o->target_cc / 1e9, Range::NonNegative()) * 1e9;
  o->budget_bits = r.Integer("budget_bits", o->budget_bits, 0, 16);
  o->spend_budget = r.Bool("spend_budget", o->spend_budget);
  o->max_val_drop = r.Number("max_val_drop", o->max_val_drop, Range::Closed(-1, 100));
  o->min_weight_bits = r.Integer("min_weight_bits", o->min_weight_bits, 1, 16);
  o->min_act_bits = r.Integer("min_act_bits", o->min_act_bits, 1, 16);
  if (absl::Status s = r.Finish(); !s.ok()) return s;
  if (run.quant.weight_quantizer == nn::WeightQuantizer::kNone || run.quant.weight_bits == nn::kFullPrecision) {
    return absl::InvalidArgumentError(
        "\"weight_bits\": impq starts from a quantized model: set weight_quantizer and weight_bits (e.g. lin, 4)");
  }
  if (!o->act_schedule.empty() && run.quant.act_quantizer == nn::ActQuantizer::kNone) {
    return absl::InvalidArgumentError(
        "\"impq.act_schedule\": reducing activation bits needs an act_quantizer (e.g. pact)");
  }
  if (o->max_val_drop >= 0 && run.validation_fraction == 0) {
    return absl::InvalidArgumentError("\"impq.max_val_drop\": needs a validation split (validation_fraction > 0)");
  }
  return std::shared_ptr<const MethodOptions>(std::move(o));
}

Json ImpqOptions::ToJson() const {
  return Json{{"metric", Name(metric)},
              {"reduction", Name(reduction)},
              {"eval_top", sensitivity.eval_top},
              {"eval_fraction", eval_fraction},
              {"weight_schedule", FormatSchedule(weight_schedule)},
              {"act_schedule", FormatSchedule(act_schedule)},
              {"max_iterations", max_iterations},
              {"finetune_epochs", finetune_epochs},
              {"finetune_lr", finetune_lr},
              {"finetune_warmup_epochs", finetune_warmup_epochs},
              {"target_bw_eff", target_bw_eff},
              {"target_cc_gbitops", target_cc / 1e9},
              {"budget_bits", budget_bits},
              {"spend_budget", spend_budget},
              {"max_val_drop", max_val_drop},
              {"min_weight_bits", min_weight_bits},
              {"min_act_bits", min_act_bits}};
}

absl::StatusOr<std::pair<int64_t, int64_t>> ImpqAllocator::Reduce(torch::nn::Module& model,
                                                                  const std::vector<GroupSensitivity>& sensitivity,
                                                                  const ImpqOptions& options, int64_t iteration) {
  std::vector<GroupSensitivity> weights, acts;
  for (const GroupSensitivity& g : sensitivity) (g.is_weight ? weights : acts).push_back(g);
  const std::vector<size_t> w = SelectForReduction(weights, options.metric, GroupsAt(options.weight_schedule, iteration),
                                                   options.min_weight_bits, options.reduction);
  const std::vector<size_t> a = SelectForReduction(acts, options.metric, GroupsAt(options.act_schedule, iteration),
                                                   options.min_act_bits, options.reduction);
  Allocation change;
  for (size_t i : w) change.groups.push_back({weights[i].layer, true, weights[i].group, weights[i].bits - 1});
  for (size_t i : a) change.groups.push_back({acts[i].layer, false, 0, acts[i].bits - 1});
  if (absl::Status s = ApplyAllocation(model, change); !s.ok()) return s;
  return std::make_pair(static_cast<int64_t>(w.size()), static_cast<int64_t>(a.size()));
}

absl::StatusOr<AllocatorResult> ImpqAllocator::Run(AllocatorContext& ctx) {
  const ImpqOptions& o = options_;
  if (ctx.model == nullptr || ctx.train == nullptr || ctx.calibration == nullptr) {
    return absl::InvalidArgumentError("impq: the context needs a model, a training loader and a calibration loader");
  }
  if (o.max_val_drop >= 0 && ctx.validation == nullptr) {
    return absl::InvalidArgumentError("impq: max_val_drop needs a validation loader (validation_fraction > 0)");
  }
  if (o.min_weight_bits < 1 || o.min_act_bits < 1) {
    return absl::InvalidArgumentError(absl::StrCat("impq: bit floors must be >= 1 (weights ", o.min_weight_bits,
                                                   ", activations ", o.min_act_bits, ")"));
  }
  models::Model& model = *ctx.model;
  const bool persistent = !ctx.state_dir.empty();
  std::error_code ec;
  if (persistent) {
    std::filesystem::create_directories(ctx.state_dir, ec);
    if (ec) return absl::PermissionDeniedError(absl::StrCat("impq: cannot create ", ctx.state_dir, ": ", ec.message()));
  }
  auto path = [&](const std::string& name) { return ctx.state_dir + "/" + name; };
  auto point_path = [&](int64_t i) { return path(absl::StrCat("point_", i, ".pt")); };

  const Json details = {{"method", "impq"},
                        {"metric", Name(o.metric)},
                        {"reduction", Name(o.reduction)},
                        {"eval_top", o.sensitivity.eval_top},
                        {"mode", o.act_schedule.empty() ? "weights" : "weights_activations"},
                        {"finetune_epochs", o.finetune_epochs},
                        {"finetune_lr", o.finetune_lr},
                        {"max_iterations", o.max_iterations}};
  Json state = {{"done", -1},         {"base_val_top1", 0.0},      {"stopped", false}, {"final", 0},
                {"reason", ""},       {"target_bitops", 0.0},      {"spent", false},
                {"sensitivity_passes", 0.0}};
  if (persistent && std::filesystem::exists(path("state.json"), ec)) {
    absl::StatusOr<Json> s = train::ReadJsonState(path("state.json"), state);
    if (!s.ok()) return s.status();
    state = *s;
    if (absl::Status st = train::LoadModule(model, point_path(state["done"].get<int64_t>())); !st.ok()) return st;
  }
  auto save_state = [&]() { return persistent ? train::WriteJsonFile(path("state.json"), state) : absl::OkStatus(); };
  auto report = [&](const AllocationPoint& p) { return ctx.on_point ? ctx.on_point(p) : absl::OkStatus(); };

  AllocatorResult result;
  result.details_json = details.dump();
  if (state["done"].get<int64_t>() < 0) {  // point 0: the starting model
    absl::StatusOr<AllocationPoint> p0 = MeasurePoint(ctx, 0, "start");
    if (!p0.ok()) return p0.status();
    if (absl::Status s = report(*p0); !s.ok()) return s;
    if (persistent) {
      if (absl::Status s = train::SaveModule(model, point_path(0)); !s.ok()) return s;
    }
    state["done"] = 0;
    state["base_val_top1"] = p0->val_top1;
    if (o.budget_bits > 0) {  // the BitOps of the start with every quantized group at budget_bits
      Allocation at_bits = ReadAllocation(model);
      for (GroupBits& g : at_bits.groups) {
        if (g.bits != nn::kFullPrecision) g.bits = o.budget_bits;
      }
      const bool was_training = model.is_training();
      model.eval();
      const cost::CostReport start = cost::MeasureModelCost(
          model, [&](const at::Tensor& x) { return model.forward(x); }, ctx.input_shape);
      model.train(was_training);
      state["target_bitops"] = cost::CostOfAllocation(start.layers, at_bits).totals.bitops;
      if (p0->cost.bitops <= state["target_bitops"].get<double>()) {
        state["stopped"] = true;
        state["final"] = 0;
        state["reason"] = absl::StrFormat("the start's BitOps %.4g are within the budget %.4g (budget_bits %d)",
                                          p0->cost.bitops, state["target_bitops"].get<double>(), o.budget_bits);
      }
    }
    if (absl::Status s = save_state(); !s.ok()) return s;
  }

  int64_t epochs_left = o.stop_after_finetune_epochs;
  while (!state["stopped"].get<bool>()) {
    const int64_t i = state["done"].get<int64_t>() + 1;
    if (i > o.max_iterations) {
      state["stopped"] = true;
      state["final"] = i - 1;
      state["reason"] = absl::StrCat("reached max_iterations ", o.max_iterations);
      if (absl::Status s = save_state(); !s.ok()) return s;
      break;
    }
    const std::string dir = path(absl::StrCat("iter_", i));
    if (persistent) std::filesystem::create_directories(dir, ec);
    std::string note;
    double passes = 0;  // this iteration's sensitivity pass: examples x classes compared
    if (persistent && std::filesystem::exists(dir + "/reduced.pt", ec)) {
      if (absl::Status s = train::LoadModule(model, dir + "/reduced.pt"); !s.ok()) return s;
      absl::StatusOr<Json> r = train::ReadJsonState(dir + "/reduced.json", Json{{"note", ""}, {"passes", 0.0}});
      if (!r.ok()) return r.status();
      note = (*r)["note"].get<std::string>();
      passes = (*r)["passes"].get<double>();
    } else {
      absl::StatusOr<SensitivityReport> sens = MeasureSensitivity(model, *ctx.calibration, o.sensitivity);
      if (!sens.ok()) return sens.status();
      passes = static_cast<double>(sens->examples) * static_cast<double>(sens->classes_compared);
      absl::StatusOr<std::pair<int64_t, int64_t>> lowered = Reduce(model, sens->groups, o, i - 1);
      if (!lowered.ok()) return lowered.status();
      if (lowered->first + lowered->second == 0) {
        state["sensitivity_passes"] = state["sensitivity_passes"].get<double>() + passes;
        state["stopped"] = true;
        state["final"] = i - 1;
        state["reason"] = "no group above the bit floor";
        if (absl::Status s = save_state(); !s.ok()) return s;
        break;
      }
      note = absl::StrFormat("iteration %d: lowered %d weight and %d activation groups (%s metric, %d examples, %.1f s)",
                             i, lowered->first, lowered->second, Name(o.metric), sens->examples, sens->seconds);
      if (persistent) {
        // reduced.pt is the marker a resume checks, so it is written last: a kill between
        // the two files leaves only the note, and the resumed run redoes this (seeded,
        // deterministic) reduction. The other order left a marker without its note.
        if (absl::Status s = train::WriteJsonFile(dir + "/reduced.json", Json{{"note", note}, {"passes", passes}});
            !s.ok()) {
          return s;
        }
        if (absl::Status s = train::SaveModule(model, dir + "/reduced.pt"); !s.ok()) return s;
      }
    }
    if (ctx.training.progress) {
      absl::PrintF("impq: %s\n", note);
      std::fflush(stdout);
    }

    train::TrainOptions to = ctx.training;
    to.epochs = o.finetune_epochs;
    to.lr = o.finetune_lr;
    to.warmup_epochs = o.finetune_warmup_epochs;
    to.checkpoint_dir = persistent ? dir : "";
    to.stop_after_epochs = o.stop_after_finetune_epochs > 0 ? std::max<int64_t>(epochs_left, 0) : 0;
    if (o.stop_after_finetune_epochs > 0 && epochs_left <= 0) {
      result.completed = false;
      result.stop_reason = "paused (stop_after_finetune_epochs)";
      result.final_point = i - 1;
      result.points = i;
      result.allocation = ReadAllocation(model);
      return result;
    }
    train::Trainer trainer(model, *ctx.train, ctx.validation, to);
    trainer.set_epoch_callback([&](const train::EpochStats& s) {
      --epochs_left;
      return ctx.on_epoch ? ctx.on_epoch({names::kPhaseFinetune, i * 10000 + s.epoch,
                                          i - 1 + (s.epoch + 1.0) / o.finetune_epochs, s})
                          : absl::OkStatus();
    });
    absl::StatusOr<train::TrainResult> tr = trainer.Run();
    if (!tr.ok()) return tr.status();
    if (!tr->completed) {
      result.completed = false;
      result.stop_reason = "paused (stop_after_finetune_epochs)";
      result.final_point = i - 1;
      result.points = i;
      result.allocation = ReadAllocation(model);
      return result;
    }

    absl::StatusOr<AllocationPoint> p = MeasurePoint(ctx, i, note);
    if (!p.ok()) return p.status();
    if (absl::Status s = report(*p); !s.ok()) return s;
    if (persistent) {
      if (absl::Status s = train::SaveModule(model, point_path(i)); !s.ok()) return s;
    }
    state["done"] = i;
    state["sensitivity_passes"] = state["sensitivity_passes"].get<double>() + passes;
    const double drop = state["base_val_top1"].get<double>() - p->val_top1;
    if (o.max_val_drop >= 0 && drop > o.max_val_drop) {
      state["stopped"] = true;
      state["final"] = i - 1;
      state["reason"] = absl::StrFormat("validation top-1 dropped %.2f points at iteration %d (> %.2f); kept iteration %d",
                                        drop, i, o.max_val_drop, i - 1);
    } else if (o.target_bw_eff > 0 && p->cost.bw_eff <= o.target_bw_eff) {
      state["stopped"] = true;
      state["final"] = i;
      state["reason"] = absl::StrFormat("B_w,eff %.3f reached the target %.3f", p->cost.bw_eff, o.target_bw_eff);
    } else if (o.target_cc > 0 && p->cost.cc <= o.target_cc) {
      state["stopped"] = true;
      state["final"] = i;
      state["reason"] = absl::StrFormat("C_C %.4g reached the target %.4g", p->cost.cc, o.target_cc);
    } else if (o.budget_bits > 0 && p->cost.bitops <= state["target_bitops"].get<double>()) {
      state["stopped"] = true;
      state["final"] = i;
      state["reason"] = absl::StrFormat("BitOps %.4g reached the budget %.4g (the start at %d bits)", p->cost.bitops,
                                        state["target_bitops"].get<double>(), o.budget_bits);
    }
    if (absl::Status s = save_state(); !s.ok()) return s;
  }

  const int64_t final_point = state["final"].get<int64_t>();
  if (final_point != state["done"].get<int64_t>()) {
    if (!persistent) return absl::FailedPreconditionError("impq: reverting to an earlier iteration needs a state_dir");
    if (absl::Status s = train::LoadModule(model, point_path(final_point)); !s.ok()) return s;
  }
  // spend_budget: the kept iteration is fine-tuned for the epochs of the iterations not run.
  const int64_t unused_epochs = (o.max_iterations - state["done"].get<int64_t>()) * o.finetune_epochs;
  if (o.spend_budget && unused_epochs > 0 && !state["spent"].get<bool>()) {
    const int64_t i = state["done"].get<int64_t>() + 1;
    train::TrainOptions to = ctx.training;
    to.epochs = unused_epochs;
    to.lr = o.finetune_lr;
    to.warmup_epochs = std::min(o.finetune_warmup_epochs, unused_epochs);
    to.checkpoint_dir = persistent ? path("spend") : "";
    to.stop_after_epochs = o.stop_after_finetune_epochs > 0 ? std::max<int64_t>(epochs_left, 0) : 0;
    auto paused = [&]() {
      result.completed = false;
      result.stop_reason = "paused (stop_after_finetune_epochs)";
      result.final_point = final_point;
      result.points = i;
      result.allocation = ReadAllocation(model);
      return result;
    };
    if (o.stop_after_finetune_epochs > 0 && epochs_left <= 0) return paused();
    train::Trainer trainer(model, *ctx.train, ctx.validation, to);
    trainer.set_epoch_callback([&](const train::EpochStats& s) {
      --epochs_left;
      return ctx.on_epoch ? ctx.on_epoch({names::kPhaseFinetune, i * 10000 + s.epoch,
                                          i - 1 + (s.epoch + 1.0) / unused_epochs, s})
                          : absl::OkStatus();
    });
    absl::StatusOr<train::TrainResult> tr = trainer.Run();
    if (!tr.ok()) return tr.status();
    if (!tr->completed) return paused();
    const std::string note =
        absl::StrFormat("spend_budget: iteration %d's allocation fine-tuned for the %d unused epochs; epoch %d kept",
                        final_point, unused_epochs, tr->best_epoch + 1);
    absl::StatusOr<AllocationPoint> p = MeasurePoint(ctx, i, note);
    if (!p.ok()) return p.status();
    if (absl::Status s = report(*p); !s.ok()) return s;
    if (persistent) {
      if (absl::Status s = train::SaveModule(model, point_path(i)); !s.ok()) return s;
    }
    state["done"] = i;
    state["final"] = i;
    state["spent"] = true;
    state["reason"] = absl::StrCat(state["reason"].get<std::string>(), "; then ", note);
    if (absl::Status s = save_state(); !s.ok()) return s;
    if (ctx.training.progress) absl::PrintF("impq: %s\n", note);
  }
  result.completed = true;
  result.final_point = state["final"].get<int64_t>();
  result.points = state["done"].get<int64_t>() + 1;
  result.stop_reason = state["reason"].get<std::string>();
  result.allocation = ReadAllocation(model);
  Json d = details;
  d["stop_reason"] = result.stop_reason;
  d["final_point"] = result.final_point;
  if (o.budget_bits > 0) d["target_bitops"] = state["target_bitops"];
  d["sensitivity_example_passes"] = state["sensitivity_passes"];
  if (ctx.train->num_examples() > 0) {
    d[names::kDetailsSensitivityEpochs] =
        state["sensitivity_passes"].get<double>() / static_cast<double>(ctx.train->num_examples());
  }
  result.details_json = d.dump();
  if (ctx.training.progress) {
    absl::PrintF("impq: stopped: %s (final point %d)\n", result.stop_reason, result.final_point);
  }
  return result;
}

}  // namespace mpq::alloc
