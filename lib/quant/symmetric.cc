#include "lib/quant/symmetric.h"

#include <ATen/ops/empty.h>
#include <torch/csrc/autograd/custom_function.h>

#include "lib/quant/common.h"
#include "lib/quant/kernels.h"
#include "lib/quant/op_chain.h"

namespace mpq::quant {
namespace {

constexpr char kName[] = "SymmetricQuantize";

struct SymmetricFunction : public torch::autograd::Function<SymmetricFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext*, const at::Tensor& w, const at::Tensor& bits) {
    const GroupLayout layout = LayoutFor(kName, w, bits);
    const at::Tensor b = CheckedBits(kName, bits, kSymmetricMinBits, kSymmetricMaxBits);
    const at::Tensor in = w.contiguous();
    at::Tensor out = at::empty(in.sizes(), in.options());
    at::Tensor scale = at::empty({layout.groups}, in.options());
    const bool finite = CpuKernels().symmetric_forward(in.data_ptr<float>(), b.data_ptr<int32_t>(), layout.groups,
                                                       layout.group_size, out.data_ptr<float>(),
                                                       scale.data_ptr<float>());
    CheckFiniteResult(kName, finite, w);
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext*,
                                               torch::autograd::tensor_list grads) {
    return {grads[0], at::Tensor()};
  }
};

}  // namespace

at::Tensor SymmetricQuantize(const at::Tensor& w, const at::Tensor& bits) {
  CheckFloatInput(kName, w);
  if (!w.device().is_cpu()) {
    LayoutFor(kName, w, bits);
    return op_chain::Symmetric(w, CheckedBits(kName, bits, kSymmetricMinBits, kSymmetricMaxBits).to(w.device()));
  }
  return SymmetricFunction::apply(w, bits);
}

}  // namespace mpq::quant
