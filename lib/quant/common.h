// common.h — argument checks shared by the quantizers: what a group is, bit-width
// validation, and the errors a caller sees (TORCH_CHECK, naming the offending value).
//
// Granularity is given by the shape of the per-group tensors (bits, steps, ...):
// numel 1 = per tensor (network/layer granularity); numel == x.size(0) = per output
// channel (kernel granularity), x viewed as [C_out, rest].
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mpq::quant {

struct GroupLayout {
  int64_t groups = 1;
  int64_t group_size = 0;
};

// The layout implied by `per_group` for x; TORCH_CHECK error naming `quantizer` otherwise.
GroupLayout LayoutFor(const char* quantizer, const at::Tensor& x, const at::Tensor& per_group);

// x must be a defined float32 tensor with at least one element.
void CheckFloatInput(const char* quantizer, const at::Tensor& x);

// Validates per-group bit-widths (each in [min_bits, max_bits] or kFullPrecisionBits)
// and returns them as a contiguous int32 CPU tensor.
at::Tensor CheckedBits(const char* quantizer, const at::Tensor& bits, int64_t min_bits, int64_t max_bits);

// A scalar bit-width for activation quantizers (no full-precision value: use no quantizer).
void CheckScalarBits(const char* quantizer, int64_t bits, int64_t min_bits, int64_t max_bits);

// Raises "<quantizer>: input contains NaN or Inf" with the shape, when !finite.
void CheckFiniteResult(const char* quantizer, bool finite, const at::Tensor& x);

// Per-group float parameter (step, clip, range) as a contiguous float CPU tensor of
// layout.groups values, each > 0 and finite.
at::Tensor CheckedPositiveParameter(const char* quantizer, const char* name, const at::Tensor& p,
                                    const GroupLayout& layout);

}  // namespace mpq::quant
