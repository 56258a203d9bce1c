// hessian_trace.h — the trace of the loss Hessian per quantizable layer, by Hutchinson's
// estimator, as HAWQ-V2/V3 measure sensitivity (Dong et al., NeurIPS 2020, sec. 3.1;
// amirgholami/PyHessian pyhessian/hessian.py `trace`, `dataloader_hv_product`):
//
//   Tr(H_l) = E_v[v^T H_l v],  v Rademacher (+-1 with probability 1/2 each),
//
// with H_l the block of the Hessian of the mean cross-entropy over the data for the
// weights of layer l (a QConv2d or QLinear), and H v by double back-propagation: g =
// dL/dW with create_graph, then d(g . v)/dW. As PyHessian's dataloader mode, one v per
// iteration is used for every batch of the loader, H v accumulated weighted by batch
// size and divided by the number of examples; the model is in eval mode (BatchNorm uses
// its running statistics).
//
// Products (`products`): kPerLayer (default) takes each layer's sample v_l^T H_l v_l
// alone, what PyHessian gives when handed one layer's weights: one second-order
// backward pass per layer and batch (from one first-order pass with create_graph).
// kJoint takes one Hessian-vector product for all layers together, v_l^T (H v)_l =
// v_l^T H_l v_l + sum_(j != l) v_l^T H_lj v_j: unbiased too (E[v_l^T H_lj v_j] = 0),
// one second-order pass per batch, but the cross terms add variance (docs/hawq.md).
//
// Stopping rule (PyHessian's): after iteration k a layer's estimate is the mean m_k of
// its k samples; it stops when |m_k - m_(k-1)| / (|m_(k-1)| + 1e-6) < tolerance (m_0 =
// 0), or at max_iterations. Each layer stops on its own: later iterations draw v only
// for the layers still running (E[v_i^T H_ij v_j] = 0 for i != j, so dropping the
// stopped layers' v leaves the others unbiased). v for layer l at iteration k comes
// from a generator seeded with (seed, k, l), so a run is the same on every machine and
// a resumed estimate (from its HutchinsonState) equals an uninterrupted one.
//
//   HutchinsonState state;   // empty: start; or one saved by after_iteration
//   absl::Status s = EstimateHessianTraces(*model, *calibration, {}, &state, nullptr);
//   for (const LayerTrace& t : state.layers) std::printf("%s %g\n", t.layer.c_str(), t.trace);
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "datasets/loader.h"
#include "lib/models/model.h"

namespace mpq::alloc {

enum class TraceProducts { kPerLayer, kJoint };
const char* Name(TraceProducts products);

struct HutchinsonOptions {
  TraceProducts products = TraceProducts::kPerLayer;  // default: each layer alone
  int64_t max_iterations = 100;  // PyHessian's maxIter; default 100
  double tolerance = 1e-3;       // PyHessian's tol; default 1e-3
  uint64_t seed = 1;
};

struct LayerTrace {
  std::string layer;          // module name, as in named_modules()
  int64_t params = 0;         // N_l, the layer's weights
  double trace = 0;           // the estimate of Tr(H_l): the mean of the samples
  int64_t iterations = 0;     // samples taken
  double relative_change = 0; // of the mean at the last iteration (the stopping test)
  bool converged = false;     // stopped by the tolerance rather than max_iterations
  double sum = 0, sum_squares = 0;  // of the samples v^T H_l v
  // The standard error of `trace`: the sample standard deviation / sqrt(iterations).
  double StandardError() const;
};

struct HutchinsonState {
  int64_t iteration = 0;          // iterations done
  std::vector<LayerTrace> layers; // in module order; empty until the first iteration
  bool Finished(const HutchinsonOptions& options) const;
};

// The Rademacher vector of layer `layer` (its index in module order) at iteration
// `iteration` (1-based), shaped like `weight`.
at::Tensor HutchinsonVector(const at::Tensor& weight, uint64_t seed, int64_t iteration, int64_t layer);

// Runs iterations until every layer has stopped, starting from `state` (empty: from
// the beginning), calling after_iteration (may be empty) after each, e.g. to save the
// state. Errors: a loader error, a model without QConv2d / QLinear layers, logits that
// are not [N, classes], or a non-finite sample (names the layer and the iteration).
absl::Status EstimateHessianTraces(models::Model& model, data::DataLoader& loader, const HutchinsonOptions& options,
                                   HutchinsonState* state,
                                   const std::function<absl::Status(const HutchinsonState&)>& after_iteration);

// A digest (16 hex digits) of everything EstimateHessianTraces reads: the options, the
// model's parameters and buffers (names, shapes, dtypes, values) and every calibration
// batch (images and labels, epoch 0). Equal digests give equal traces on one machine
// (the arithmetic is deterministic there), so runs that start from the same trained
// network can share one trace pass (HAWQ-V3's trace cache). Errors: the loader's.
absl::StatusOr<std::string> HutchinsonInputsDigest(models::Model& model, data::DataLoader& loader,
                                                   const HutchinsonOptions& options);

}  // namespace mpq::alloc
