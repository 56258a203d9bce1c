// hwgq.h — EdMIPS's quantizers (Cai & Vasconcelos, CVPR 2020 [1]; models/quant_module.py
// of zhaoweicai/EdMIPS), built on HWGQ (Cai et al., CVPR 2017). Constants: hwgq_tables.h.
// Derivation: docs/quantizers.md#hwgq.
//
//   at::Tensor qw = HwgqQuantizeWeight(w, at::full({1}, 2, at::kInt));
//   at::Tensor qa = HwgqQuantizeActivation(x, 2);
//
// HwgqQuantizeWeight: step = c_B std(w) (unbiased, per group), q = clamp((round(w/step +
// 1/2) - 1/2) step, +-(2^B/2 - 1/2) step): 2^B mid-rise levels. Backward: identity, as in
// [1]'s code. A group with std 0 gives 0 (the reference divides by zero). B in 1..4 or 32.
//
// HwgqQuantizeActivation: q = round(clamp(x, 0, step (2^B - 1))/step) step with EdMIPS's
// fixed step for B; gradient g [0 <= x <= step (2^B - 1)] (clamp passes it, round is
// identity). B in 1..4.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mpq::quant {

at::Tensor HwgqQuantizeWeight(const at::Tensor& w, const at::Tensor& bits);
at::Tensor HwgqQuantizeActivation(const at::Tensor& x, int64_t bits);

}  // namespace mpq::quant
