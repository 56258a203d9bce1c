// hwgq_tables.h — EdMIPS's fixed quantizer constants (Cai & Vasconcelos, CVPR 2020;
// models/quant_module.py of zhaoweicai/EdMIPS).
//
// Weights: step_b = c_b * std(w), c = {1: 1.596, 2: 0.996, 3: 0.586, 4: 0.336}.
// Activations (half-wave Gaussian quantizer): step = {1: 0.799, 2: 0.538, 3: 0.3217, 4: 0.185}.
#pragma once

#include <c10/util/Exception.h>

#include <cstdint>

namespace mpq::quant {

inline constexpr int64_t kHwgqMinBits = 1;
inline constexpr int64_t kHwgqMaxBits = 4;

inline float HwgqWeightCoefficient(int64_t bits) {
  constexpr float kCoefficients[] = {1.596f, 0.996f, 0.586f, 0.336f};
  if (bits == 32) return 0.0f;  // full precision: unused
  TORCH_CHECK(bits >= kHwgqMinBits && bits <= kHwgqMaxBits, "HWGQ weight quantizer: bits = ", bits,
              " has no EdMIPS step coefficient; expected 1..4 or 32");
  return kCoefficients[bits - 1];
}

inline float HwgqActivationStep(int64_t bits) {
  constexpr float kSteps[] = {0.799f, 0.538f, 0.3217f, 0.185f};
  TORCH_CHECK(bits >= kHwgqMinBits && bits <= kHwgqMaxBits, "HWGQ activation quantizer: bits = ", bits,
              " has no EdMIPS step; expected 1..4");
  return kSteps[bits - 1];
}

}  // namespace mpq::quant
