// trained_state.h — moves a trained network's weights into a network of the same
// architecture built with other quantizers: how methods that quantize a trained
// full-precision model start (Uhlich et al., lib/alloc/uhlich.h; HAWQ-V3, lib/alloc/hawq.h).
//
//   std::shared_ptr<models::Model> q = *context.make_model_with(quant);
//   absl::Status s = CopyTrainedState(*context.model, *q);
#pragma once

#include "absl/status/status.h"

namespace torch::nn {
class Module;
}

namespace mpq::alloc {

// Copies every parameter and buffer of `from` into the same-named, same-shaped one of
// `to`, except quantizer state (bits buffers, steps, ranges, clips); error naming the
// first conv / linear weight of `to` that found no match.
absl::Status CopyTrainedState(const torch::nn::Module& from, torch::nn::Module& to);

}  // namespace mpq::alloc
