#include "lib/quant/common.h"

#include <ATen/ops/isfinite.h>
#include <c10/util/Exception.h>

#include <cmath>

#include "lib/quant/kernels.h"

namespace mpq::quant {

GroupLayout LayoutFor(const char* quantizer, const at::Tensor& x, const at::Tensor& per_group) {
  const int64_t n = per_group.numel();
  if (n == 1) return {1, x.numel()};
  TORCH_CHECK(x.dim() >= 1 && n == x.size(0), quantizer, ": ", n, " per-group values for a tensor of shape ",
              x.sizes(), "; expected 1 (per tensor) or ", x.dim() >= 1 ? x.size(0) : 1,
              " (one per output channel, dim 0)");
  return {n, x.numel() / n};
}

void CheckFloatInput(const char* quantizer, const at::Tensor& x) {
  TORCH_CHECK(x.defined(), quantizer, ": input tensor is undefined");
  TORCH_CHECK(x.scalar_type() == at::kFloat, quantizer, ": expected a float32 tensor, got ", x.scalar_type());
  TORCH_CHECK(x.numel() > 0, quantizer, ": input tensor of shape ", x.sizes(), " is empty");
}

at::Tensor CheckedBits(const char* quantizer, const at::Tensor& bits, int64_t min_bits, int64_t max_bits) {
  TORCH_CHECK(bits.defined() && bits.numel() > 0, quantizer, ": bits tensor is undefined or empty");
  TORCH_CHECK(!at::isFloatingType(bits.scalar_type()), quantizer, ": bits must be an integer tensor, got ",
              bits.scalar_type());
  at::Tensor b = bits.to(at::kCPU).to(at::kInt).contiguous();
  const int32_t* p = b.data_ptr<int32_t>();
  for (int64_t i = 0; i < b.numel(); ++i) {
    TORCH_CHECK((p[i] >= min_bits && p[i] <= max_bits) || p[i] == kFullPrecisionBits, quantizer, ": bits[", i,
                "] = ", p[i], " is out of range; expected ", min_bits, "..", max_bits, " or ", kFullPrecisionBits,
                " (full precision)");
  }
  return b;
}

void CheckScalarBits(const char* quantizer, int64_t bits, int64_t min_bits, int64_t max_bits) {
  TORCH_CHECK(bits >= min_bits && bits <= max_bits, quantizer, ": bits = ", bits, " is out of range; expected ",
              min_bits, "..", max_bits);
}

void CheckFiniteResult(const char* quantizer, bool finite, const at::Tensor& x) {
  TORCH_CHECK(finite, quantizer, ": input of shape ", x.sizes(), " contains NaN or Inf");
}

at::Tensor CheckedPositiveParameter(const char* quantizer, const char* name, const at::Tensor& p,
                                    const GroupLayout& layout) {
  TORCH_CHECK(p.defined() && p.numel() == layout.groups, quantizer, ": ", name, " has ",
              p.defined() ? p.numel() : 0, " values; expected ", layout.groups);
  at::Tensor c = p.detach().to(at::kCPU).to(at::kFloat).contiguous();
  const float* v = c.data_ptr<float>();
  for (int64_t i = 0; i < c.numel(); ++i) {
    TORCH_CHECK(std::isfinite(v[i]) && v[i] > 0.0f, quantizer, ": ", name, "[", i, "] = ", v[i],
                " must be finite and > 0");
  }
  return c;
}

}  // namespace mpq::quant
