#include "lib/quant/pact.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <torch/csrc/autograd/custom_function.h>

#include "lib/quant/common.h"
#include "lib/quant/kernels.h"
#include "lib/quant/op_chain.h"

namespace mpq::quant {
namespace {

constexpr char kName[] = "PactQuantize";

struct PactFunction : public torch::autograd::Function<PactFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& alpha,
                            int64_t bits) {
    const at::Tensor a = CheckedPositiveParameter(kName, "alpha", alpha, {1, x.numel()});
    const at::Tensor in = x.contiguous();
    at::Tensor out = at::empty(in.sizes(), in.options());
    const float av = a.data_ptr<float>()[0];
    const bool finite = CpuKernels().pact_forward(in.data_ptr<float>(), av, static_cast<int32_t>(bits), in.numel(),
                                                  out.data_ptr<float>());
    CheckFiniteResult(kName, finite, x);
    ctx->save_for_backward({in, a});
    return out;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& in = saved[0];
    const float a = saved[1].data_ptr<float>()[0];
    const at::Tensor g = grads[0].contiguous();
    at::Tensor grad_x = at::empty(in.sizes(), in.options());
    double grad_alpha = 0;
    CpuKernels().pact_backward(in.data_ptr<float>(), g.data_ptr<float>(), a, in.numel(), grad_x.data_ptr<float>(),
                               &grad_alpha);
    return {grad_x, at::full(saved[1].sizes(), grad_alpha, saved[1].options()), at::Tensor()};
  }
};

}  // namespace

at::Tensor PactQuantize(const at::Tensor& x, const at::Tensor& alpha, int64_t bits) {
  CheckFloatInput(kName, x);
  CheckScalarBits(kName, bits, 1, kPactMaxBits);
  if (!x.device().is_cpu()) return op_chain::Pact(x, alpha, bits);
  return PactFunction::apply(x, alpha, bits);
}

}  // namespace mpq::quant
