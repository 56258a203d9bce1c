// qact.h — QAct, the activation quantizer module placed on a layer's input.
//
//   QAct act(QActOptions(ActQuantizer::kPact).bits(4));          // after a ReLU: unsigned
//   at::Tensor y = act(x);
//
// Bits live in the buffer `bits` (int32 [1]) so allocators can change them and
// checkpoints keep them; 32 = full precision (identity). Learned parameters by
// quantizer: kPact `alpha` (init alpha_init), kLsq `step` (initialised from the first
// batch, [1] Esser et al.), kUhlich `d` and `qmax` (init qmax = alpha_init, d from bits).
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
  at::Tensor alpha;        // kPact
  at::Tensor step;         // kLsq (0 until initialised), kUhlich (d)
  at::Tensor qmax;         // kUhlich
  at::Tensor initialized;  // buffer, kLsq: 1 once the step was set from data
};
TORCH_MODULE(QAct);

}  // namespace mpq::nn
