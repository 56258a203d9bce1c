#include "lib/alloc/bitpruning.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "lib/alloc/option_reader.h"
#include "lib/alloc/trained_state.h"
#include "lib/cost/cost_model.h"
#include "lib/nn/layer_record.h"
#include "lib/nn/qact.h"
#include "lib/nn/qconv.h"
#include "lib/runtime/name_table.h"
#include "lib/train/state.h"

namespace mpq::alloc {
namespace {

using Json = nlohmann::json;

constexpr std::pair<BitCost, const char*> kCostNames[] = {
    {BitCost::kBits, "bits"}, {BitCost::kMemory, "memory"}, {BitCost::kBitOps, "bitops"}};

std::vector<at::Tensor> FracBitsParameters(const std::vector<FracBitsQuantizer>& quantizers) {
  std::vector<at::Tensor> p;
  for (const FracBitsQuantizer& q : quantizers) p.push_back(q.fbits);
  return p;
}

// Sets each activation clip to the `quantile` of its input over the first batch of
// `loader` (eval mode, no gradients): the quantizers pass through meanwhile.
absl::Status InitialiseClips(models::Model& net, const std::vector<FracBitsQuantizer>& quantizers,
                             data::DataLoader& loader, double quantile) {
  std::map<const torch::nn::Module*, const FracBitsQuantizer*> acts;
  std::vector<at::Tensor> saved;
  for (const FracBitsQuantizer& q : quantizers) {
    if (q.is_weight) continue;
    acts[q.module] = &q;
    saved.push_back(q.bits.clone());
    q.bits.fill_(nn::kFullPrecision);
  }
  if (acts.empty()) return absl::OkStatus();
  const bool was_training = net.is_training();
  net.eval();
  absl::Status status;
  {
    at::NoGradGuard no_grad;
    nn::LayerRecorder recorder;
    loader.StartEpoch(0);
    data::Batch batch;
    absl::StatusOr<bool> more = loader.Next(&batch);
    if (!more.ok()) {
      status = more.status();
    } else if (!*more) {
      status = absl::FailedPreconditionError("bitpruning: the calibration loader has no batch to set the clips on");
    } else {
      net.forward(batch.images);
      for (const nn::ActivationRecord& r : recorder.activations()) {
        auto it = acts.find(r.module);
        if (it == acts.end()) continue;
        at::Tensor x = r.output.detach().flatten();
        constexpr int64_t kSample = 1 << 20;  // at::quantile sorts: a strided sample of large inputs
        if (x.numel() > kSample) x = x.slice(0, 0, x.numel(), (x.numel() + kSample - 1) / kSample);
        const double clip = std::max(at::quantile(x, quantile).item<double>(), 1e-3);
        it->second->alpha.detach().fill_(clip);
      }
    }
  }
  size_t i = 0;
  for (const FracBitsQuantizer& q : quantizers) {
    if (!q.is_weight) q.bits.copy_(saved[i++]);
  }
  net.train(was_training);
  return status;
}

std::string Fixed2(double v) { return absl::StrFormat("%.2f", v); }

}  // namespace

const char* Name(BitCost c) { return runtime::NameIn(kCostNames, c); }

absl::StatusOr<std::vector<FracBitsQuantizer>> FindFracBitsQuantizers(models::Model& model,
                                                                      const std::vector<int64_t>& input_shape) {
  const std::map<const torch::nn::Module*, int64_t> act_elements = models::ActivationElements(model, input_shape);
  std::vector<FracBitsQuantizer> weights, acts;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    torch::nn::Module* m = item.value().get();
    const nn::WeightQuantization* wq = nullptr;
    at::Tensor weight;
    if (auto* c = dynamic_cast<nn::QConv2dImpl*>(m)) {
      wq = &c->quantization;
      weight = c->weight;
    } else if (auto* f = dynamic_cast<nn::QLinearImpl*>(m)) {
      wq = &f->quantization;
      weight = f->weight;
    }
    if (wq != nullptr) {
      const bool full_precision = wq->kind == nn::WeightQuantizer::kNone ||
                                  wq->bits.min().item<int64_t>() == nn::kFullPrecision;
      if (full_precision) continue;
      if (wq->kind != nn::WeightQuantizer::kFracBits) {
        return absl::FailedPreconditionError(absl::StrCat("bitpruning: layer ", item.key(),
                                                          " quantizes its weights with ", nn::Name(wq->kind),
                                                          "; every quantized layer needs fracbits"));
      }
      FracBitsQuantizer q;
      q.name = item.key();
      q.module = m;
      q.is_weight = true;
      q.fbits = wq->fbits;
      q.bits = wq->bits;
      q.elements_per_group = static_cast<double>(weight.numel()) / wq->bits.numel();
      weights.push_back(std::move(q));
      continue;
    }
    auto* act = dynamic_cast<nn::QActImpl*>(m);
    if (act == nullptr || act->options.quantizer() == nn::ActQuantizer::kNone ||
        act->current_bits() == nn::kFullPrecision) {
      continue;
    }
    if (act->options.quantizer() != nn::ActQuantizer::kFracBits) {
      return absl::FailedPreconditionError(absl::StrCat("bitpruning: activation ", item.key(), " uses ",
                                                        nn::Name(act->options.quantizer()), "; expected fracbits"));
    }
    auto it = act_elements.find(m);
    if (it == act_elements.end()) continue;  // never called on this input
    FracBitsQuantizer q;
    q.name = item.key();
    q.module = m;
    q.is_weight = false;
    q.fbits = act->fbits;
    q.bits = act->bits;
    q.alpha = act->alpha;
    q.elements_per_group = static_cast<double>(it->second);
    acts.push_back(std::move(q));
  }
  if (weights.empty()) return absl::FailedPreconditionError("bitpruning: the model has no quantized layer");
  weights.insert(weights.end(), acts.begin(), acts.end());
  return weights;
}

absl::StatusOr<BitPenalty> BitPenalty::Make(models::Model& model, const std::vector<int64_t>& input_shape,
                                            std::vector<FracBitsQuantizer> quantizers, BitCost cost,
                                            int64_t initial_bits) {
  BitPenalty p;
  p.quantizers_ = std::move(quantizers);
  p.cost_ = cost;
  if (p.quantizers_.empty()) return absl::FailedPreconditionError("bitpruning: no learned bitlength to penalise");
  std::map<std::string, int> index;
  for (size_t i = 0; i < p.quantizers_.size(); ++i) index[p.quantizers_[i].name] = static_cast<int>(i);
  switch (cost) {
    case BitCost::kBits:
      p.normaliser_ = static_cast<double>(p.quantizers_.size());
      break;
    case BitCost::kMemory: {
      double total = 0;
      for (const FracBitsQuantizer& q : p.quantizers_) total += q.elements_per_group * q.fbits.numel();
      p.normaliser_ = total;
      break;
    }
    case BitCost::kBitOps: {
      const bool was_training = model.is_training();
      model.eval();
      const cost::CostReport report = cost::MeasureModelCost(
          model, [&](const at::Tensor& x) { return model.forward(x); }, input_shape);
      model.train(was_training);
      double macs = 0;
      for (const cost::LayerCost& l : report.layers) {
        Layer layer;
        layer.macs = l.macs;
        macs += l.macs;
        if (auto it = index.find(l.name); it != index.end() && p.quantizers_[it->second].is_weight) {
          layer.weight = it->second;
        } else {
          layer.fixed_weight_bits = l.weight_bits.empty() ? nn::kFullPrecision : static_cast<double>(l.weight_bits[0]);
        }
        if (auto it = index.find(l.act_layer); it != index.end() && !p.quantizers_[it->second].is_weight) {
          layer.act = it->second;
        } else {
          layer.fixed_act_bits = static_cast<double>(l.act_bits);
        }
        p.layers_.push_back(layer);
      }
      if (!(macs > 0)) return absl::FailedPreconditionError("bitpruning: the model has no MACs to weigh bits by");
      p.normaliser_ = 2.0 * static_cast<double>(initial_bits) * macs;
      break;
    }
  }
  return p;
}

at::Tensor BitPenalty::operator()() const {
  at::Tensor total = at::zeros({});
  switch (cost_) {
    case BitCost::kBits:
      for (const FracBitsQuantizer& q : quantizers_) total = total + q.fbits.mean();
      break;
    case BitCost::kMemory:
      for (const FracBitsQuantizer& q : quantizers_) total = total + q.fbits.sum() * q.elements_per_group;
      break;
    case BitCost::kBitOps:
      for (const Layer& l : layers_) {
        // Sum over the weight groups of MACs per group times its bits: macs * mean bits.
        const at::Tensor w = l.weight >= 0 ? quantizers_[l.weight].fbits.mean() : at::full({}, l.fixed_weight_bits);
        const at::Tensor a = l.act >= 0 ? quantizers_[l.act].fbits.reshape({}) : at::full({}, l.fixed_act_bits);
        total = total + w * a * l.macs;
      }
      break;
  }
  return total / normaliser_;
}

double BitPenalty::Mean(bool weights, bool acts) const {
  at::NoGradGuard no_grad;
  double sum = 0;
  int64_t n = 0;
  for (const FracBitsQuantizer& q : quantizers_) {
    if (q.is_weight ? !weights : !acts) continue;
    sum += q.fbits.mean().item<double>();
    ++n;
  }
  return n > 0 ? sum / static_cast<double>(n) : 0.0;
}
double BitPenalty::MeanWeightBits() const { return Mean(true, false); }
double BitPenalty::MeanActBits() const { return Mean(false, true); }
double BitPenalty::MeanBits() const { return Mean(true, true); }

void ProjectBits(const std::vector<FracBitsQuantizer>& quantizers, double weight_min, double act_min, double hi) {
  at::NoGradGuard no_grad;
  for (const FracBitsQuantizer& q : quantizers) {
    q.fbits.detach().clamp_(q.is_weight ? weight_min : act_min, hi);
    q.bits.copy_(q.fbits.detach().round().to(at::kInt).reshape(q.bits.sizes()));
  }
}

void ScaleBitsGradients(const std::vector<FracBitsQuantizer>& quantizers) {
  at::NoGradGuard no_grad;
  for (const FracBitsQuantizer& q : quantizers) {
    if (q.fbits.numel() > 1 && q.fbits.grad().defined()) q.fbits.mutable_grad().mul_(static_cast<double>(q.fbits.numel()));
  }
}

void RoundAndFreeze(const std::vector<FracBitsQuantizer>& quantizers) {
  at::NoGradGuard no_grad;
  for (const FracBitsQuantizer& q : quantizers) {
    q.fbits.detach().round_();
    q.fbits.requires_grad_(false);
    q.bits.copy_(q.fbits.detach().to(at::kInt).reshape(q.bits.sizes()));
  }
}

std::string FractionalSummary(const std::vector<FracBitsQuantizer>& quantizers) {
  at::NoGradGuard no_grad;
  std::vector<std::string> parts;
  for (const FracBitsQuantizer& q : quantizers) {
    const at::Tensor f = q.fbits.detach();
    std::string value = Fixed2(f.mean().item<double>());
    if (f.numel() > 1) {
      value = absl::StrCat(value, " [", Fixed2(f.min().item<double>()), "..", Fixed2(f.max().item<double>()), "]");
    }
    parts.push_back(absl::StrCat(q.name, q.is_weight ? " w " : " a ", value));
  }
  return absl::StrJoin(parts, ", ");
}

// ------------------------------------------------------------------ options

absl::StatusOr<std::shared_ptr<const MethodOptions>> BitPruningOptions::Parse(const Json* options,
                                                                               const MethodContext& run) {
  auto o = std::make_shared<BitPruningOptions>();
  OptionReader r(options, "bitpruning.");
  {
    std::vector<std::string> names = runtime::NamesIn(kCostNames);
    const std::string c = r.OneOf("cost", Name(o->cost), names);
    if (absl::StatusOr<BitCost> parsed = runtime::ParseIn(kCostNames, c, "a bit cost"); parsed.ok()) o->cost = *parsed;
    const std::string g = r.OneOf("granularity", nn::Name(o->granularity), nn::GranularityNames());
    if (absl::StatusOr<nn::Granularity> parsed = nn::ParseGranularity(g); parsed.ok()) o->granularity = *parsed;
  }
  o->lambda = r.Number("lambda", o->lambda, Range::NonNegative());
  o->quantize_activations = r.Bool("quantize_activations", o->quantize_activations);
  o->quantize_first_and_last = r.Bool("quantize_first_and_last", o->quantize_first_and_last);
  o->initial_bits = r.Integer("initial_bits", o->initial_bits, 2, 16);
  o->weight_bits_min = r.Number("weight_bits_min", o->weight_bits_min, Range::Closed(2, 16));
  o->act_bits_min = r.Number("act_bits_min", o->act_bits_min, Range::Closed(1, 16));
  o->bits_max = r.Number("bits_max", o->bits_max, Range::Closed(2, 16));
  o->act_clip_quantile = r.Number("act_clip_quantile", o->act_clip_quantile, {0, 1, true, false});
  o->calibration_fraction = r.Number("calibration_fraction", o->calibration_fraction, {0, 1, true, false});
  o->epochs = r.Integer("epochs", o->epochs, 1, 100000);
  o->lr = r.Number("lr", o->lr, Range::Positive());
  o->bits_lr = r.Number("bits_lr", o->bits_lr, Range::Positive());
  o->finetune_epochs = r.Integer("finetune_epochs", o->finetune_epochs, 0, 100000);
  o->finetune_lr = r.Number("finetune_lr", o->finetune_lr, Range::Positive());
  o->momentum = r.Number("momentum", o->momentum, Range::Closed(0, 1));
  o->weight_decay = r.Number("weight_decay", o->weight_decay, Range::NonNegative());
  if (absl::Status s = r.Finish(); !s.ok()) return s;
  const double ib = static_cast<double>(o->initial_bits);
  if (o->weight_bits_min > o->bits_max || o->act_bits_min > o->bits_max || ib > o->bits_max ||
      ib < o->weight_bits_min || ib < o->act_bits_min) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"bitpruning.initial_bits\": ", o->initial_bits, " with weight_bits_min ", o->weight_bits_min,
        ", act_bits_min ", o->act_bits_min, " and bits_max ", o->bits_max,
        "; expected weight_bits_min, act_bits_min <= initial_bits <= bits_max"));
  }
  if (run.quant.weight_bits != nn::kFullPrecision || run.quant.act_quantizer != nn::ActQuantizer::kNone) {
    return absl::InvalidArgumentError(
        "\"weight_bits\": bitpruning starts from a full-precision network (the spec's `epochs` train it) and builds "
        "its own quantizers: leave weight_bits at 32 and act_quantizer at none, and set the method's options in "
        "\"bitpruning\"");
  }
  return std::shared_ptr<const MethodOptions>(std::move(o));
}

Json BitPruningOptions::ToJson() const {
  return Json{{"cost", Name(cost)},
              {"lambda", lambda},
              {"granularity", nn::Name(granularity)},
              {"quantize_activations", quantize_activations},
              {"quantize_first_and_last", quantize_first_and_last},
              {"initial_bits", initial_bits},
              {"weight_bits_min", weight_bits_min},
              {"act_bits_min", act_bits_min},
              {"bits_max", bits_max},
              {"act_clip_quantile", act_clip_quantile},
              {"calibration_fraction", calibration_fraction},
              {"epochs", epochs},
              {"lr", lr},
              {"bits_lr", bits_lr},
              {"finetune_epochs", finetune_epochs},
              {"finetune_lr", finetune_lr},
              {"momentum", momentum},
              {"weight_decay", weight_decay}};
}

models::QuantConfig BitPruningOptions::Quant() const {
  models::QuantConfig q;
  q.weight_quantizer = nn::WeightQuantizer::kFracBits;
  q.granularity = granularity;
  q.weight_bits = initial_bits;
  q.act_quantizer = quantize_activations ? nn::ActQuantizer::kFracBits : nn::ActQuantizer::kNone;
  q.act_bits = quantize_activations ? initial_bits : nn::kFullPrecision;
  q.quantize_first_and_last = quantize_first_and_last;
  q.act_placement = models::ActPlacement::kConvInput;
  q.units = nullptr;
  return q;
}

// ------------------------------------------------------------------ the method

absl::StatusOr<AllocatorResult> BitPruningAllocator::Run(AllocatorContext& ctx) {
  const BitPruningOptions& o = options_;
  if (ctx.model == nullptr || ctx.train == nullptr || !ctx.make_model_with) {
    return absl::InvalidArgumentError(
        "bitpruning: the context needs the trained starting model, a training loader and make_model_with");
  }
  if (o.quantize_activations && ctx.calibration == nullptr) {
    return absl::InvalidArgumentError(
        "bitpruning: setting the activation clips needs the context's calibration loader (training examples)");
  }
  const bool persistent = !ctx.state_dir.empty();
  std::error_code ec;
  if (persistent) std::filesystem::create_directories(ctx.state_dir, ec);
  const std::string done_path = ctx.state_dir + "/done.json";
  auto done = [&]() { return persistent && std::filesystem::exists(done_path, ec); };

  absl::StatusOr<std::shared_ptr<models::Model>> built = ctx.make_model_with(o.Quant());
  if (!built.ok()) return built.status();
  std::shared_ptr<models::Model> net = *built;
  if (absl::Status s = CopyTrainedState(*ctx.model, *net); !s.ok()) return s;
  absl::StatusOr<std::vector<FracBitsQuantizer>> found = FindFracBitsQuantizers(*net, ctx.input_shape);
  if (!found.ok()) return found.status();
  const std::vector<FracBitsQuantizer> quantizers = *found;
  {
    at::NoGradGuard no_grad;
    for (const FracBitsQuantizer& q : quantizers) q.fbits.detach().fill_(static_cast<double>(o.initial_bits));
  }
  ProjectBits(quantizers, o.weight_bits_min, o.act_bits_min, o.bits_max);
  if (o.quantize_activations) {
    if (absl::Status s = InitialiseClips(*net, quantizers, *ctx.calibration, o.act_clip_quantile); !s.ok()) return s;
  }
  absl::StatusOr<BitPenalty> made = BitPenalty::Make(*net, ctx.input_shape, quantizers, o.cost, o.initial_bits);
  if (!made.ok()) return made.status();
  const BitPenalty penalty = *made;
  auto bits_note = [&]() {
    return absl::StrFormat("mean bitlength %.3f (weights %.3f, activations %.3f)", penalty.MeanBits(),
                           penalty.MeanWeightBits(), penalty.MeanActBits());
  };

  AllocatorContext net_ctx = ctx;
  net_ctx.model = net.get();
  const std::string learn_dir = persistent ? ctx.state_dir + "/learn" : "";
  const std::string finetune_dir = persistent ? ctx.state_dir + "/finetune" : "";
  const bool fresh = !persistent || !std::filesystem::exists(learn_dir + "/last.pt", ec);
  if (fresh && !done()) {
    absl::StatusOr<AllocationPoint> p = MeasurePoint(
        net_ctx, 0, absl::StrCat("initialised from the trained network at ", o.initial_bits, " bits; clips at the ",
                                 o.act_clip_quantile, " quantile"));
    if (!p.ok()) return p.status();
    if (ctx.on_point) {
      if (absl::Status s = ctx.on_point(*p); !s.ok()) return s;
    }
  }

  // 1. Learn the bitlengths.
  train::TrainOptions to = ctx.training;
  to.epochs = o.epochs;
  to.lr = o.lr;
  to.optimizer = train::Optimizer::kSgd;
  to.momentum = o.momentum;
  to.weight_decay = o.weight_decay;
  to.schedule = train::Schedule::kCosine;
  to.warmup_epochs = 0;
  to.arch_lr = o.bits_lr;
  to.arch_momentum = o.momentum;
  to.arch_weight_decay = 0;
  to.alternate_arch = false;
  to.select_best = false;  // the bitlengths the regularizer reached, not an earlier epoch's
  to.checkpoint_dir = learn_dir;
  train::Trainer learn(*net, *ctx.train, ctx.validation, to);
  learn.set_arch_parameters(FracBitsParameters(quantizers));
  learn.set_extra_loss([&]() { return o.lambda * penalty(); });
  learn.set_step_hooks([&]() { ScaleBitsGradients(quantizers); },
                       [&]() { ProjectBits(quantizers, o.weight_bits_min, o.act_bits_min, o.bits_max); });
  learn.set_epoch_callback([&](const train::EpochStats& s) {
    return ReportEpochPoint(
        ctx, *net, s, names::kPhaseSearch,
        absl::StrFormat(
            "epoch %d: allocation = the bitlengths rounded; validation at the fractional bits; %s; fractional: %s",
            s.epoch + 1, bits_note(), FractionalSummary(quantizers)));
  });
  absl::StatusOr<train::TrainResult> learned = learn.Run();
  if (!learned.ok()) return learned.status();
  AllocatorResult result;
  if (!learned->completed) {
    result.completed = false;
    result.final_point = static_cast<int64_t>(learned->history.size());
    result.stop_reason = "paused while learning the bitlengths (stop_after_epochs)";
    return result;
  }
  const double fractional_mean = penalty.MeanBits();
  const std::string fractional = FractionalSummary(quantizers);

  // 2. Round and freeze; 3. fine-tune at those bits.
  RoundAndFreeze(quantizers);
  int64_t selected_epoch = 0;
  if (o.finetune_epochs > 0) {
    train::TrainOptions fo = ctx.training;
    fo.epochs = o.finetune_epochs;
    fo.lr = o.finetune_lr;
    fo.optimizer = train::Optimizer::kSgd;
    fo.momentum = o.momentum;
    fo.weight_decay = o.weight_decay;
    fo.schedule = train::Schedule::kCosine;
    fo.warmup_epochs = 0;
    fo.select_best = true;
    fo.checkpoint_dir = finetune_dir;
    train::Trainer finetune(*net, *ctx.train, ctx.validation, fo);
    finetune.set_epoch_callback([&](const train::EpochStats& s) {
      return ctx.on_epoch ? ctx.on_epoch({names::kPhaseFinetune, o.epochs + s.epoch + 1, o.epochs + s.epoch + 1.0, s})
                          : absl::OkStatus();
    });
    absl::StatusOr<train::TrainResult> tuned = finetune.Run();
    if (!tuned.ok()) return tuned.status();
    if (!tuned->completed) {
      result.completed = false;
      result.final_point = o.epochs;
      result.stop_reason = "paused while fine-tuning (stop_after_epochs)";
      return result;
    }
    selected_epoch = tuned->best_epoch + 1;
  }

  const int64_t final_point = o.epochs + 1;
  if (!done()) {
    const std::string note = absl::StrFormat(
        "rounded and frozen after %d epochs (fractional mean %.3f), fine-tuned %d epochs%s; %s", o.epochs,
        fractional_mean, o.finetune_epochs,
        o.finetune_epochs > 0 ? absl::StrFormat(" (epoch %d selected on validation)", selected_epoch) : "",
        bits_note());
    absl::StatusOr<AllocationPoint> p = MeasurePoint(net_ctx, final_point, note);
    if (!p.ok()) return p.status();
    if (ctx.on_point) {
      if (absl::Status s = ctx.on_point(*p); !s.ok()) return s;
    }
    if (persistent) {
      if (absl::Status s = train::WriteJsonFile(done_path, Json{{"final_point", final_point}}); !s.ok()) return s;
    }
  }
  result.details_json = Json{{"method", "bitpruning"},
                             {"cost", Name(o.cost)},
                             {"lambda", o.lambda},
                             {"granularity", nn::Name(o.granularity)},
                             {"mean_bits_fractional", fractional_mean},
                             {"fractional", fractional},
                             {"mean_bits", penalty.MeanBits()},
                             {"mean_weight_bits", penalty.MeanWeightBits()},
                             {"mean_act_bits", penalty.MeanActBits()},
                             {"finetune_selected_epoch", selected_epoch},
                             {names::kDetailsStopReason, "bitlengths learned, rounded, fine-tuned"}}
                            .dump();
  result.completed = true;
  result.model = net;
  result.allocation = ReadAllocation(*net);
  result.final_point = final_point;
  result.points = final_point + 1;
  result.stop_reason = absl::StrFormat("learned %d epochs (lambda %g, %s), rounded to mean %.3f bits, fine-tuned %d",
                                       o.epochs, o.lambda, Name(o.cost), penalty.MeanBits(), o.finetune_epochs);
  return result;
}

}  // namespace mpq::alloc
