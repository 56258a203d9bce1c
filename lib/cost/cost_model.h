// cost_model.h — the cost of a (mixed-precision) network: MACs, BitOps, IMPQ's C_C
// (full-adder count), weight and activation sizes, effective bit-widths and compression
// ratio, per layer and in total. Definitions and derivations: docs/cost_model.md.
//
//   CostReport cost = MeasureModelCost(*model, [&](const at::Tensor& x) { return model->forward(x); },
//                                      {1, 3, 224, 224});
//   std::printf("%.1f Gbit-OPs\n", cost.totals.cc / 1e9);
//
// Per layer l with D = (C_in / groups) k_h k_w terms per output, P = H_out W_out outputs
// per output channel c, weight bits B_c and input-activation bits A:
//   MACs_l    = sum_c D P                         (= C_out D H_out W_out)
//   BitOps_l  = sum_c D P B_c A
//   C_C_l     = sum_c P [D B_c A + (D - 1)(B_c + A + ceil(log2 D) - 1)]    (Sakr & Shanbhag)
//   W_l bytes = sum_c D B_c / 8;   A_l bytes = (input elements per example) A / 8
// Totals: sums; activation size also as the max over layers; B_w,eff = sum N B / sum N
// over weights; B_a,eff likewise over input activations; CR = 16 sum N / sum N B.
// Full-precision groups (32 bits) count with 32 bits. Biases and BatchNorm are not
// counted. Linear layers: D = in_features, P = 1.
//
// Memory as Uhlich et al. count it (sony/ai-research-code mixed-precision-dnns,
// train_resnet.py network_size_weights / network_size_activations), in KB = bits / 8 / 1024:
//   memory_weight_kb  = sum_l sum_c B_c (D + [bias]) / 8 / 1024   (biases at their channel's bits)
//   memory_act_kb_max = max_q A_q E_q / 8 / 1024,  memory_act_kb_sum = sum_q A_q E_q / 8 / 1024
// over the activation quantizers q (each quantizer output, E_q elements per example at
// A_q bits; under kReluOutput placement each quantized ReLU, as their `nonl`), not over
// layer inputs: a tensor read by two layers counts once.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/alloc/group_bits.h"

namespace torch::nn {
class Module;
}

namespace mpq::cost {

struct LayerCost {
  // Geometry and bits (inputs).
  std::string name;
  bool is_linear = false;
  int64_t in_channels = 0, out_channels = 0, groups = 1;
  int64_t kernel_h = 1, kernel_w = 1, out_h = 1, out_w = 1;
  std::vector<int64_t> weight_bits;  // one per output channel
  int64_t act_bits = 32;             // bits of this layer's input activation
  std::string act_layer;             // the quantizer module that produced the input ("" = none)
  int64_t input_elements = 0;        // per example
  bool has_bias = false;             // memory_weight_kb counts one bias per output channel

  // Costs (filled by ComputeCost): layer totals, and per output channel (the group of
  // kernel-wise precision) for BitOps, C_C and weight size. MACs per channel = macs / C_out.
  int64_t params = 0;
  double macs = 0, bitops = 0, cc = 0, weight_bytes = 0, act_bytes = 0;
  std::vector<double> channel_bitops, channel_cc, channel_weight_bytes;
};

// One activation quantizer's output, for the memory cost.
struct ActivationCost {
  std::string name;       // the quantizer module
  int64_t elements = 0;   // per example
  int64_t bits = 32;
  double kb = 0;          // filled by ComputeCost: elements bits / 8 / 1024
};

struct CostTotals {
  int64_t params = 0;
  double macs = 0, bitops = 0, cc = 0;
  double first_layer_macs = 0;  // EdMIPS normalizes BitOps by the first layer's MACs
  double weight_bytes = 0, act_bytes_sum = 0, act_bytes_max = 0;
  double bw_eff = 0, ba_eff = 0, compression_ratio = 0;
  // Uhlich et al.'s memory (above); 0 activation KB when no activation is quantized.
  double memory_weight_kb = 0, memory_act_kb_max = 0, memory_act_kb_sum = 0;
};

struct CostReport {
  std::vector<LayerCost> layers;
  std::vector<ActivationCost> activations;
  CostTotals totals;
};

// Fills the cost fields of each layer and the totals. TORCH_CHECK errors name the layer
// and the offending value (bits out of range, channel counts not divisible by groups).
CostReport ComputeCost(std::vector<LayerCost> layers, std::vector<ActivationCost> activations = {});

// The cost of `layers` (from MeasureModelCost) with the bits of `allocation` instead of
// the measured ones: weight groups by layer name (one group = the whole layer, else one
// per output channel), activation groups by act_layer. Groups the allocation does not
// name keep their bits. For methods that search allocations without running the model.
CostReport CostOfAllocation(std::vector<LayerCost> layers, const alloc::Allocation& allocation,
                            std::vector<ActivationCost> activations = {});

// Runs `forward` once on zeros of `input_shape` (batch 1 recommended) without
// gradients, records every QConv2d / QLinear / MixQConv2d call and the QAct / MixQAct
// that produced its input, and computes the cost. A layer whose input is the network
// input gets `input_bits`; one fed by anything other than a quantizer module counts as
// full precision (32). Layer names come from module.named_modules().
CostReport MeasureModelCost(const torch::nn::Module& module, const std::function<at::Tensor(const at::Tensor&)>& forward,
                            std::vector<int64_t> input_shape, int64_t input_bits = 8);

}  // namespace mpq::cost
