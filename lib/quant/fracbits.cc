#include "lib/quant/fracbits.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <vector>

#include "lib/quant/common.h"
#include "lib/quant/kernels.h"
#include "lib/quant/op_chain.h"

namespace mpq::quant {
namespace {

constexpr char kWeightName[] = "FracBitsQuantizeWeight";
constexpr char kActName[] = "FracBitsQuantizeActivation";

// Real-valued bits as a contiguous float CPU tensor of layout.groups values, each in
// [min_bits, 16] or (weights) >= 32 for full precision.
at::Tensor CheckedFractionalBits(const char* quantizer, const at::Tensor& bits, const GroupLayout& layout,
                                 double min_bits, bool allow_full_precision) {
  TORCH_CHECK(bits.defined() && bits.numel() == layout.groups, quantizer, ": bits has ",
              bits.defined() ? bits.numel() : 0, " values; expected ", layout.groups);
  TORCH_CHECK(at::isFloatingType(bits.scalar_type()), quantizer, ": bits must be a floating-point tensor, got ",
              bits.scalar_type());
  at::Tensor c = bits.detach().to(at::kCPU).to(at::kFloat).contiguous();
  const float* v = c.data_ptr<float>();
  for (int64_t i = 0; i < c.numel(); ++i) {
    const bool full = allow_full_precision && v[i] >= kFullPrecisionBits;
    TORCH_CHECK(full || (v[i] >= min_bits && v[i] <= kFracBitsMaxBits), quantizer, ": bits[", i, "] = ", v[i],
                " is out of range; expected ", min_bits, "..", kFracBitsMaxBits,
                allow_full_precision ? " or >= 32 (full precision)" : "");
  }
  return c;
}

at::Tensor GradLike(const std::vector<double>& values, const at::Tensor& like) {
  return at::tensor(values, at::kDouble).to(like.scalar_type()).reshape(like.sizes());
}

struct WeightFunction : public torch::autograd::Function<WeightFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& w, const at::Tensor& bits) {
    const GroupLayout layout = LayoutFor(kWeightName, w, bits);
    const at::Tensor b = CheckedFractionalBits(kWeightName, bits, layout, kFracBitsMinWeightBits, true);
    const at::Tensor in = w.contiguous();
    at::Tensor out = at::empty(in.sizes(), in.options());
    at::Tensor max_abs = at::empty({layout.groups}, at::kFloat);
    const bool finite = CpuKernels().fracbits_weight_forward(in.data_ptr<float>(), b.data_ptr<float>(), layout.groups,
                                                             layout.group_size, out.data_ptr<float>(),
                                                             max_abs.data_ptr<float>());
    CheckFiniteResult(kWeightName, finite, w);
    ctx->save_for_backward({in, b, max_abs, bits});
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    at::Tensor grad_b;
    if (ctx->needs_input_grad(1)) {
      const at::Tensor &in = s[0], &b = s[1], &max_abs = s[2];
      const at::Tensor g = grads[0].contiguous();
      std::vector<double> gb(b.numel());
      CpuKernels().fracbits_weight_backward(in.data_ptr<float>(), g.data_ptr<float>(), b.data_ptr<float>(),
                                            max_abs.data_ptr<float>(), b.numel(), in.numel() / b.numel(),
                                            gb.data());
      grad_b = GradLike(gb, s[3]);
    }
    return {grads[0], grad_b};
  }
};

struct ActFunction : public torch::autograd::Function<ActFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& bits,
                            const at::Tensor& alpha) {
    const GroupLayout one{1, x.numel()};
    const at::Tensor b = CheckedFractionalBits(kActName, bits, one, kFracBitsMinActBits, false);
    const at::Tensor a = CheckedPositiveParameter(kActName, "alpha", alpha, one);
    const at::Tensor in = x.contiguous();
    at::Tensor out = at::empty(in.sizes(), in.options());
    const bool finite = CpuKernels().fracbits_act_forward(in.data_ptr<float>(), b.data_ptr<float>()[0],
                                                          a.data_ptr<float>()[0], in.numel(), out.data_ptr<float>());
    CheckFiniteResult(kActName, finite, x);
    ctx->save_for_backward({in, b, a, bits, alpha});
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    const at::Tensor &in = s[0], &b = s[1], &a = s[2];
    const at::Tensor g = grads[0].contiguous();
    at::Tensor grad_x = at::empty(in.sizes(), in.options());
    double grad_alpha = 0, grad_b = 0;
    CpuKernels().fracbits_act_backward(in.data_ptr<float>(), g.data_ptr<float>(), b.data_ptr<float>()[0],
                                       a.data_ptr<float>()[0], in.numel(), grad_x.data_ptr<float>(), &grad_alpha,
                                       &grad_b);
    return {grad_x, GradLike({grad_b}, s[3]), GradLike({grad_alpha}, s[4])};
  }
};

}  // namespace

at::Tensor FracBitsQuantizeWeight(const at::Tensor& w, const at::Tensor& bits) {
  CheckFloatInput(kWeightName, w);
  if (!w.device().is_cpu()) return op_chain::FracBitsWeight(w, bits);
  return WeightFunction::apply(w, bits);
}

at::Tensor FracBitsQuantizeActivation(const at::Tensor& x, const at::Tensor& bits, const at::Tensor& alpha) {
  CheckFloatInput(kActName, x);
  if (!x.device().is_cpu()) return op_chain::FracBitsActivation(x, bits, alpha);
  return ActFunction::apply(x, bits, alpha);
}

}  // namespace mpq::quant
