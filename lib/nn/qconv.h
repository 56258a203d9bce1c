// qconv.h — QConv2d and QLinear: convolution and fully connected layers with fake-
// quantized weights at network/layer (per tensor) or kernel (per output channel)
// granularity, in the style of torch::nn::Conv2d / Linear.
//
//   QConv2d conv(QConv2dOptions(16, 32, 3).stride(2).padding(1).bits(4));
//   conv->weight_bits[5] = 2;          // kernel 5 to 2 bits (an allocator's job)
//   at::Tensor y = conv(x);
//
// The float weight is the trained ("shadow") parameter; forward quantizes it with the
// chosen quantizer (quantizer_options.h) and runs the float op on the result. Bits are
// the buffer `weight_bits` (int32, one per group), 32 = full precision; they and any
// learned quantizer parameters are saved and loaded with the module. Activation
// quantization is a separate QAct on the layer input.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/expanding_array.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <ostream>

#include "lib/nn/quantizer_options.h"
#include "lib/nn/weight_quantization.h"

namespace mpq::nn {

// kernel_size, stride and padding take one value or {height, width}, as torch's.
struct QConv2dOptions {
  QConv2dOptions(int64_t in_channels, int64_t out_channels, torch::ExpandingArray<2> kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(torch::ExpandingArray<2>, kernel_size);
  TORCH_ARG(torch::ExpandingArray<2>, stride) = 1;                   // default 1
  TORCH_ARG(torch::ExpandingArray<2>, padding) = 0;                  // default 0
  TORCH_ARG(int64_t, groups) = 1;                                    // default 1 (depthwise: in_channels)
  TORCH_ARG(bool, bias) = false;                                     // default off (BN follows)
  TORCH_ARG(WeightQuantizer, weight_quantizer) = WeightQuantizer::kLin;  // default IMPQ's Lin
  TORCH_ARG(Granularity, granularity) = Granularity::kPerChannel;    // default per kernel
  TORCH_ARG(int64_t, bits) = 8;                                      // initial bits of every group
  TORCH_ARG(UhlichParametrization, uhlich) = UhlichParametrization::kDeltaXmax;  // kUhlich only
};

class QConv2dImpl : public torch::nn::Cloneable<QConv2dImpl> {
 public:
  explicit QConv2dImpl(QConv2dOptions options);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);
  at::Tensor quantized_weight() const;
  void pretty_print(std::ostream& stream) const override;

  QConv2dOptions options;
  at::Tensor weight;       // [C_out, C_in/groups, k, k]
  at::Tensor bias;         // [C_out] or undefined
  at::Tensor weight_bits;  // buffer, int32 [groups of the quantizer]
  WeightQuantization quantization;
};
TORCH_MODULE(QConv2d);

struct QLinearOptions {
  QLinearOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  TORCH_ARG(bool, bias) = true;                                      // default on
  TORCH_ARG(WeightQuantizer, weight_quantizer) = WeightQuantizer::kLin;
  TORCH_ARG(Granularity, granularity) = Granularity::kPerChannel;
  TORCH_ARG(int64_t, bits) = 8;
  TORCH_ARG(UhlichParametrization, uhlich) = UhlichParametrization::kDeltaXmax;  // kUhlich only
};

class QLinearImpl : public torch::nn::Cloneable<QLinearImpl> {
 public:
  explicit QLinearImpl(QLinearOptions options);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);
  at::Tensor quantized_weight() const;
  void pretty_print(std::ostream& stream) const override;

  QLinearOptions options;
  at::Tensor weight;       // [out, in]
  at::Tensor bias;         // [out] or undefined
  at::Tensor weight_bits;  // buffer, int32 [groups]
  WeightQuantization quantization;
};
TORCH_MODULE(QLinear);

}  // namespace mpq::nn
