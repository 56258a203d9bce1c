#include "lib/quant/identity_backward.h"

#include <ATen/ops/empty.h>
#include <torch/csrc/autograd/custom_function.h>

#include "lib/quant/common.h"

namespace mpq::quant {
namespace {

struct IdentityBackwardFunction : public torch::autograd::Function<IdentityBackwardFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext*, const at::Tensor& w, const at::Tensor& bits,
                            const char* name, int64_t min_bits, int64_t max_bits, PerGroupWeightKernel kernel) {
    const GroupLayout layout = LayoutFor(name, w, bits);
    const at::Tensor b = CheckedBits(name, bits, min_bits, max_bits);
    const at::Tensor in = w.contiguous();
    at::Tensor out = at::empty(in.sizes(), in.options());
    at::Tensor per_group = at::empty({layout.groups}, in.options());
    const bool finite = (CpuKernels().*kernel)(in.data_ptr<float>(), b.data_ptr<int32_t>(), layout.groups,
                                               layout.group_size, out.data_ptr<float>(), per_group.data_ptr<float>());
    CheckFiniteResult(name, finite, w);
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext*,
                                               torch::autograd::tensor_list grads) {
    return {grads[0], at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor QuantizeWithIdentityBackward(const char* name, const at::Tensor& w, const at::Tensor& bits,
                                        int64_t min_bits, int64_t max_bits, PerGroupWeightKernel kernel,
                                        WeightOpChain op_chain) {
  CheckFloatInput(name, w);
  if (!w.device().is_cpu()) {
    LayoutFor(name, w, bits);
    return op_chain(w, CheckedBits(name, bits, min_bits, max_bits).to(w.device()));
  }
  return IdentityBackwardFunction::apply(w, bits, name, min_bits, max_bits, kernel);
}

}  // namespace mpq::quant
