#include "lib/alloc/sensitivity.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "lib/nn/layer_record.h"
#include "lib/nn/qact.h"
#include "lib/nn/qconv.h"
#include "lib/runtime/interrupt.h"

namespace mpq::alloc {
namespace {

struct WeightLayer {
  const torch::nn::Module* module = nullptr;
  std::string name;
  at::Tensor sum;       // float64 [C_out]: sum over examples and classes of |grad_c|^2 / d^2
  int64_t groups_of_bits = 1;
  std::vector<int64_t> bits;  // per output channel
  at::Tensor weight;    // float weights
  at::Tensor quantized;  // the weights the forward used (quantized at the current bits)
};

struct ActGroup {
  const torch::nn::Module* module = nullptr;
  std::string name;
  double sum = 0;
  int64_t bits = 32, elements = 0;
  double clip = 0;
};

// Memory the per-batch patch cache may hold (the recorder already holds every layer's
// input; patches are k_h k_w times larger).
constexpr int64_t kPatchCacheBytes = int64_t{1} << 30;

// A convolution's im2col patches [N, C_in k k, P]: the same for every compared class of
// a batch, so computed once per batch (see PatchCache).
at::Tensor Patches(const nn::LayerRecord& r) {
  return at::im2col(r.input, {r.kernel_h, r.kernel_w}, {1, 1}, {r.pad_h, r.pad_w}, {r.stride_h, r.stride_w});
}

// Keeps each layer's patches for the batch's K-1 backward passes while their total stays
// under a budget (beyond it, the rest are recomputed per class: memory stays bounded).
class PatchCache {
 public:
  explicit PatchCache(int64_t budget_bytes) : budget_(budget_bytes) {}
  const at::Tensor& Get(size_t layer, const nn::LayerRecord& r) {
    if (layer >= cached_.size()) cached_.resize(layer + 1);
    if (cached_[layer].defined()) return cached_[layer];
    scratch_ = Patches(r);
    const int64_t bytes = scratch_.numel() * static_cast<int64_t>(scratch_.element_size());
    if (used_ + bytes > budget_) return scratch_;
    used_ += bytes;
    cached_[layer] = scratch_;
    return cached_[layer];
  }

 private:
  int64_t budget_, used_ = 0;
  std::vector<at::Tensor> cached_;
  at::Tensor scratch_;
};

// Per-example, per-output-channel squared norm of the weight gradient of one layer,
// summed over examples: [C_out]. `patches`: Patches(r) for convolutions.
at::Tensor ChannelGradSquares(const nn::LayerRecord& r, const at::Tensor& grad_out, const at::Tensor& patches) {
  const int64_t n = grad_out.size(0);
  if (r.is_linear) {
    const at::Tensor a = r.input.reshape({n, -1});
    return (grad_out.reshape({n, -1}).pow(2) * a.pow(2).sum(1, true)).sum(0);
  }
  const int64_t g = r.groups, c = r.out_channels, p = r.out_h * r.out_w;
  const int64_t d = patches.size(1) / g;
  const at::Tensor per_example =
      at::matmul(grad_out.reshape({n, g, c / g, p}), patches.reshape({n, g, d, p}).transpose(-1, -2));  // [N,G,C/G,D]
  return per_example.pow(2).sum(-1).reshape({n, c}).sum(0);
}

at::Tensor FloatWeightOf(const torch::nn::Module& m) {
  if (const auto* conv = dynamic_cast<const nn::QConv2dImpl*>(&m)) return conv->weight;
  if (const auto* fc = dynamic_cast<const nn::QLinearImpl*>(&m)) return fc->weight;
  return {};
}

at::Tensor QuantizedWeightOf(const torch::nn::Module& m) {
  at::NoGradGuard no_grad;
  if (const auto* conv = dynamic_cast<const nn::QConv2dImpl*>(&m)) return conv->quantized_weight();
  if (const auto* fc = dynamic_cast<const nn::QLinearImpl*>(&m)) return fc->quantized_weight();
  return {};
}

double ClipOf(const torch::nn::Module& m) {
  const auto* act = dynamic_cast<const nn::QActImpl*>(&m);
  return act != nullptr ? act->clip() : 0.0;
}

int64_t BitGroupsOf(const torch::nn::Module& m) {
  if (const auto* conv = dynamic_cast<const nn::QConv2dImpl*>(&m)) return conv->weight_bits.numel();
  if (const auto* fc = dynamic_cast<const nn::QLinearImpl*>(&m)) return fc->weight_bits.numel();
  return 0;
}

}  // namespace

const char* Name(SensitivityMetric metric) { return metric == SensitivityMetric::kPaper ? "paper" : "code"; }

absl::StatusOr<SensitivityReport> MeasureSensitivity(models::Model& model, data::DataLoader& loader,
                                                     const SensitivityOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  std::map<const torch::nn::Module*, std::string> names;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) names[item.value().get()] = item.key();

  const bool was_training = model.is_training();
  model.eval();
  SensitivityReport report;
  std::vector<WeightLayer> layers;   // in first-seen order
  std::vector<ActGroup> acts;
  std::map<const torch::nn::Module*, size_t> layer_index, act_index;

  loader.StartEpoch(0);
  data::Batch batch;
  int64_t batches = 0;
  absl::Status error;
  while (true) {
    if (options.max_batches > 0 && batches >= options.max_batches) break;
    // SIGTERM / SIGINT (a Slurm preemption): stop between batches, not after the pass.
    if (absl::Status s = runtime::CheckInterrupt(absl::StrCat("the sensitivity pass, batch ", batches + 1)); !s.ok()) {
      error = s;
      break;
    }
    absl::StatusOr<bool> more = loader.Next(&batch);
    if (!more.ok()) {
      error = more.status();
      break;
    }
    if (!*more) break;
    ++batches;
    nn::LayerRecorder recorder;
    at::Tensor logits;
    {
      at::AutoGradMode grad_mode(true);
      logits = model.forward(batch.images);
    }
    if (logits.dim() != 2) {
      error = absl::InvalidArgumentError(absl::StrCat("sensitivity: the model returned logits of shape ",
                                                      c10::str(logits.sizes()), "; expected [N, classes]"));
      break;
    }
    const int64_t n = logits.size(0), m = logits.size(1);
    const int64_t k_max = options.eval_top > 0 ? std::min(options.eval_top, m) : m;

    // Gradient targets: each weight layer's output and each quantizing QAct's output.
    std::vector<at::Tensor> targets;
    std::vector<const nn::LayerRecord*> layer_records;
    std::vector<size_t> layer_slots, act_slots;
    for (const nn::LayerRecord& r : recorder.layers()) {
      if (!r.output.defined() || !r.output.requires_grad()) continue;
      auto [it, inserted] = layer_index.try_emplace(r.module, layers.size());
      if (inserted) {
        WeightLayer w;
        w.module = r.module;
        w.name = names.count(r.module) ? names[r.module] : absl::StrCat("layer", layers.size());
        w.sum = at::zeros({r.out_channels}, r.output.options().dtype(at::kDouble));
        w.groups_of_bits = BitGroupsOf(*r.module);
        w.bits = r.weight_bits;
        w.weight = FloatWeightOf(*r.module);
        w.quantized = QuantizedWeightOf(*r.module);
        layers.push_back(std::move(w));
      }
      targets.push_back(r.output);
      layer_records.push_back(&r);
      layer_slots.push_back(it->second);
    }
    const size_t first_act = targets.size();
    for (const nn::ActivationRecord& r : recorder.activations()) {
      if (!r.output.defined() || !r.output.requires_grad()) continue;
      auto [it, inserted] = act_index.try_emplace(r.module, acts.size());
      if (inserted) {
        acts.push_back({r.module, names.count(r.module) ? names[r.module] : "act", 0.0, r.bits, r.elements,
                        ClipOf(*r.module)});
      }
      targets.push_back(r.output);
      act_slots.push_back(it->second);
    }
    if (targets.empty()) {
      error = absl::FailedPreconditionError(
          "sensitivity: no quantized layer took part in the forward pass (are the layers QConv2d/QLinear?)");
      break;
    }

    PatchCache patch_cache(kPatchCacheBytes);
    const at::Tensor z = logits.detach();
    const at::Tensor order = z.argsort(1, /*descending=*/true);
    const at::Tensor top = order.select(1, 0).unsqueeze(1);
    for (int64_t k = 1; k < k_max; ++k) {
      const at::Tensor cls = order.select(1, k).unsqueeze(1);
      const at::Tensor d = (z.gather(1, cls) - z.gather(1, top)).abs();  // [N, 1]
      const at::Tensor tied = d.eq(0);
      report.tied_pairs += tied.sum().item<int64_t>();
      const at::Tensor inv = at::where(tied, at::zeros_like(d), d.reciprocal());
      at::Tensor seed = at::zeros_like(z);
      seed.scatter_add_(1, cls, inv);
      seed.scatter_add_(1, top, -inv);
      const std::vector<at::Tensor> grads =
          torch::autograd::grad({logits}, targets, {seed}, /*retain_graph=*/k + 1 < k_max, /*create_graph=*/false,
                                /*allow_unused=*/true);
      at::NoGradGuard no_grad;
      for (size_t j = 0; j < layer_records.size(); ++j) {
        if (!grads[j].defined()) continue;
        const nn::LayerRecord& r = *layer_records[j];
        const at::Tensor none;
        const at::Tensor& patches = r.is_linear ? none : patch_cache.Get(j, r);
        layers[layer_slots[j]].sum += ChannelGradSquares(r, grads[j], patches).to(at::kDouble);
      }
      for (size_t j = 0; j < act_slots.size(); ++j) {
        const at::Tensor& g = grads[first_act + j];
        if (g.defined()) acts[act_slots[j]].sum += g.to(at::kDouble).pow(2).sum().item<double>();
      }
    }
    report.examples += n;
    report.classes_compared = k_max - 1;
  }
  model.train(was_training);
  if (!error.ok()) return error;
  if (report.examples == 0) return absl::InvalidArgumentError("sensitivity: the loader produced no examples");

  const double scale = 1.0 / (12.0 * static_cast<double>(report.examples));
  for (const WeightLayer& w : layers) {
    // Read on the host: one copy per layer rather than a device sync per channel.
    const at::Tensor energy = (w.sum * scale).to(at::kCPU);
    const int64_t c = energy.size(0);
    const at::Tensor abs_w = w.weight.detach().abs().reshape({c, -1}).to(at::kCPU, at::kDouble);
    const at::Tensor abs_q = w.quantized.abs().reshape({c, -1}).to(at::kCPU, at::kDouble);
    const int64_t per_channel = abs_w.size(1);
    if (w.groups_of_bits == c) {
      for (int64_t i = 0; i < c; ++i) {
        GroupSensitivity g{w.name, true, i, w.bits[i], per_channel, energy[i].item<double>(),
                           abs_w[i].mean().item<double>()};
        g.mean_abs_quantized_weight = abs_q[i].mean().item<double>();
        report.groups.push_back(g);
      }
    } else {
      GroupSensitivity g{w.name, true, 0, w.bits[0], per_channel * c, energy.sum().item<double>(),
                         abs_w.mean().item<double>()};
      g.mean_abs_quantized_weight = abs_q.mean().item<double>();
      report.groups.push_back(g);
    }
  }
  for (const ActGroup& a : acts) {
    GroupSensitivity g{a.name, false, 0, a.bits, a.elements, a.sum * scale, 0.0};
    g.clip = a.clip;
    report.groups.push_back(g);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

double Score(const GroupSensitivity& g, SensitivityMetric metric) { return Score(g, metric, g.bits); }

double Score(const GroupSensitivity& g, SensitivityMetric metric, int64_t bits) {
  const double delta = std::ldexp(1.0, -static_cast<int>(bits));  // 2^-B
  if (metric == SensitivityMetric::kPaper) return delta * delta * g.energy;
  // The authors' code: E without the 1/12; weights: its mean over the group's elements
  // times mean|Q(w)| (reduce_precision reads p.data, the quantized weights); activations:
  // its sum over the group's elements times the clip value (reduce_precision_act).
  const double e = 12.0 * g.energy;
  if (g.is_weight) return (g.elements > 0 ? e / static_cast<double>(g.elements) : 0.0) * g.mean_abs_quantized_weight * delta;
  return e * g.clip * delta;
}

const char* Name(ReductionRule rule) { return rule == ReductionRule::kExact ? "exact" : "threshold"; }

std::vector<size_t> SelectForReduction(const std::vector<GroupSensitivity>& groups, SensitivityMetric metric,
                                       int64_t n, int64_t min_bits, ReductionRule rule) {
  std::vector<size_t> eligible;
  if (n <= 0) return eligible;
  for (size_t i = 0; i < groups.size(); ++i) {
    if (groups[i].bits > min_bits && groups[i].bits <= 16) eligible.push_back(i);
  }
  std::vector<double> score(groups.size(), 0.0);
  for (size_t i : eligible) score[i] = Score(groups[i], metric);
  std::stable_sort(eligible.begin(), eligible.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  if (rule == ReductionRule::kExact) {
    if (static_cast<size_t>(n) < eligible.size()) eligible.resize(static_cast<size_t>(n));
  } else if (static_cast<size_t>(n) < eligible.size()) {
    // The authors' reduce_precision: threshold = sorted[n], lower every score <= it.
    const double threshold = score[eligible[static_cast<size_t>(n)]];
    size_t keep = static_cast<size_t>(n) + 1;
    while (keep < eligible.size() && score[eligible[keep]] <= threshold) ++keep;
    eligible.resize(keep);
  }
  std::sort(eligible.begin(), eligible.end());
  return eligible;
}

}  // namespace mpq::alloc
