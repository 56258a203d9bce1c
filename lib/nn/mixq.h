// mixq.h — EdMIPS's search-time modules (Cai & Vasconcelos, CVPR 2020 [1], sec. 3.3-3.4).
//
//   MixQConv2d conv(MixQConv2dOptions(64, 64, 3).padding(1));   // weight bits {1,2,3,4}
//   MixQAct act;                                                 // activation bits {2,3,4}
//   at::Tensor y = conv(act(x));
//   at::Tensor cost = conv->expected_weight_bits() * act->expected_bits();   // for the BitOps Lagrangian
//
// MixQConv2d, the composite convolution ([1] eq. 9): one convolution with weight
// sum_i softmax(alpha)_i Q_{b_i}(W) over a single shared W, where Q_b is the HWGQ weight
// quantizer; its cost does not grow with the number of candidates, and it equals the
// softmax-weighted sum of one convolution per candidate (convolution is linear in the
// weight). MixQAct ([1] eq. 7): sum_i softmax(alpha)_i HWGQ_{b_i}(x). alpha is learned
// (init alpha_init for every candidate, i.e. a uniform mix). selected_bits() is the
// winner-take-all choice argmax(alpha).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/expanding_array.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <ostream>
#include <vector>

namespace mpq::nn {

// kernel_size, stride and padding take one value or {height, width}, as torch's.
struct MixQConv2dOptions {
  MixQConv2dOptions(int64_t in_channels, int64_t out_channels, torch::ExpandingArray<2> kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(torch::ExpandingArray<2>, kernel_size);
  TORCH_ARG(torch::ExpandingArray<2>, stride) = 1;
  TORCH_ARG(torch::ExpandingArray<2>, padding) = 0;
  TORCH_ARG(int64_t, groups) = 1;
  TORCH_ARG(bool, bias) = false;
  TORCH_ARG(std::vector<int64_t>, candidate_bits) = std::vector<int64_t>{1, 2, 3, 4};  // [1]'s weight space
  TORCH_ARG(double, alpha_init) = 0.01;  // [1]'s code
  // false (default): the composite convolution. true: one convolution per candidate,
  // summed with the softmax weights (the same result at n times the cost; for the
  // benchmark that measures what the composite saves).
  TORCH_ARG(bool, parallel) = false;
};

class MixQConv2dImpl : public torch::nn::Cloneable<MixQConv2dImpl> {
 public:
  explicit MixQConv2dImpl(MixQConv2dOptions options);
  void reset() override;
  at::Tensor forward(const at::Tensor& x);
  // sum_i softmax(alpha)_i Q_{b_i}(W): the composite weight.
  at::Tensor composite_weight() const;
  // sum_i softmax(alpha)_i b_i (differentiable in alpha).
  at::Tensor expected_weight_bits() const;
  int64_t selected_bits() const;
  void pretty_print(std::ostream& stream) const override;

  MixQConv2dOptions options;
  at::Tensor weight, bias, alpha;
  at::Tensor candidate_bits;  // buffer, int32 [n]
};
TORCH_MODULE(MixQConv2d);

struct MixQActOptions {
  TORCH_ARG(std::vector<int64_t>, candidate_bits) = std::vector<int64_t>{2, 3, 4};  // [1]'s activation space
  TORCH_ARG(double, alpha_init) = 0.01;
};

class MixQActImpl : public torch::nn::Cloneable<MixQActImpl> {
 public:
  explicit MixQActImpl(MixQActOptions options = {});
  void reset() override;
  at::Tensor forward(const at::Tensor& x);
  at::Tensor expected_bits() const;
  int64_t selected_bits() const;
  void pretty_print(std::ostream& stream) const override;

  MixQActOptions options;
  at::Tensor alpha;
  at::Tensor candidate_bits;  // buffer, int32 [n]
};
TORCH_MODULE(MixQAct);

}  // namespace mpq::nn
