#include "lib/alloc/hessian_trace.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "datasets/for_each_batch.h"
#include "datasets/random.h"
#include "lib/nn/qconv.h"
#include "lib/runtime/digest.h"
#include "lib/runtime/interrupt.h"

namespace mpq::alloc {
namespace {

struct Layer {
  std::string name;
  at::Tensor weight;
};

std::vector<Layer> QuantizableLayers(models::Model& model) {
  std::vector<Layer> layers;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    if (auto* conv = item.value()->as<nn::QConv2dImpl>()) layers.push_back({item.key(), conv->weight});
    if (auto* fc = item.value()->as<nn::QLinearImpl>()) layers.push_back({item.key(), fc->weight});
  }
  return layers;
}

}  // namespace

const char* Name(TraceProducts products) { return products == TraceProducts::kJoint ? "joint" : "per_layer"; }

at::Tensor HutchinsonVector(const at::Tensor& weight, uint64_t seed, int64_t iteration, int64_t layer) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(
      data::MixSeed(seed, static_cast<uint64_t>(iteration), static_cast<uint64_t>(layer)));
  at::Tensor v = at::randint(0, 2, weight.sizes(), gen, at::TensorOptions().dtype(at::kFloat));
  return (v * 2 - 1).to(weight.device());
}

double LayerTrace::StandardError() const {
  if (iterations < 2) return 0;
  const double n = static_cast<double>(iterations), mean = sum / n;
  const double variance = std::max(0.0, (sum_squares - n * mean * mean) / (n - 1));
  return std::sqrt(variance / n);
}

bool HutchinsonState::Finished(const HutchinsonOptions& options) const {
  if (layers.empty()) return false;
  for (const LayerTrace& l : layers) {
    if (!l.converged && l.iterations < options.max_iterations) return false;
  }
  return true;
}

absl::Status EstimateHessianTraces(models::Model& model, data::DataLoader& loader, const HutchinsonOptions& options,
                                   HutchinsonState* state,
                                   const std::function<absl::Status(const HutchinsonState&)>& after_iteration) {
  const std::vector<Layer> layers = QuantizableLayers(model);
  if (layers.empty()) return absl::InvalidArgumentError("hessian trace: the model has no QConv2d or QLinear layer");
  if (state->layers.empty()) {
    state->iteration = 0;
    for (const Layer& l : layers) {
      LayerTrace t;
      t.layer = l.name;
      t.params = l.weight.numel();
      state->layers.push_back(t);
    }
  } else if (state->layers.size() != layers.size()) {
    return absl::InvalidArgumentError(absl::StrCat("hessian trace: the saved state has ", state->layers.size(),
                                                   " layers but the model ", layers.size(), "; expected the same network"));
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    if (state->layers[i].layer != layers[i].name) {
      return absl::InvalidArgumentError(absl::StrCat("hessian trace: saved layer ", i, " is '", state->layers[i].layer,
                                                     "', the model's is '", layers[i].name, "'"));
    }
  }
  const bool was_training = model.is_training();
  model.eval();
  absl::Status status;
  while (!state->Finished(options)) {
    const int64_t k = state->iteration + 1;
    status = runtime::CheckInterrupt(absl::StrCat("Hutchinson iteration ", k));
    if (!status.ok()) break;
    std::vector<size_t> active;
    std::vector<at::Tensor> weights, v, hv;
    for (size_t i = 0; i < layers.size(); ++i) {
      const LayerTrace& t = state->layers[i];
      if (t.converged || t.iterations >= options.max_iterations) continue;
      active.push_back(i);
      weights.push_back(layers[i].weight);
      v.push_back(HutchinsonVector(layers[i].weight, options.seed, k, static_cast<int64_t>(i)));
      hv.push_back(at::zeros_like(layers[i].weight));
    }
    int64_t examples = 0;
    status = data::ForEachBatch(loader, 0, [&](const data::Batch& batch) -> absl::Status {
      at::AutoGradMode grad_mode(true);
      const at::Tensor logits = model.forward(batch.images);
      if (logits.dim() != 2) {
        return absl::InvalidArgumentError(absl::StrCat("hessian trace: the model returned logits of shape ",
                                                       c10::str(logits.sizes()), "; expected [N, classes]"));
      }
      const at::Tensor loss = at::cross_entropy_loss(logits, batch.labels.to(logits.device()));
      const std::vector<at::Tensor> grads =
          torch::autograd::grad({loss}, weights, {}, /*retain_graph=*/true, /*create_graph=*/true);
      const double n = static_cast<double>(batch.labels.size(0));
      if (options.products == TraceProducts::kJoint) {
        at::Tensor gv = at::zeros({}, loss.options());
        for (size_t j = 0; j < grads.size(); ++j) gv = gv + (grads[j] * v[j]).sum();
        const std::vector<at::Tensor> h = torch::autograd::grad({gv}, weights, {}, /*retain_graph=*/false);
        for (size_t j = 0; j < h.size(); ++j) hv[j].add_(h[j].detach(), n);
      } else {
        for (size_t j = 0; j < grads.size(); ++j) {
          const bool last = j + 1 == grads.size();
          const at::Tensor h =
              torch::autograd::grad({(grads[j] * v[j]).sum()}, {weights[j]}, {}, /*retain_graph=*/!last)[0];
          hv[j].add_(h.detach(), n);
        }
      }
      examples += batch.labels.size(0);
      return absl::OkStatus();
    });
    if (!status.ok()) break;
    if (examples == 0) {
      status = absl::InvalidArgumentError("hessian trace: the calibration loader produced no examples");
      break;
    }
    for (size_t j = 0; j < active.size(); ++j) {
      LayerTrace& t = state->layers[active[j]];
      const double sample = (hv[j] / static_cast<double>(examples) * v[j]).sum(at::kDouble).item<double>();
      if (!std::isfinite(sample)) {
        status = absl::InternalError(absl::StrFormat("hessian trace: layer '%s' gave a non-finite v^T H v (%g) at "
                                                     "iteration %d; the network or its data hold NaN/Inf",
                                                     t.layer, sample, k));
        break;
      }
      const double previous = t.iterations > 0 ? t.sum / static_cast<double>(t.iterations) : 0.0;
      t.sum += sample;
      t.sum_squares += sample * sample;
      ++t.iterations;
      t.trace = t.sum / static_cast<double>(t.iterations);
      t.relative_change = std::abs(t.trace - previous) / (std::abs(previous) + 1e-6);
      t.converged = t.relative_change < options.tolerance;
    }
    if (!status.ok()) break;
    state->iteration = k;
    if (after_iteration) {
      status = after_iteration(*state);
      if (!status.ok()) break;
    }
  }
  model.train(was_training);
  return status;
}

namespace {

void AddTensor(runtime::Fnv1a64& h, const std::string& name, const at::Tensor& t) {
  const at::Tensor c = t.detach().cpu().contiguous();
  h.Add(name).Add(std::string(c.dtype().name()));
  for (int64_t d : c.sizes()) h.Add(std::to_string(d)).Add("x");
  h.Add(std::string_view(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size()));
}

}  // namespace

absl::StatusOr<std::string> HutchinsonInputsDigest(models::Model& model, data::DataLoader& loader,
                                                   const HutchinsonOptions& options) {
  runtime::Fnv1a64 h;
  h.Add("hutchinson-inputs-v1;").Add(Name(options.products));
  h.Add(absl::StrFormat(";%d;%.17g;%d;", options.max_iterations, options.tolerance, options.seed));
  for (const auto& p : model.named_parameters(/*recurse=*/true)) AddTensor(h, "p:" + p.key(), p.value());
  for (const auto& b : model.named_buffers(/*recurse=*/true)) AddTensor(h, "b:" + b.key(), b.value());
  int64_t batches = 0;
  absl::Status s = data::ForEachBatch(loader, 0, [&](const data::Batch& batch) {
    AddTensor(h, absl::StrCat("x", batches), batch.images);
    AddTensor(h, absl::StrCat("y", batches), batch.labels);
    ++batches;
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return h.Hex();
}

}  // namespace mpq::alloc
