#include "lib/cost/cost_model.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "lib/nn/layer_record.h"
#include "lib/runtime/device.h"

namespace mpq::cost {
namespace {

int64_t CeilLog2(int64_t d) {
  int64_t bits = 0;
  while ((int64_t{1} << bits) < d) ++bits;
  return bits;
}

}  // namespace

CostReport ComputeCost(std::vector<LayerCost> layers, std::vector<ActivationCost> activations) {
  CostReport report;
  CostTotals& t = report.totals;
  double weighted_w = 0, weighted_a = 0, act_elements = 0, memory_weight_bits = 0;
  for (LayerCost& l : layers) {
    TORCH_CHECK(l.in_channels > 0 && l.out_channels > 0 && l.groups > 0 && l.in_channels % l.groups == 0,
                "cost: layer '", l.name, "': in_channels ", l.in_channels, " / groups ", l.groups, " invalid");
    TORCH_CHECK(static_cast<int64_t>(l.weight_bits.size()) == l.out_channels, "cost: layer '", l.name, "': ",
                l.weight_bits.size(), " weight bit-widths for ", l.out_channels, " output channels");
    TORCH_CHECK(l.act_bits >= 1 && l.act_bits <= 32, "cost: layer '", l.name, "': act_bits ", l.act_bits,
                " out of range [1, 32]");
    const int64_t d = nn::TermsPerOutput(l.in_channels, l.groups, l.kernel_h, l.kernel_w);
    const double outputs = static_cast<double>(l.out_h) * l.out_w;
    const double a = static_cast<double>(l.act_bits);
    const double log2d = static_cast<double>(CeilLog2(d));
    l.params = d * l.out_channels;
    l.macs = l.bitops = l.cc = l.weight_bytes = 0;
    l.channel_bitops.clear();
    l.channel_cc.clear();
    l.channel_weight_bytes.clear();
    for (int64_t b : l.weight_bits) {
      TORCH_CHECK(b >= 1 && b <= 32, "cost: layer '", l.name, "': weight bits ", b, " out of range [1, 32]");
      const double w = static_cast<double>(b);
      l.channel_bitops.push_back(d * outputs * w * a);
      l.channel_cc.push_back(outputs * (d * w * a + (d - 1) * (w + a + log2d - 1)));
      l.channel_weight_bytes.push_back(d * w / 8);
      l.macs += d * outputs;
      l.bitops += l.channel_bitops.back();
      l.cc += l.channel_cc.back();
      l.weight_bytes += l.channel_weight_bytes.back();
      weighted_w += d * w;
      memory_weight_bits += (d + (l.has_bias ? 1 : 0)) * w;
    }
    l.act_bytes = l.input_elements * a / 8;
    weighted_a += l.input_elements * a;
    act_elements += static_cast<double>(l.input_elements);
    if (t.first_layer_macs == 0) t.first_layer_macs = l.macs;
    t.params += l.params;
    t.macs += l.macs;
    t.bitops += l.bitops;
    t.cc += l.cc;
    t.weight_bytes += l.weight_bytes;
    t.act_bytes_sum += l.act_bytes;
    t.act_bytes_max = std::max(t.act_bytes_max, l.act_bytes);
  }
  if (t.params > 0) {
    t.bw_eff = weighted_w / static_cast<double>(t.params);
    t.compression_ratio = 16.0 * static_cast<double>(t.params) / weighted_w;
  }
  if (act_elements > 0) t.ba_eff = weighted_a / act_elements;
  t.memory_weight_kb = memory_weight_bits / 8 / 1024;
  for (ActivationCost& a : activations) {
    TORCH_CHECK(a.bits >= 1 && a.bits <= 32, "cost: activation '", a.name, "': bits ", a.bits, " out of range [1, 32]");
    a.kb = static_cast<double>(a.elements) * static_cast<double>(a.bits) / 8 / 1024;
    t.memory_act_kb_sum += a.kb;
    t.memory_act_kb_max = std::max(t.memory_act_kb_max, a.kb);
  }
  report.layers = std::move(layers);
  report.activations = std::move(activations);
  return report;
}

CostReport CostOfAllocation(std::vector<LayerCost> layers, const alloc::Allocation& allocation,
                            std::vector<ActivationCost> activations) {
  std::map<std::string, std::vector<const alloc::GroupBits*>> weights;
  std::map<std::string, int64_t> acts;
  for (const alloc::GroupBits& g : allocation.groups) {
    if (g.is_weight) {
      weights[g.layer].push_back(&g);
    } else {
      acts[g.layer] = g.bits;
    }
  }
  for (LayerCost& l : layers) {
    if (auto it = weights.find(l.name); it != weights.end()) {
      const bool whole_layer = it->second.size() == 1 && l.out_channels > 1;
      for (const alloc::GroupBits* g : it->second) {
        if (whole_layer) {
          std::fill(l.weight_bits.begin(), l.weight_bits.end(), g->bits);
        } else {
          TORCH_CHECK(g->group >= 0 && g->group < l.out_channels, "cost: layer '", l.name, "' has ", l.out_channels,
                      " output channels; the allocation names group ", g->group);
          l.weight_bits[g->group] = g->bits;
        }
      }
    }
    if (auto it = acts.find(l.act_layer); !l.act_layer.empty() && it != acts.end()) l.act_bits = it->second;
  }
  for (ActivationCost& a : activations) {
    if (auto it = acts.find(a.name); it != acts.end()) a.bits = it->second;
  }
  return ComputeCost(std::move(layers), std::move(activations));
}

CostReport MeasureModelCost(const torch::nn::Module& module, const std::function<at::Tensor(const at::Tensor&)>& forward,
                            std::vector<int64_t> input_shape, int64_t input_bits) {
  std::map<const torch::nn::Module*, std::string> names;
  for (const auto& item : module.named_modules()) names[item.value().get()] = item.key();

  const at::Tensor input = at::zeros(input_shape, at::TensorOptions().device(runtime::DeviceOf(module)));
  nn::LayerRecorder recorder;
  {
    at::NoGradGuard no_grad;
    forward(input);
  }
  // A layer's input bits: those of the quantizer whose output tensor it consumed. The
  // records hold their tensors, so no storage was reused during the pass.
  std::map<const void*, const nn::ActivationRecord*> producer;
  for (const nn::ActivationRecord& a : recorder.activations()) producer[a.output.data_ptr()] = &a;
  for (const auto& [source, derived] : recorder.aliases()) {
    if (auto it = producer.find(source.data_ptr()); it != producer.end()) producer[derived.data_ptr()] = it->second;
  }
  std::vector<LayerCost> layers;
  for (const nn::LayerRecord& r : recorder.layers()) {
    LayerCost l;
    auto it = names.find(r.module);
    l.name = it != names.end() ? (it->second.empty() ? "<root>" : it->second) : "<unnamed>";
    l.is_linear = r.is_linear;
    l.in_channels = r.in_channels;
    l.out_channels = r.out_channels;
    l.groups = r.groups;
    l.kernel_h = r.kernel_h;
    l.kernel_w = r.kernel_w;
    l.out_h = r.out_h;
    l.out_w = r.out_w;
    l.weight_bits = r.weight_bits;
    l.has_bias = r.has_bias;
    l.input_elements = r.input_elements;
    const auto produced = producer.find(r.input.data_ptr());
    l.act_bits = produced != producer.end() ? produced->second->bits
                                            : (r.input.data_ptr() == input.data_ptr() ? input_bits : 32);
    if (produced != producer.end()) {
      auto name = names.find(produced->second->module);
      if (name != names.end()) l.act_layer = name->second;
    }
    layers.push_back(std::move(l));
  }
  std::vector<ActivationCost> activations;
  for (const nn::ActivationRecord& a : recorder.activations()) {
    ActivationCost c;
    auto it = names.find(a.module);
    c.name = it != names.end() ? it->second : "<unnamed>";
    c.elements = a.elements;
    c.bits = a.bits;
    activations.push_back(std::move(c));
  }
  return ComputeCost(std::move(layers), std::move(activations));
}

}  // namespace mpq::cost
