#include "lib/alloc/uhlich.h"

#include "datasets/for_each_batch.h"
#include "lib/alloc/trained_state.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "lib/alloc/option_reader.h"
#include "lib/nn/layer_record.h"
#include "lib/nn/qact.h"
#include "lib/nn/qconv.h"
#include "lib/quant/uhlich.h"
#include "lib/train/state.h"

namespace mpq::alloc {
namespace {

using Json = nlohmann::json;
using nn::UhlichParametrization;

constexpr double kMargin = 1e-5;  // [1]'s clip_quant_vals keeps values this far inside
constexpr double kBitsPerKb = 8.0 * 1024.0;

at::Tensor SteRound(const at::Tensor& x) { return x + (x.round() - x).detach(); }
at::Tensor SteCeil(const at::Tensor& x) { return x + (x.ceil() - x).detach(); }

// In place, no autograd: v <- clamp(v, lo + margin, hi - margin).
void ClampInto(const at::Tensor& v, double lo, double hi) { v.detach().clamp_(lo + kMargin, hi - kMargin); }

// lo <= hi as [1]'s clip_quant_vals: lo = min(lo, hi - 1e-5), hi = max(lo + 1e-5, hi),
// both from the values before (in place, no autograd).
void KeepBelow(const at::Tensor& lo_param, const at::Tensor& hi_param) {
  const at::Tensor lo = lo_param.detach(), hi = hi_param.detach();
  const at::Tensor new_lo = at::min(lo, hi - kMargin), new_hi = at::max(lo + kMargin, hi);
  lo.copy_(new_lo);
  hi.copy_(new_hi);
}

std::vector<int64_t> ParseMilestones(const std::string& text, std::string* error) {
  std::vector<int64_t> out;
  if (absl::StripAsciiWhitespace(text).empty()) return out;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int64_t e = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &e) || e < 1 || (!out.empty() && e <= out.back())) {
      *error = absl::StrCat("'", text, "' is not a list of increasing positive epochs such as \"80,120\"");
      return {};
    }
    out.push_back(e);
  }
  return out;
}

}  // namespace

UhlichBounds WeightBounds() { return {std::ldexp(1.0, -8), 1.0, std::ldexp(1.0, -16), 127.0, std::ldexp(1.0, -8), 127.0, 2, 8}; }
UhlichBounds ActivationBounds() {
  return {std::ldexp(1.0, -8), 1.0, std::ldexp(1.0, -14), 255.0, std::ldexp(1.0, -8), 255.0, 1, 8};
}

absl::StatusOr<std::vector<UhlichQuantizer>> FindUhlichQuantizers(models::Model& model,
                                                                  const std::vector<int64_t>& input_shape,
                                                                  const UhlichBounds& weight_bounds,
                                                                  const UhlichBounds& act_bounds) {
  const std::map<const torch::nn::Module*, int64_t> act_elements = models::ActivationElements(model, input_shape);
  std::vector<UhlichQuantizer> weights, acts;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    torch::nn::Module* m = item.value().get();
    const nn::WeightQuantization* wq = nullptr;
    at::Tensor weight, bias;
    if (auto* c = dynamic_cast<nn::QConv2dImpl*>(m)) {
      wq = &c->quantization;
      weight = c->weight;
      bias = c->bias;
    } else if (auto* f = dynamic_cast<nn::QLinearImpl*>(m)) {
      wq = &f->quantization;
      weight = f->weight;
      bias = f->bias;
    }
    if (wq != nullptr) {
      if (wq->kind != nn::WeightQuantizer::kUhlich) {
        return absl::FailedPreconditionError(absl::StrCat("uhlich: layer ", item.key(), " quantizes its weights with ",
                                                          nn::Name(wq->kind), "; every layer needs kUhlich"));
      }
      UhlichQuantizer q;
      q.name = item.key();
      q.is_weight = true;
      q.is_signed = true;
      q.parametrization = wq->uhlich;
      q.d = wq->step;
      q.b = wq->b;
      q.xmin = wq->xmin;
      q.xmax = wq->qmax;
      q.bits = wq->bits;
      q.weight = weight;
      const int64_t groups = wq->bits.numel();
      q.elements_per_group = static_cast<double>(weight.numel() + (bias.defined() ? bias.numel() : 0)) / groups;
      q.bounds = weight_bounds;
      weights.push_back(std::move(q));
      continue;
    }
    auto* act = dynamic_cast<nn::QActImpl*>(m);
    if (act == nullptr || act->options.quantizer() == nn::ActQuantizer::kNone) continue;
    if (act->options.quantizer() != nn::ActQuantizer::kUhlich) {
      return absl::FailedPreconditionError(absl::StrCat("uhlich: activation ", item.key(), " uses ",
                                                        nn::Name(act->options.quantizer()), "; expected kUhlich"));
    }
    auto it = act_elements.find(m);
    if (it == act_elements.end()) continue;  // never called on this input
    UhlichQuantizer q;
    q.name = item.key();
    q.is_weight = false;
    q.is_signed = act->options.is_signed();
    q.parametrization = act->options.uhlich();
    q.d = act->step;
    q.b = act->b_param;
    q.xmin = act->xmin;
    q.xmax = act->qmax;
    q.bits = act->bits;
    q.elements_per_group = static_cast<double>(it->second);
    q.bounds = act_bounds;
    acts.push_back(std::move(q));
  }
  if (weights.empty()) return absl::FailedPreconditionError("uhlich: the model has no quantized layer");
  weights.insert(weights.end(), acts.begin(), acts.end());
  return weights;
}

at::Tensor BitsExpression(const UhlichQuantizer& q) {
  const UhlichBounds& r = q.bounds;
  switch (q.parametrization) {
    case UhlichParametrization::kDeltaXmax: {
      const at::Tensor dq = quant::RoundToPowerOfTwo(at::clamp(q.d, r.d_min, r.d_max));
      const at::Tensor x = at::clamp(q.xmax, r.xmax_min, r.xmax_max);
      const at::Tensor xq = SteRound(x / dq) * dq;
      return at::clamp_min(SteCeil(at::log2(xq / dq + 1) + (q.is_signed ? 1.0 : 0.0)), static_cast<double>(r.b_min));
    }
    case UhlichParametrization::kBXmax:
      return SteRound(at::clamp(q.b, static_cast<double>(r.b_min), static_cast<double>(r.b_max)));
    case UhlichParametrization::kXminXmax: {
      const at::Tensor lo = quant::RoundToPowerOfTwo(at::clamp(q.xmin, r.xmin_min, r.xmin_max));
      const at::Tensor hi = quant::RoundToPowerOfTwo(at::clamp(q.xmax, r.xmax_min, r.xmax_max));
      return at::clamp_min(SteCeil(at::log2(at::log2(hi / lo) + 1) + 1), static_cast<double>(r.b_min));
    }
  }
  TORCH_CHECK(false, "uhlich: unknown parametrization");
}

at::Tensor InferredBits(const UhlichQuantizer& q) {
  at::NoGradGuard no_grad;
  return BitsExpression(q).round().to(at::kLong);
}

at::Tensor SizePenalty(const at::Tensor& kb, double target) {
  if (!(target > 0)) return at::zeros({}, kb.options());
  return at::relu(kb - target).pow(2);
}

std::vector<at::Tensor> MemoryPenalty::Bits() const {
  std::vector<at::Tensor> bits;
  for (const UhlichQuantizer& q : quantizers_) bits.push_back(BitsExpression(q));
  return bits;
}

at::Tensor MemoryPenalty::WeightKb(const std::vector<at::Tensor>& bits) const {
  TORCH_CHECK(bits.size() == quantizers_.size(), "uhlich: ", bits.size(), " bits tensors for ", quantizers_.size(),
              " quantizers");
  at::Tensor total;
  for (size_t i = 0; i < quantizers_.size(); ++i) {
    if (!quantizers_[i].is_weight) continue;
    const at::Tensor kb = bits[i].sum() * (quantizers_[i].elements_per_group / kBitsPerKb);
    total = total.defined() ? total + kb : kb;
  }
  return total.defined() ? total.reshape({}) : at::zeros({});
}

at::Tensor MemoryPenalty::ActivationKb(const std::vector<at::Tensor>& bits) const {
  TORCH_CHECK(bits.size() == quantizers_.size(), "uhlich: ", bits.size(), " bits tensors for ", quantizers_.size(),
              " quantizers");
  std::vector<at::Tensor> kb;
  for (size_t i = 0; i < quantizers_.size(); ++i) {
    if (!quantizers_[i].is_weight) {
      kb.push_back(bits[i].sum().reshape({1}) * (quantizers_[i].elements_per_group / kBitsPerKb));
    }
  }
  if (kb.empty()) return at::zeros({});
  const at::Tensor all = at::cat(kb);
  if (act_memory_ == ActMemory::kSum) return all.sum();
  // The first maximal quantizer takes the gradient (nnabla's F.max; torch's max() would
  // share it among ties, and the equal-sized layers of a stage tie at initialisation).
  return all.index_select(0, all.detach().argmax().reshape({1})).reshape({});
}

UniformTargets TargetsAtBits(const std::vector<UhlichQuantizer>& quantizers, const MemoryPenalty& memory,
                             int64_t bits) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> uniform;
  for (const UhlichQuantizer& q : quantizers) uniform.push_back(at::full(q.bits.sizes(), static_cast<double>(bits)));
  return {memory.WeightKb(uniform).item<double>(), memory.ActivationKb(uniform).item<double>()};
}

at::Tensor MemoryPenalty::Loss(const std::vector<at::Tensor>& bits, double lambda_w, double weight_kb,
                               double lambda_a, double act_kb) const {
  at::Tensor loss = at::zeros({});
  if (weight_kb > 0) loss = loss + lambda_w * SizePenalty(WeightKb(bits), weight_kb);
  if (act_kb > 0) loss = loss + lambda_a * SizePenalty(ActivationKb(bits), act_kb);
  return loss;
}

void ClipGradients(const std::vector<UhlichQuantizer>& quantizers) {
  at::NoGradGuard no_grad;
  auto clip = [](const at::Tensor& p, const at::Tensor& bound) {
    if (!p.defined() || !p.grad().defined()) return;
    at::Tensor g = p.mutable_grad();
    const at::Tensor lim = bound.detach();
    g.copy_(at::max(at::min(g, lim), -lim));
  };
  for (const UhlichQuantizer& q : quantizers) {
    if (q.parametrization == UhlichParametrization::kDeltaXmax) {
      clip(q.d, q.d);
      clip(q.xmax, q.d);
    } else if (q.parametrization == UhlichParametrization::kXminXmax) {
      const at::Tensor xmin = q.xmin.detach().clone();  // both bounded by xmin before its own clip
      clip(q.xmin, xmin);
      clip(q.xmax, xmin);
    }
  }
}

void Project(const std::vector<UhlichQuantizer>& quantizers) {
  at::NoGradGuard no_grad;
  for (const UhlichQuantizer& q : quantizers) {
    const UhlichBounds& r = q.bounds;
    switch (q.parametrization) {
      case UhlichParametrization::kDeltaXmax:
        KeepBelow(q.d, q.xmax);
        ClampInto(q.d, r.d_min, r.d_max);
        ClampInto(q.xmax, r.xmax_min, r.xmax_max);
        break;
      case UhlichParametrization::kBXmax:
        ClampInto(q.b, static_cast<double>(r.b_min), static_cast<double>(r.b_max));
        ClampInto(q.xmax, r.xmax_min, r.xmax_max);
        break;
      case UhlichParametrization::kXminXmax:
        KeepBelow(q.xmin, q.xmax);
        ClampInto(q.xmin, r.xmin_min, r.xmin_max);
        ClampInto(q.xmax, r.xmax_min, r.xmax_max);
        break;
    }
  }
}

void RefreshBits(const std::vector<UhlichQuantizer>& quantizers) {
  at::NoGradGuard no_grad;
  for (const UhlichQuantizer& q : quantizers) {
    q.bits.copy_(InferredBits(q).clamp(1, 16).to(at::kInt).reshape(q.bits.sizes()));
  }
}

void InitializeQuantizers(const std::vector<UhlichQuantizer>& quantizers, int64_t weight_bits, int64_t act_bits,
                          double act_step) {
  at::NoGradGuard no_grad;
  for (const UhlichQuantizer& q : quantizers) {
    const int64_t bw = q.is_weight ? weight_bits : act_bits;
    at::Tensor d, xmax;
    if (q.is_weight) {
      // find_delta: max|W| + float eps, floor for <= 4 bits, ceil above.
      const int64_t groups = q.bits.numel();
      const at::Tensor maxabs =
          q.weight.detach().reshape({groups, -1}).abs().amax(1).to(at::kDouble) + std::numeric_limits<float>::epsilon();
      const at::Tensor e = at::log2(maxabs / (std::ldexp(1.0, static_cast<int>(bw) - 1) - 1));
      d = at::exp2(bw > 4 ? at::ceil(e) : at::floor(e));
      xmax = d * (std::ldexp(1.0, static_cast<int>(bw) - 1) - 1);
    } else {
      d = at::full({1}, act_step, at::kDouble);
      xmax = d * (std::ldexp(1.0, static_cast<int>(bw)) - 1);
    }
    switch (q.parametrization) {
      case UhlichParametrization::kDeltaXmax:
        q.d.detach().copy_(d.reshape(q.d.sizes()));
        q.xmax.detach().copy_(xmax.reshape(q.xmax.sizes()));
        break;
      case UhlichParametrization::kBXmax:
        q.b.detach().fill_(static_cast<double>(bw));
        q.xmax.detach().copy_(xmax.reshape(q.xmax.sizes()));
        break;
      case UhlichParametrization::kXminXmax: {
        const at::Tensor hi = at::exp2(at::round(at::log2(xmax)));
        const at::Tensor lo = hi / std::ldexp(1.0, (1 << (bw - 1)) - 1);
        q.xmax.detach().copy_(hi.reshape(q.xmax.sizes()));
        q.xmin.detach().copy_(lo.reshape(q.xmin.sizes()));
        break;
      }
    }
  }
  Project(quantizers);
  RefreshBits(quantizers);
}

absl::Status RecalibrateBatchNorm(models::Model& model, data::DataLoader& loader) {
  std::vector<std::pair<torch::nn::BatchNorm2dImpl*, c10::optional<double>>> bns;
  for (const auto& m : model.modules()) {
    if (auto* bn = dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.get())) {
      bns.emplace_back(bn, bn->options.momentum());
      bn->reset_running_stats();
      bn->options.momentum(c10::nullopt);  // cumulative average
    }
  }
  const bool was_training = model.is_training();
  model.train();
  absl::Status status;
  {
    at::NoGradGuard no_grad;
    status = data::ForEachBatch(loader, 0, [&](const data::Batch& batch) {
      model.forward(batch.images);
      return absl::OkStatus();
    });
  }
  for (auto& [bn, momentum] : bns) bn->options.momentum(momentum);
  model.train(was_training);
  return status;
}

// ------------------------------------------------------------------ options

absl::StatusOr<std::shared_ptr<const MethodOptions>> UhlichOptions::Parse(const Json* options,
                                                                           const MethodContext& run) {
  auto o = std::make_shared<UhlichOptions>();
  OptionReader r(options, "uhlich.");
  {
    const std::string p = r.OneOf("parametrization", nn::Name(o->parametrization), nn::UhlichParametrizationNames());
    if (absl::StatusOr<UhlichParametrization> parsed = nn::ParseUhlichParametrization(p); parsed.ok()) {
      o->parametrization = *parsed;
    }
    const std::string g = r.OneOf("granularity", nn::Name(o->granularity), nn::GranularityNames());
    if (absl::StatusOr<nn::Granularity> parsed = nn::ParseGranularity(g); parsed.ok()) o->granularity = *parsed;
  }
  o->quantize_activations = r.Bool("quantize_activations", o->quantize_activations);
  o->weight_kb = r.Number("weight_kb", o->weight_kb, Range::NonNegative());
  o->act_kb = r.Number("act_kb", o->act_kb, Range::NonNegative());
  o->budget_bits = r.Integer("budget_bits", o->budget_bits, 0, 16);
  o->act_memory = r.OneOf("act_memory", "max", {"max", "sum"}) == "sum" ? ActMemory::kSum : ActMemory::kMax;
  o->lambda_w = r.Number("lambda_w", o->lambda_w, Range::NonNegative());
  o->lambda_a = r.Number("lambda_a", o->lambda_a, Range::NonNegative());
  o->weight_bits_min = r.Integer("weight_bits_min", o->weight_bits_min, 2, 16);
  o->weight_bits_max = r.Integer("weight_bits_max", o->weight_bits_max, o->weight_bits_min, 16);
  o->act_bits_min = r.Integer("act_bits_min", o->act_bits_min, 1, 16);
  o->act_bits_max = r.Integer("act_bits_max", o->act_bits_max, o->act_bits_min, 16);
  o->weight_bits = r.Integer("weight_bits", o->weight_bits, 2, 8);
  o->act_bits = r.Integer("act_bits", o->act_bits, 1, 8);
  o->act_step = r.Number("act_step", o->act_step, Range::Closed(std::ldexp(1.0, -8), 1.0));
  o->epochs = r.Integer("epochs", o->epochs, 1, 100000);
  {
    std::string error;
    const std::string text = r.String("milestones", absl::StrJoin(o->milestones, ","));
    std::vector<int64_t> m = ParseMilestones(text, &error);
    if (!error.empty()) {
      r.Fail("milestones", error);
    } else {
      o->milestones = m;
    }
  }
  o->lr = r.Number("lr", o->lr, Range::Positive());
  o->adam = r.OneOf("optimizer", "sgd", {"sgd", "adam"}) == "adam";
  o->momentum = r.Number("momentum", o->momentum, Range::Closed(0, 1));
  o->weight_decay = r.Number("weight_decay", o->weight_decay, Range::NonNegative());
  o->bn_recalibration_fraction =
      r.Number("bn_recalibration_fraction", o->bn_recalibration_fraction, Range::Closed(0, 1));
  if (absl::Status s = r.Finish(); !s.ok()) return s;
  if (o->parametrization == UhlichParametrization::kBXmax &&
      (o->weight_bits < o->weight_bits_min || o->weight_bits > o->weight_bits_max ||
       o->act_bits < o->act_bits_min || o->act_bits > o->act_bits_max)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"uhlich.weight_bits\": b_xmax starts at weight_bits ", o->weight_bits, " / act_bits ", o->act_bits,
        "; expected them within weight_bits_min..max ", o->weight_bits_min, "..", o->weight_bits_max,
        " and act_bits_min..max ", o->act_bits_min, "..", o->act_bits_max));
  }
  if (o->act_kb > 0 && !o->quantize_activations) {
    return absl::InvalidArgumentError(
        "\"uhlich.act_kb\": an activation memory target needs quantize_activations = true");
  }
  if (run.quant.weight_bits != nn::kFullPrecision || run.quant.act_quantizer != nn::ActQuantizer::kNone) {
    return absl::InvalidArgumentError(
        "\"weight_bits\": uhlich starts from a full-precision network (the spec's `epochs` train it) and builds "
        "its own quantizers: leave weight_bits at 32 and act_quantizer at none, and set the method's options in "
        "\"uhlich\"");
  }
  return std::shared_ptr<const MethodOptions>(std::move(o));
}

Json UhlichOptions::ToJson() const {
  return Json{{"parametrization", nn::Name(parametrization)},
              {"granularity", nn::Name(granularity)},
              {"quantize_activations", quantize_activations},
              {"weight_kb", weight_kb},
              {"act_kb", act_kb},
              {"budget_bits", budget_bits},
              {"act_memory", act_memory == ActMemory::kSum ? "sum" : "max"},
              {"lambda_w", lambda_w},
              {"lambda_a", lambda_a},
              {"weight_bits", weight_bits},
              {"act_bits", act_bits},
              {"weight_bits_min", weight_bits_min},
              {"weight_bits_max", weight_bits_max},
              {"act_bits_min", act_bits_min},
              {"act_bits_max", act_bits_max},
              {"act_step", act_step},
              {"epochs", epochs},
              {"milestones", absl::StrJoin(milestones, ",")},
              {"lr", lr},
              {"optimizer", adam ? "adam" : "sgd"},
              {"momentum", momentum},
              {"weight_decay", weight_decay},
              {"bn_recalibration_fraction", bn_recalibration_fraction}};
}

models::QuantConfig UhlichOptions::Quant() const {
  models::QuantConfig q;
  q.weight_quantizer = nn::WeightQuantizer::kUhlich;
  q.granularity = granularity;
  q.weight_bits = weight_bits;
  q.act_quantizer = quantize_activations ? nn::ActQuantizer::kUhlich : nn::ActQuantizer::kNone;
  q.act_bits = quantize_activations ? act_bits : nn::kFullPrecision;
  q.quantize_first_and_last = true;                      // [1] quantizes conv1 and fc
  // [1]'s nonl replaces each ReLU; without activation quantization the placement is moot
  // (and networks without ReLU placement, MobileNet-V2, can be built).
  q.act_placement = quantize_activations ? models::ActPlacement::kReluOutput : models::ActPlacement::kConvInput;
  q.uhlich = parametrization;
  q.units = nullptr;
  return q;
}

// ------------------------------------------------------------------ the method

absl::StatusOr<AllocatorResult> UhlichAllocator::Run(AllocatorContext& ctx) {
  UhlichOptions o = options_;  // budget_bits fills the targets below
  if (ctx.model == nullptr || ctx.train == nullptr || !ctx.make_model_with) {
    return absl::InvalidArgumentError(
        "uhlich: the context needs the trained starting model, a training loader and make_model_with");
  }
  const bool persistent = !ctx.state_dir.empty();
  std::error_code ec;
  if (persistent) std::filesystem::create_directories(ctx.state_dir, ec);
  const std::string done_path = ctx.state_dir + "/done.json";

  // The quantized network, from the trained one.
  absl::StatusOr<std::shared_ptr<models::Model>> built = ctx.make_model_with(o.Quant());
  if (!built.ok()) return built.status();
  std::shared_ptr<models::Model> net = *built;
  if (absl::Status s = CopyTrainedState(*ctx.model, *net); !s.ok()) return s;
  UhlichBounds wb = WeightBounds(), ab = ActivationBounds();
  wb.b_min = o.weight_bits_min;
  wb.b_max = o.weight_bits_max;
  ab.b_min = o.act_bits_min;
  ab.b_max = o.act_bits_max;
  absl::StatusOr<std::vector<UhlichQuantizer>> found = FindUhlichQuantizers(*net, ctx.input_shape, wb, ab);
  if (!found.ok()) return found.status();
  const std::vector<UhlichQuantizer> quantizers = *found;
  InitializeQuantizers(quantizers, o.weight_bits, o.act_bits, o.act_step);
  const bool recalibrate = o.bn_recalibration_fraction > 0;
  if (recalibrate && ctx.calibration == nullptr) {
    return absl::InvalidArgumentError(
        "uhlich: bn_recalibration_fraction > 0 needs the context's calibration loader (training examples)");
  }
  if (recalibrate) {
    if (absl::Status s = RecalibrateBatchNorm(*net, *ctx.calibration); !s.ok()) return s;
  }
  const MemoryPenalty memory(quantizers, o.act_memory);
  if (o.budget_bits > 0) {
    at::NoGradGuard no_grad;
    const UniformTargets t = TargetsAtBits(quantizers, memory, o.budget_bits);
    if (o.weight_kb == 0) o.weight_kb = t.weight_kb;
    if (o.act_kb == 0 && o.quantize_activations) o.act_kb = t.act_kb;
  }
  const bool constrained = o.weight_kb > 0 || o.act_kb > 0;
  auto within = [&]() {
    at::NoGradGuard no_grad;
    return (!(o.weight_kb > 0) || memory.WeightKb().item<double>() <= o.weight_kb) &&
           (!(o.act_kb > 0) || memory.ActivationKb().item<double>() <= o.act_kb);
  };
  auto memory_note = [&]() {
    at::NoGradGuard no_grad;
    return absl::StrFormat("weights %.2f KB%s, activations %.2f KB (%s)%s", memory.WeightKb().item<double>(),
                           o.weight_kb > 0 ? absl::StrFormat(" (target %.2f)", o.weight_kb) : "",
                           memory.ActivationKb().item<double>(), o.act_memory == ActMemory::kSum ? "sum" : "max",
                           o.act_kb > 0 ? absl::StrFormat(" (target %.2f)", o.act_kb) : "");
  };

  AllocatorContext net_ctx = ctx;
  net_ctx.model = net.get();
  const std::string train_dir = persistent ? ctx.state_dir + "/train" : "";
  const bool fresh = !persistent || !std::filesystem::exists(train_dir + "/last.pt", ec);
  if (fresh && !(persistent && std::filesystem::exists(done_path, ec))) {
    absl::StatusOr<AllocationPoint> p =
        MeasurePoint(net_ctx, 0, absl::StrCat("initialised from the trained network: ", memory_note()));
    if (!p.ok()) return p.status();
    if (ctx.on_point) {
      if (absl::Status s = ctx.on_point(*p); !s.ok()) return s;
    }
  }

  train::TrainOptions to = ctx.training;
  to.epochs = o.epochs;
  to.lr = o.lr;
  to.optimizer = o.adam ? train::Optimizer::kAdam : train::Optimizer::kSgd;
  to.momentum = o.momentum;
  to.weight_decay = o.weight_decay;
  to.schedule = train::Schedule::kMultiStep;
  to.milestones = o.milestones;
  to.gamma = 0.1;
  to.warmup_epochs = 0;
  to.select_best = true;
  to.checkpoint_dir = train_dir;
  train::Trainer trainer(*net, *ctx.train, ctx.validation, to);
  if (constrained) {
    trainer.set_extra_loss([&]() { return memory(o.lambda_w, o.weight_kb, o.lambda_a, o.act_kb); });
  }
  trainer.set_step_hooks(
      constrained ? std::function<void()>([&]() { ClipGradients(quantizers); }) : std::function<void()>(),
      [&]() {
        Project(quantizers);
        RefreshBits(quantizers);
      });
  trainer.set_selectable(within);
  if (recalibrate) trainer.set_before_validation([&]() { return RecalibrateBatchNorm(*net, *ctx.calibration); });
  trainer.set_epoch_callback([&](const train::EpochStats& s) {
    return ReportEpochPoint(ctx, *net, s, names::kPhaseSearch,
                            absl::StrFormat("epoch %d: inferred bits; %s; %s", s.epoch + 1, memory_note(),
                                            within() ? "within the targets" : "over a target"));
  });
  absl::StatusOr<train::TrainResult> trained = trainer.Run();
  if (!trained.ok()) return trained.status();
  AllocatorResult result;
  result.final_point = static_cast<int64_t>(trained->history.size());
  if (!trained->completed) {
    result.completed = false;
    result.stop_reason = "paused (stop_after_epochs)";
    return result;
  }
  const bool met = trained->best_epoch >= 0;
  const int64_t final_point = o.epochs + 1;
  if (!(persistent && std::filesystem::exists(done_path, ec))) {
    const std::string note =
        met ? absl::StrFormat("selected: epoch %d, best validation within the targets; %s", trained->best_epoch + 1,
                              memory_note())
            : absl::StrFormat("no epoch met the targets: the last epoch's network; %s", memory_note());
    absl::StatusOr<AllocationPoint> p = MeasurePoint(net_ctx, final_point, note);
    if (!p.ok()) return p.status();
    if (ctx.on_point) {
      if (absl::Status s = ctx.on_point(*p); !s.ok()) return s;
    }
    if (persistent) {
      if (absl::Status s = train::WriteJsonFile(done_path, Json{{"final_point", final_point}}); !s.ok()) return s;
    }
  }
  at::NoGradGuard no_grad;
  result.details_json = Json{{"method", "uhlich"},
                             {"parametrization", nn::Name(o.parametrization)},
                             {"granularity", nn::Name(o.granularity)},
                             {"weight_kb_target", o.weight_kb},
                             {"act_kb_target", o.act_kb},
                             {"act_memory", o.act_memory == ActMemory::kSum ? "sum" : "max"},
                             {"weight_kb", memory.WeightKb().item<double>()},
                             {"act_kb", memory.ActivationKb().item<double>()},
                             {"targets_met", met},
                             {"selected_epoch", trained->best_epoch + 1},
                             {names::kDetailsStopReason, met ? "trained; best validation epoch within the targets"
                                                             : "trained; no epoch met the targets"}}
                            .dump();
  result.completed = true;
  result.model = net;
  result.allocation = ReadAllocation(*net);
  result.final_point = final_point;
  result.points = final_point + 1;
  result.stop_reason = met ? absl::StrFormat("trained %d epochs; epoch %d selected (within the targets)", o.epochs,
                                             trained->best_epoch + 1)
                           : absl::StrFormat("trained %d epochs; no epoch met the targets (last epoch kept)", o.epochs);
  return result;
}

}  // namespace mpq::alloc
