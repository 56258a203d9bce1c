#include "lib/nn/layer_record.h"

namespace mpq::nn {
namespace {
thread_local LayerRecorder* active_recorder = nullptr;
}

LayerRecorder::LayerRecorder() : previous_(active_recorder) { active_recorder = this; }
LayerRecorder::~LayerRecorder() { active_recorder = previous_; }
LayerRecorder* LayerRecorder::Active() { return active_recorder; }

std::vector<int64_t> PerChannelBits(const at::Tensor& bits, int64_t out_channels) {
  const at::Tensor b = bits.to(at::kLong).contiguous();
  const int64_t* p = b.data_ptr<int64_t>();
  std::vector<int64_t> result(out_channels);
  for (int64_t c = 0; c < out_channels; ++c) result[c] = b.numel() == 1 ? p[0] : p[c];
  return result;
}

}  // namespace mpq::nn
