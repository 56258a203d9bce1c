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
  const std::vector<LayerRecord>& layers() const { return layers_; }
  const std::vector<ActivationRecord>& activations() const { return activations_; }

 private:
  LayerRecorder* previous_;
  std::vector<LayerRecord> layers_;
  std::vector<ActivationRecord> activations_;
};

// Expands a bits buffer ([1] or [C_out]) to one value per output channel.
std::vector<int64_t> PerChannelBits(const at::Tensor& bits, int64_t out_channels);

}  // namespace mpq::nn
