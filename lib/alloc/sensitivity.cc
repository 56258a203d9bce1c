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

int64_t Bytes(const at::Tensor& t) { return t.numel() * static_cast<int64_t>(t.element_size()); }

// The per-example weight-gradient norms of a convolution, two exact ways (GradNormPath):
//   direct: the per-example, per-class weight gradients themselves, from one grouped
//           weight-gradient convolution with the examples as groups (oneDNN on the CPU,
//           cuDNN on CUDA), then their squared norms: K C P D multiply-adds per example;
//   Gram:   |g X|^2 = g (X^T X) g^T with X the example's im2col patches [D, P]: one Gram
//           matrix per example (P^2 D), then K C P^2. Less arithmetic where P is small
//           against D (VGG-small's 512-channel layers at 8x8: P = 64, D = 4608).
// K compared classes, C output channels per group, P output positions, D weights per kernel.
bool UseGram(const nn::LayerRecord& r, int64_t classes, GradNormPath path) {
  if (path != GradNormPath::kAuto) return path == GradNormPath::kGram;
  const double p = static_cast<double>(r.out_h * r.out_w);
  const double d = static_cast<double>(r.in_channels / r.groups * r.kernel_h * r.kernel_w);
  const double kc = static_cast<double>(classes * (r.out_channels / r.groups));
  // The Gram path runs on batched BLAS, the direct one on the convolution library, which
  // reached 4-5 times BLAS's rate here (docs/impq.md "Speed": on ResNet-20's last stage,
  // 4.5 times less arithmetic took as long): Gram only where it needs 8 times less.
  return 8.0 * (p * p * d + kc * p * p) < kc * p * d;
}

// Examples per slice so that `per_example` bytes each fit `budget` (at least one).
int64_t SliceOf(int64_t n, int64_t per_example, int64_t budget) {
  return std::max<int64_t>(1, std::min<int64_t>(n, budget / std::max<int64_t>(per_example, 1)));
}

// The buffer a layer's output gradients for K compared classes are written into, laid out
// for ChannelGradSquares: convolutions [N, G, K, C/G, P] (each example and group's rows
// for every class together), linear layers [K, N, C].
at::Tensor GradBuffer(const nn::LayerRecord& r, const at::Tensor& output, int64_t classes) {
  const int64_t n = output.size(0);
  if (r.is_linear) return at::empty({classes, n, r.out_channels}, output.options());
  return at::empty({n, r.groups, classes, r.out_channels / r.groups, r.out_h * r.out_w}, output.options());
}

// Writes class `k`'s output gradient into the layer's buffer.
void StoreGrad(const nn::LayerRecord& r, const at::Tensor& grad, int64_t k, at::Tensor& buffer) {
  if (r.is_linear) {
    buffer.select(0, k).copy_(grad.reshape({grad.size(0), -1}));
  } else {
    buffer.select(2, k).copy_(grad.reshape({grad.size(0), r.groups, r.out_channels / r.groups, -1}));
  }
}

// Sum over examples and compared classes of the per-example, per-output-channel squared
// norm of one layer's weight gradient: [C_out]. `rows`: the layer's GradBuffer.
at::Tensor ChannelGradSquares(const nn::LayerRecord& r, const at::Tensor& rows, const SensitivityOptions& options) {
  if (r.is_linear) {
    const int64_t n = rows.size(1);
    const at::Tensor a2 = r.input.reshape({n, -1}).pow(2).sum(1).reshape({1, n, 1});
    return (rows.pow(2) * a2).sum(at::IntArrayRef{0, 1});
  }
  const int64_t n = rows.size(0), k = rows.size(2);
  const int64_t g = r.groups, c = r.out_channels, cg = c / g, p = r.out_h * r.out_w;
  const int64_t ci = r.in_channels, d = ci / g * r.kernel_h * r.kernel_w;
  const int64_t h = r.input.size(2), w = r.input.size(3);
  at::Tensor total = at::zeros({g, cg}, rows.options());
  if (UseGram(r, k, options.conv_path)) {
    const int64_t slice = SliceOf(n, g * p * (p + d) * rows.element_size(), options.layer_work_bytes);
    for (int64_t n0 = 0; n0 < n; n0 += slice) {
      const int64_t ns = std::min(slice, n - n0);
      const at::Tensor x = at::im2col(r.input.narrow(0, n0, ns), {r.kernel_h, r.kernel_w}, {1, 1},
                                      {r.pad_h, r.pad_w}, {r.stride_h, r.stride_w})
                               .reshape({ns * g, d, p});
      const at::Tensor gram = at::bmm(x.transpose(1, 2), x);  // [ns G, P, P]
      const at::Tensor gr = rows.narrow(0, n0, ns).reshape({ns * g, k * cg, p});
      total += (at::bmm(gr, gram) * gr).sum(-1).reshape({ns, g, k, cg}).sum(at::IntArrayRef{0, 2});
    }
    return total.reshape({c});
  }
  // Output channel (n, g, k, c') of group (n, g) is example n's gradient of class k for
  // channel c' of group g.
  const int64_t slice = SliceOf(n, g * k * cg * d * rows.element_size(), options.layer_work_bytes);
  for (int64_t n0 = 0; n0 < n; n0 += slice) {
    const int64_t ns = std::min(slice, n - n0);
    const at::Tensor go = rows.narrow(0, n0, ns).reshape({1, ns * g * k * cg, r.out_h, r.out_w});
    const at::Tensor in = r.input.narrow(0, n0, ns).reshape({1, ns * ci, h, w});
    const at::Tensor shape = at::empty({ns * g * k * cg, ci / g, r.kernel_h, r.kernel_w}, rows.options());
    const at::Tensor grads = std::get<1>(at::convolution_backward(
        go, in, shape, c10::nullopt, {r.stride_h, r.stride_w}, {r.pad_h, r.pad_w}, {1, 1}, /*transposed=*/false,
        {0, 0}, ns * g, {false, true, false}));
    total += grads.reshape({ns, g, k, cg, d}).pow(2).sum(at::IntArrayRef{0, 2, 4});
  }
  return total.reshape({c});
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

    const at::Tensor z = logits.detach();
    const at::Tensor order = z.argsort(1, /*descending=*/true);
    const at::Tensor top = order.select(1, 0).unsqueeze(1);
    // Classes are taken in chunks whose output gradients fit options.class_chunk_bytes, so
    // that each layer's per-example gradients for the whole chunk come from one call.
    int64_t bytes_per_class = 0;
    for (size_t j = 0; j < layer_records.size(); ++j) bytes_per_class += Bytes(targets[j]);
    const int64_t chunk = SliceOf(k_max, bytes_per_class, options.class_chunk_bytes);
    at::Tensor act_sums = at::zeros({static_cast<int64_t>(act_slots.size())}, z.options().dtype(at::kDouble));
    for (int64_t k0 = 1; k0 < k_max; k0 += chunk) {
      const int64_t k1 = std::min(k_max, k0 + chunk);
      std::vector<at::Tensor> buffers(layer_records.size());
      for (int64_t k = k0; k < k1; ++k) {
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
          if (!buffers[j].defined()) buffers[j] = GradBuffer(*layer_records[j], targets[j], k1 - k0);
          StoreGrad(*layer_records[j], grads[j], k - k0, buffers[j]);
        }
        for (size_t j = 0; j < act_slots.size(); ++j) {
          const at::Tensor& g = grads[first_act + j];
          if (g.defined()) act_sums[static_cast<int64_t>(j)] += g.to(at::kDouble).pow(2).sum();
        }
      }
      at::NoGradGuard no_grad;
      for (size_t j = 0; j < layer_records.size(); ++j) {
        if (!buffers[j].defined()) continue;
        layers[layer_slots[j]].sum += ChannelGradSquares(*layer_records[j], buffers[j], options).to(at::kDouble);
        buffers[j].reset();  // free as we go
      }
    }
    if (!act_slots.empty()) {
      const at::Tensor host = act_sums.to(at::kCPU);
      for (size_t j = 0; j < act_slots.size(); ++j) acts[act_slots[j]].sum += host[static_cast<int64_t>(j)].item<double>();
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
      const at::Tensor mean_w = abs_w.mean(1).contiguous(), mean_q = abs_q.mean(1).contiguous();
      const auto e = energy.accessor<double, 1>();
      const auto mw = mean_w.accessor<double, 1>();
      const auto mq = mean_q.accessor<double, 1>();
      for (int64_t i = 0; i < c; ++i) {
        GroupSensitivity g{w.name, true, i, w.bits[i], per_channel, e[i], mw[i]};
        g.mean_abs_quantized_weight = mq[i];
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
