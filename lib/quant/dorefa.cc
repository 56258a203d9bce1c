#include "lib/quant/dorefa.h"

#include <ATen/ops/empty.h>
#include <torch/csrc/autograd/custom_function.h>

#include "lib/quant/common.h"
#include "lib/quant/kernels.h"
#include "lib/quant/op_chain.h"

namespace mpq::quant {
namespace {

constexpr char kWeightName[] = "DorefaQuantizeWeight";
constexpr char kActName[] = "DorefaQuantizeActivation";

struct DorefaWeightFunction : public torch::autograd::Function<DorefaWeightFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& w, const at::Tensor& bits) {
    const GroupLayout layout = LayoutFor(kWeightName, w, bits);
    const at::Tensor b = CheckedBits(kWeightName, bits, 1, kDorefaMaxBits);
    const at::Tensor in = w.contiguous();
    at::Tensor out = at::empty(in.sizes(), in.options());
    at::Tensor stat = at::empty({layout.groups}, in.options());
    const bool finite = CpuKernels().dorefa_weight_forward(in.data_ptr<float>(), b.data_ptr<int32_t>(), layout.groups,
                                                           layout.group_size, out.data_ptr<float>(),
                                                           stat.data_ptr<float>());
    CheckFiniteResult(kWeightName, finite, w);
    ctx->save_for_backward({in, b, stat});
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& in = saved[0];
    const at::Tensor& b = saved[1];
    const at::Tensor& stat = saved[2];
    const at::Tensor g = grads[0].contiguous();
    at::Tensor grad_w = at::empty(in.sizes(), in.options());
    const int64_t groups = b.numel();
    CpuKernels().dorefa_weight_backward(in.data_ptr<float>(), g.data_ptr<float>(), b.data_ptr<int32_t>(),
                                        stat.data_ptr<float>(), groups, in.numel() / groups,
                                        grad_w.data_ptr<float>());
    return {grad_w, at::Tensor()};
  }
};

struct DorefaActFunction : public torch::autograd::Function<DorefaActFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t bits) {
    const at::Tensor in = x.contiguous();
    at::Tensor out = at::empty(in.sizes(), in.options());
    const bool finite = CpuKernels().dorefa_act_forward(in.data_ptr<float>(), static_cast<int32_t>(bits),
                                                        in.numel(), out.data_ptr<float>());
    CheckFiniteResult(kActName, finite, x);
    ctx->save_for_backward({in});
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const at::Tensor in = ctx->get_saved_variables()[0];
    const at::Tensor g = grads[0].contiguous();
    at::Tensor grad_x = at::empty(in.sizes(), in.options());
    CpuKernels().dorefa_act_backward(in.data_ptr<float>(), g.data_ptr<float>(), in.numel(), grad_x.data_ptr<float>());
    return {grad_x, at::Tensor()};
  }
};

}  // namespace

at::Tensor DorefaQuantizeWeight(const at::Tensor& w, const at::Tensor& bits) {
  CheckFloatInput(kWeightName, w);
  if (!w.device().is_cpu()) {
    LayoutFor(kWeightName, w, bits);
    return op_chain::DorefaWeight(w, CheckedBits(kWeightName, bits, 1, kDorefaMaxBits).to(w.device()));
  }
  return DorefaWeightFunction::apply(w, bits);
}

at::Tensor DorefaQuantizeActivation(const at::Tensor& x, int64_t bits) {
  CheckFloatInput(kActName, x);
  CheckScalarBits(kActName, bits, 1, kDorefaMaxBits);
  if (!x.device().is_cpu()) return op_chain::DorefaActivation(x, bits);
  return DorefaActFunction::apply(x, bits);
}

}  // namespace mpq::quant
