#include "lib/nn/layer_record.h"

#include <utility>

namespace mpq::nn {
namespace {
thread_local LayerRecorder* active_recorder = nullptr;
}

LayerRecorder::LayerRecorder() : previous_(active_recorder) { active_recorder = this; }
LayerRecorder::~LayerRecorder() { active_recorder = previous_; }
LayerRecorder* LayerRecorder::Active() { return active_recorder; }

LayerRecord ConvRecord(const torch::nn::Module* module, int64_t in_channels, int64_t out_channels, int64_t groups,
                       const int64_t* kernel, const int64_t* stride, const int64_t* padding,
                       std::vector<int64_t> weight_bits, const at::Tensor& x, const at::Tensor& y) {
  LayerRecord r;
  r.module = module;
  r.in_channels = in_channels;
  r.out_channels = out_channels;
  r.groups = groups;
  r.kernel_h = kernel[0];
  r.kernel_w = kernel[1];
  r.out_h = y.size(2);
  r.out_w = y.size(3);
  r.stride_h = stride[0];
  r.stride_w = stride[1];
  r.pad_h = padding[0];
  r.pad_w = padding[1];
  r.weight_bits = std::move(weight_bits);
  r.input = x;
  r.input_elements = x.numel() / x.size(0);
  r.output = y;
  return r;
}

std::vector<int64_t> PerChannelBits(const at::Tensor& bits, int64_t out_channels) {
  const at::Tensor b = bits.to(at::kCPU, at::kLong).contiguous();
  const int64_t* p = b.data_ptr<int64_t>();
  std::vector<int64_t> result(out_channels);
  for (int64_t c = 0; c < out_channels; ++c) result[c] = b.numel() == 1 ? p[0] : p[c];
  return result;
}

}  // namespace mpq::nn
