#include "lib/quant/lin.h"

#include <ATen/ops/empty.h>
#include <torch/csrc/autograd/custom_function.h>

#include "lib/quant/common.h"
#include "lib/quant/kernels.h"
#include "lib/quant/op_chain.h"

namespace mpq::quant {
namespace {

constexpr char kName[] = "LinQuantize";

struct LinFunction : public torch::autograd::Function<LinFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext*, const at::Tensor& w, const at::Tensor& bits) {
    const GroupLayout layout = LayoutFor(kName, w, bits);
    const at::Tensor b = CheckedBits(kName, bits, 1, kLinMaxBits);
    const at::Tensor in = w.contiguous();
    at::Tensor out = at::empty(in.sizes(), in.options());
    at::Tensor scale = at::empty({layout.groups}, in.options());
    const bool finite = CpuKernels().lin_forward(in.data_ptr<float>(), b.data_ptr<int32_t>(), layout.groups,
                                                 layout.group_size, out.data_ptr<float>(), scale.data_ptr<float>());
    CheckFiniteResult(kName, finite, w);
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext*,
                                               torch::autograd::tensor_list grads) {
    return {grads[0], at::Tensor()};
  }
};

}  // namespace

at::Tensor LinQuantize(const at::Tensor& w, const at::Tensor& bits) {
  CheckFloatInput(kName, w);
  if (!w.device().is_cpu()) {
    LayoutFor(kName, w, bits);
    return op_chain::Lin(w, CheckedBits(kName, bits, 1, kLinMaxBits).to(w.device()));
  }
  return LinFunction::apply(w, bits);
}

}  // namespace mpq::quant
