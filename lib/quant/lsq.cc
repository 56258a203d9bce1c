#include "lib/quant/lsq.h"

#include <ATen/ops/empty.h>
#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <vector>

#include "lib/quant/common.h"
#include "lib/quant/kernels.h"
#include "lib/quant/op_chain.h"

namespace mpq::quant {
namespace {

constexpr char kName[] = "LsqQuantize";

struct Levels {
  float qn, qp;
};

Levels LevelsFor(int64_t bits, bool is_signed) {
  if (is_signed) return {std::ldexp(1.0f, bits - 1), std::ldexp(1.0f, bits - 1) - 1.0f};
  return {0.0f, std::ldexp(1.0f, bits) - 1.0f};
}

struct LsqFunction : public torch::autograd::Function<LsqFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& v, const at::Tensor& step,
                            int64_t bits, bool is_signed, double grad_scale) {
    const GroupLayout layout = LayoutFor(kName, v, step);
    const at::Tensor s = CheckedPositiveParameter(kName, "step", step, layout);
    const Levels l = LevelsFor(bits, is_signed);
    const at::Tensor in = v.contiguous();
    at::Tensor out = at::empty(in.sizes(), in.options());
    const bool finite = CpuKernels().lsq_forward(in.data_ptr<float>(), s.data_ptr<float>(), layout.groups,
                                                 layout.group_size, l.qn, l.qp, out.data_ptr<float>());
    CheckFiniteResult(kName, finite, v);
    ctx->save_for_backward({in, s});
    ctx->saved_data["qn"] = static_cast<double>(l.qn);
    ctx->saved_data["qp"] = static_cast<double>(l.qp);
    ctx->saved_data["grad_scale"] = grad_scale;
    ctx->saved_data["step_shape"] = step.sizes().vec();
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& in = saved[0];
    const at::Tensor& s = saved[1];
    const int64_t groups = s.numel();
    const at::Tensor g = grads[0].contiguous();
    at::Tensor grad_v = at::empty(in.sizes(), in.options());
    std::vector<double> grad_s(groups);
    CpuKernels().lsq_backward(in.data_ptr<float>(), g.data_ptr<float>(), s.data_ptr<float>(), groups,
                              in.numel() / groups, static_cast<float>(ctx->saved_data["qn"].toDouble()),
                              static_cast<float>(ctx->saved_data["qp"].toDouble()), grad_v.data_ptr<float>(),
                              grad_s.data());
    const double scale = ctx->saved_data["grad_scale"].toDouble();
    for (double& x : grad_s) x *= scale;
    at::Tensor grad_step =
        at::from_blob(grad_s.data(), {groups}, at::kDouble).to(at::kFloat).reshape(ctx->saved_data["step_shape"].toIntVector());
    return {grad_v, grad_step, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor LsqQuantize(const at::Tensor& v, const at::Tensor& step, int64_t bits, bool is_signed,
                       double grad_scale) {
  CheckFloatInput(kName, v);
  CheckScalarBits(kName, bits, is_signed ? 2 : 1, kLsqMaxBits);
  TORCH_CHECK(std::isfinite(grad_scale) && grad_scale > 0, kName, ": grad_scale = ", grad_scale,
              " must be finite and > 0");
  if (!v.device().is_cpu()) return op_chain::Lsq(v, step, bits, is_signed, grad_scale);
  return LsqFunction::apply(v, step, bits, is_signed, grad_scale);
}

double LsqGradScale(int64_t elements_per_step, int64_t bits, bool is_signed) {
  TORCH_CHECK(elements_per_step > 0, "LsqGradScale: elements_per_step = ", elements_per_step, " must be > 0");
  return 1.0 / std::sqrt(static_cast<double>(elements_per_step) * LevelsFor(bits, is_signed).qp);
}

at::Tensor LsqInitialStep(const at::Tensor& v, int64_t bits, bool is_signed) {
  CheckFloatInput("LsqInitialStep", v);
  const double qp = LevelsFor(bits, is_signed).qp;
  return (v.detach().abs().mean() * (2.0 / std::sqrt(qp))).reshape({1}).clamp_min(1e-8);
}

}  // namespace mpq::quant
