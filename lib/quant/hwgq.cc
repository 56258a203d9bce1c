#include "lib/quant/hwgq.h"

#include <ATen/ops/empty.h>
#include <torch/csrc/autograd/custom_function.h>

#include <vector>

#include "lib/quant/common.h"
#include "lib/quant/hwgq_tables.h"
#include "lib/quant/kernels.h"
#include "lib/quant/op_chain.h"

namespace mpq::quant {
namespace {

constexpr char kWeightName[] = "HwgqQuantizeWeight";
constexpr char kActName[] = "HwgqQuantizeActivation";

struct HwgqWeightFunction : public torch::autograd::Function<HwgqWeightFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext*, const at::Tensor& w, const at::Tensor& bits) {
    const GroupLayout layout = LayoutFor(kWeightName, w, bits);
    const at::Tensor b = CheckedBits(kWeightName, bits, kHwgqMinBits, kHwgqMaxBits);
    std::vector<float> coefficients(layout.groups);
    for (int64_t g = 0; g < layout.groups; ++g) coefficients[g] = HwgqWeightCoefficient(b.data_ptr<int32_t>()[g]);
    const at::Tensor in = w.contiguous();
    at::Tensor out = at::empty(in.sizes(), in.options());
    std::vector<float> step(layout.groups);
    const bool finite = CpuKernels().hwgq_weight_forward(in.data_ptr<float>(), b.data_ptr<int32_t>(),
                                                         coefficients.data(), layout.groups, layout.group_size,
                                                         out.data_ptr<float>(), step.data());
    CheckFiniteResult(kWeightName, finite, w);
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext*,
                                               torch::autograd::tensor_list grads) {
    return {grads[0], at::Tensor()};
  }
};

struct HwgqActFunction : public torch::autograd::Function<HwgqActFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t bits) {
    const at::Tensor in = x.contiguous();
    at::Tensor out = at::empty(in.sizes(), in.options());
    const float step = HwgqActivationStep(bits);
    const bool finite = CpuKernels().hwgq_act_forward(in.data_ptr<float>(), step, static_cast<int32_t>(bits),
                                                      in.numel(), out.data_ptr<float>());
    CheckFiniteResult(kActName, finite, x);
    ctx->save_for_backward({in});
    ctx->saved_data["bits"] = bits;
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const at::Tensor in = ctx->get_saved_variables()[0];
    const int64_t bits = ctx->saved_data["bits"].toInt();
    const at::Tensor g = grads[0].contiguous();
    at::Tensor grad_x = at::empty(in.sizes(), in.options());
    CpuKernels().hwgq_act_backward(in.data_ptr<float>(), g.data_ptr<float>(), HwgqActivationStep(bits),
                                   static_cast<int32_t>(bits), in.numel(), grad_x.data_ptr<float>());
    return {grad_x, at::Tensor()};
  }
};

}  // namespace

at::Tensor HwgqQuantizeWeight(const at::Tensor& w, const at::Tensor& bits) {
  CheckFloatInput(kWeightName, w);
  if (!w.device().is_cpu()) {
    LayoutFor(kWeightName, w, bits);
    return op_chain::HwgqWeight(w, CheckedBits(kWeightName, bits, kHwgqMinBits, kHwgqMaxBits));
  }
  return HwgqWeightFunction::apply(w, bits);
}

at::Tensor HwgqQuantizeActivation(const at::Tensor& x, int64_t bits) {
  CheckFloatInput(kActName, x);
  CheckScalarBits(kActName, bits, kHwgqMinBits, kHwgqMaxBits);
  if (!x.device().is_cpu()) return op_chain::HwgqActivation(x, bits);
  return HwgqActFunction::apply(x, bits);
}

}  // namespace mpq::quant
