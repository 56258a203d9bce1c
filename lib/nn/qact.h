// qact.h — QAct, the activation quantizer module placed on a layer's input.
//
//   QAct act(QActOptions(ActQuantizer::kPact).bits(4));          // after a ReLU: unsigned
//   at::Tensor y = act(x);
//
// Bits live in the buffer `bits` (int32 [1]) so allocators can change them and
// checkpoints keep them; 32 = full precision (identity). Learned parameters by
// quantizer: kPact `alpha` (init alpha_init), kLsq `step` (initialised from the first
// batch, [1] Esser et al.), kUhlich by QActOptions::uhlich: `d` and `qmax` (delta_xmax,
// init qmax = alpha_init, d from bits), `b` and `qmax` (b_xmax), `xmin` and `xmax`
// (xmin_xmax: power-of-two levels with zero). For kUhlich the `bits` buffer is what the
// cost model and allocations read; the Uhlich method keeps it at the inferred bits.
// kFracBits: `alpha` (PACT clip) and `fbits` (real-valued bits, the forward's); `bits`
// is fbits rounded (the BitPruning method keeps it so; set_bits sets both).
// Unsigned quantizers (DoReFa, PACT, HWGQ) reject is_signed = true.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <ostream>

#include "lib/nn/quantizer_options.h"

namespace mpq::nn {

struct QActOptions {
  /* implicit */ QActOptions(ActQuantizer quantizer = ActQuantizer::kNone) : quantizer_(quantizer) {}
  TORCH_ARG(ActQuantizer, quantizer);
  TORCH_ARG(int64_t, bits) = 8;            // default 8
  TORCH_ARG(bool, is_signed) = false;      // default unsigned (input follows a ReLU)
  TORCH_ARG(double, alpha_init) = 6.0;     // PACT clip / Uhlich qmax start; default 6 (ReLU6)
  TORCH_ARG(UhlichParametrization, uhlich) = UhlichParametrization::kDeltaXmax;  // kUhlich only
};

class QActImpl : public torch::nn::Cloneable<QActImpl> {
 public:
  explicit QActImpl(QActOptions options = {});
  void reset() override;
  at::Tensor forward(const at::Tensor& x);
  void pretty_print(std::ostream& stream) const override;

  int64_t current_bits() const;
  void set_bits(int64_t bits);
  // The top of the quantizer's range at the current bits (PACT alpha, DoReFa 1, HWGQ
  // step (2^B - 1), LSQ step Qp, Uhlich qmax); 0 when not quantizing. IMPQ's code
  // metric for activations scales by it (the authors' clip value).
  double clip() const;

  QActOptions options;
  at::Tensor bits;         // buffer, int32 [1]
  at::Tensor alpha;        // kPact, kFracBits
  at::Tensor fbits;        // kFracBits: real-valued bits
  at::Tensor step;         // kLsq (0 until initialised), kUhlich delta_xmax (d)
  at::Tensor qmax;         // kUhlich: "qmax" (uniform) or "xmax" (xmin_xmax)
  at::Tensor b_param;      // kUhlich b_xmax: "b", real-valued bits
  at::Tensor xmin;         // kUhlich xmin_xmax
  at::Tensor initialized;  // buffer, kLsq: 1 once the step was set from data
};
TORCH_MODULE(QAct);

}  // namespace mpq::nn
