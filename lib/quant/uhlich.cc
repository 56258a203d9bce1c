#include "lib/quant/uhlich.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <vector>

#include "lib/quant/common.h"
#include "lib/quant/kernels.h"
#include "lib/quant/op_chain.h"

namespace mpq::quant {
namespace {

constexpr char kUniformName[] = "UhlichUniformQuantize";
constexpr char kPow2Name[] = "UhlichPow2Quantize";

at::Tensor GradLike(const std::vector<double>& values, const at::Tensor& like) {
  return at::tensor(values, at::kDouble).to(like.scalar_type()).reshape(like.sizes());
}

struct UniformFunction : public torch::autograd::Function<UniformFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& d,
                            const at::Tensor& qmax, bool is_signed) {
    const GroupLayout layout = LayoutFor(kUniformName, x, d);
    const at::Tensor dc = CheckedPositiveParameter(kUniformName, "d", d, layout);
    const at::Tensor qc = CheckedPositiveParameter(kUniformName, "qmax", qmax, layout);
    const at::Tensor in = x.contiguous();
    at::Tensor out = at::empty(in.sizes(), in.options());
    const bool finite =
        CpuKernels().uhlich_uniform_forward(in.data_ptr<float>(), dc.data_ptr<float>(), qc.data_ptr<float>(),
                                            layout.groups, layout.group_size, is_signed, out.data_ptr<float>());
    CheckFiniteResult(kUniformName, finite, x);
    ctx->save_for_backward({in, dc, qc, d, qmax});
    ctx->saved_data["is_signed"] = is_signed;
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    const at::Tensor &in = s[0], &dc = s[1], &qc = s[2];
    const int64_t groups = dc.numel();
    const at::Tensor g = grads[0].contiguous();
    at::Tensor grad_x = at::empty(in.sizes(), in.options());
    std::vector<double> grad_d(groups), grad_q(groups);
    CpuKernels().uhlich_uniform_backward(in.data_ptr<float>(), g.data_ptr<float>(), dc.data_ptr<float>(),
                                         qc.data_ptr<float>(), groups, in.numel() / groups,
                                         ctx->saved_data["is_signed"].toBool(), grad_x.data_ptr<float>(),
                                         grad_d.data(), grad_q.data());
    return {grad_x, GradLike(grad_d, s[3]), GradLike(grad_q, s[4]), at::Tensor()};
  }
};

struct Pow2Function : public torch::autograd::Function<Pow2Function> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& xmin,
                            const at::Tensor& xmax, bool is_signed, bool with_zero) {
    const GroupLayout layout = LayoutFor(kPow2Name, x, xmin);
    const at::Tensor lo = CheckedPositiveParameter(kPow2Name, "xmin", xmin, layout);
    const at::Tensor hi = CheckedPositiveParameter(kPow2Name, "xmax", xmax, layout);
    // A plain loop: at::all(lo <= hi).item() cost ~3 us per call, a third of a ResNet-20
    // layer's whole forward (quantizer_benchmark).
    const float* lo_p = lo.data_ptr<float>();
    const float* hi_p = hi.data_ptr<float>();
    for (int64_t g = 0; g < layout.groups; ++g) {
      TORCH_CHECK(lo_p[g] <= hi_p[g], kPow2Name, ": xmin[", g, "] = ", lo_p[g], " must not exceed xmax[", g,
                  "] = ", hi_p[g]);
    }
    const at::Tensor in = x.contiguous();
    at::Tensor out = at::empty(in.sizes(), in.options());
    const bool finite =
        CpuKernels().uhlich_pow2_forward(in.data_ptr<float>(), lo.data_ptr<float>(), hi.data_ptr<float>(),
                                         layout.groups, layout.group_size, is_signed, with_zero, out.data_ptr<float>());
    CheckFiniteResult(kPow2Name, finite, x);
    ctx->save_for_backward({in, lo, hi, xmin, xmax});
    ctx->saved_data["is_signed"] = is_signed;
    ctx->saved_data["with_zero"] = with_zero;
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    const at::Tensor &in = s[0], &lo = s[1], &hi = s[2];
    const int64_t groups = lo.numel();
    const at::Tensor g = grads[0].contiguous();
    at::Tensor grad_x = at::empty(in.sizes(), in.options());
    std::vector<double> grad_lo(groups), grad_hi(groups);
    CpuKernels().uhlich_pow2_backward(in.data_ptr<float>(), g.data_ptr<float>(), lo.data_ptr<float>(),
                                      hi.data_ptr<float>(), groups, in.numel() / groups,
                                      ctx->saved_data["is_signed"].toBool(), ctx->saved_data["with_zero"].toBool(),
                                      grad_x.data_ptr<float>(), grad_lo.data(), grad_hi.data());
    return {grad_x, GradLike(grad_lo, s[3]), GradLike(grad_hi, s[4]), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor UhlichUniformQuantize(const at::Tensor& x, const at::Tensor& d, const at::Tensor& qmax, bool is_signed) {
  CheckFloatInput(kUniformName, x);
  if (!x.device().is_cpu()) return op_chain::UhlichUniform(x, d, qmax, is_signed);
  return UniformFunction::apply(x, d, qmax, is_signed);
}

at::Tensor UhlichPow2Quantize(const at::Tensor& x, const at::Tensor& xmin, const at::Tensor& xmax, bool is_signed,
                              bool with_zero) {
  CheckFloatInput(kPow2Name, x);
  if (!x.device().is_cpu()) return op_chain::UhlichPow2(x, xmin, xmax, is_signed, with_zero);
  return Pow2Function::apply(x, xmin, xmax, is_signed, with_zero);
}

at::Tensor UhlichStepFromBits(const at::Tensor& b, const at::Tensor& qmax, bool is_signed) {
  const at::Tensor rounded = b + (b.round() - b).detach();
  const at::Tensor magnitude_bits = is_signed ? rounded - 1 : rounded;
  return qmax / (at::pow(2.0, magnitude_bits) - 1);
}

at::Tensor RoundToPowerOfTwo(const at::Tensor& v) {
  const at::Tensor p = at::exp2(at::round(at::log2(v.detach())));
  // Value exactly p (v - v.detach() is exactly 0), gradient p / v. The form v * (p / v)
  // rounds: 0.1f * (0.125f / 0.1f) is one ulp above 0.125f, and a rounded xmin could
  // then exceed the rounded xmax of the same power of two.
  return p + (v - v.detach()) * (p / v.detach());
}

at::Tensor UhlichUniformBits(const at::Tensor& d, const at::Tensor& qmax, bool is_signed) {
  const at::Tensor magnitude = at::ceil(at::log2(qmax.detach() / d.detach() + 1));
  return (is_signed ? magnitude + 1 : magnitude).to(at::kInt);
}

at::Tensor UhlichPow2Bits(const at::Tensor& xmin, const at::Tensor& xmax) {
  return at::ceil(at::log2(at::log2(xmax.detach() / xmin.detach()) + 1) + 1).to(at::kInt);
}

}  // namespace mpq::quant
