// layer_record.h — what the quantized modules report about themselves during a forward
// pass while a LayerRecorder is active on the thread: layer geometry, weight bits and
// which activation (by data pointer; records hold their tensors) fed them. lib/cost turns this into MACs, BitOps,
// C_C and sizes. Costs one null-pointer check per module call when no recorder is active.
//
//   LayerRecorder recorder;                 // active until destroyed
//   model->forward(at::zeros({1, 3, 224, 224}));
//   for (const LayerRecord& r : recorder.layers()) ...
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace torch::nn {
class Module;
}

namespace mpq::nn {

struct LayerRecord {
  const torch::nn::Module* module = nullptr;
  bool is_linear = false;
  int64_t in_channels = 0, out_channels = 0, groups = 1;
  int64_t kernel_h = 1, kernel_w = 1, out_h = 1, out_w = 1;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;  // convolutions
  std::vector<int64_t> weight_bits;  // one per output channel (per-tensor bits repeated)
  bool has_bias = false;             // one bias per output channel (memory counts it)
  // The input tensor, held so that no other tensor can reuse its storage while the
  // recorder lives: its data pointer then identifies the QAct that produced it.
  at::Tensor input;
  int64_t input_elements = 0;        // per example
  // The layer's output (before any bias-free follower); lib/alloc's sensitivity takes
  // gradients with respect to it when the forward ran with gradients enabled.
  at::Tensor output;
};

struct ActivationRecord {
  const torch::nn::Module* module = nullptr;
  at::Tensor output;  // held for the same reason
  int64_t bits = 32;
  int64_t elements = 0;  // per example
};

class LayerRecorder {
 public:
  LayerRecorder();
  ~LayerRecorder();
  LayerRecorder(const LayerRecorder&) = delete;
  LayerRecorder& operator=(const LayerRecorder&) = delete;

  // The recorder active on this thread, or nullptr.
  static LayerRecorder* Active();

  void Add(LayerRecord record) { layers_.push_back(std::move(record)); }
  void Add(ActivationRecord record) { activations_.push_back(record); }
  // `derived` holds the values of `source` rearranged, no new ones (max pooling of a
  // quantized tensor): the cost model gives a layer reading it the source's bits.
  void AddAlias(const at::Tensor& source, const at::Tensor& derived) { aliases_.emplace_back(source, derived); }
  const std::vector<std::pair<at::Tensor, at::Tensor>>& aliases() const { return aliases_; }
  const std::vector<LayerRecord>& layers() const { return layers_; }
  const std::vector<ActivationRecord>& activations() const { return activations_; }

 private:
  LayerRecorder* previous_;
  std::vector<LayerRecord> layers_;
  std::vector<ActivationRecord> activations_;
  std::vector<std::pair<at::Tensor, at::Tensor>> aliases_;
};

// D, the terms of one output of a convolution (C_in / groups) k_h k_w; a linear layer
// is the case groups = k_h = k_w = 1. The one place of this formula (cost model,
// EdMIPS's penalty and sensitivity use it).
inline int64_t TermsPerOutput(int64_t in_channels, int64_t groups, int64_t kernel_h, int64_t kernel_w) {
  return (in_channels / groups) * kernel_h * kernel_w;
}
// MACs of a layer: C_out D H_out W_out.
inline double Macs(int64_t in_channels, int64_t out_channels, int64_t groups, int64_t kernel_h, int64_t kernel_w,
                   int64_t out_h, int64_t out_w) {
  return static_cast<double>(out_channels) * TermsPerOutput(in_channels, groups, kernel_h, kernel_w) *
         static_cast<double>(out_h) * static_cast<double>(out_w);
}
inline double Macs(const LayerRecord& r) {
  return Macs(r.in_channels, r.out_channels, r.groups, r.kernel_h, r.kernel_w, r.out_h, r.out_w);
}

// The record of a 2-D convolution call y = conv(x) (x [N, C, H, W]), filled from its
// options; QConv2d and MixQConv2d both report through it.
LayerRecord ConvRecord(const torch::nn::Module* module, int64_t in_channels, int64_t out_channels, int64_t groups,
                       const int64_t* kernel, const int64_t* stride, const int64_t* padding,
                       std::vector<int64_t> weight_bits, const at::Tensor& x, const at::Tensor& y);

// Expands a bits buffer ([1] or [C_out]) to one value per output channel.
std::vector<int64_t> PerChannelBits(const at::Tensor& bits, int64_t out_channels);

}  // namespace mpq::nn
