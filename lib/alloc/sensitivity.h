// sensitivity.h — IMPQ's sensitivity of the misclassification probability to the
// quantization noise of each weight group and activation group (Gonugondla & Shanbhag,
// ICASSP 2022; seed 001):
//
//   E_W,l = E_x [ sum_{i != top} sum_{h in W_l} (d(Z_i - Z_top)/dh)^2 / (12 (Z_i - Z_top)^2) ]
//   E_A,k = the same with h over the activation group A_k,
//   p_m <= sum_l Delta_w,l^2 E_W,l + sum_k Delta_a,k^2 E_A,k,   Delta = 2^-B,
//
// with Z the logits and top the predicted class. `eval_top` > 0 restricts i to the
// eval_top - 1 runner-up classes, as the authors' code does (eval_top 10).
//
// Algorithm (docs/impq.md): one forward pass per batch (eval mode, gradients on) under a
// LayerRecorder that keeps every layer's input and output and every QAct's output; then,
// for each runner-up rank k, one backward pass from the logits seeded with
// (e_{i_k} - e_top) / |d_k| per example, which gives every layer-output gradient g of
// d_k / |d_k| for all examples at once (examples do not interact in eval mode). The
// gradients of all compared classes (or of a chunk of them, within
// `class_chunk_bytes`) are gathered per layer; a convolution's per-example weight-gradient
// norms for all of them then come from one grouped weight-gradient convolution with the
// examples as groups, or, where P^2 is small against the patch size (GradNormPath), from
// g (X^T X) g^T with X the example's im2col patches. Linear layers: |g_c|^2 |a|^2.
// Activations: the squared norm of the gradient at the QAct output. Cost per batch: one
// forward pass, K-1 backward passes, and per-example gradients of about K-1 forward
// passes' arithmetic (K = number of classes compared).
//
//   SensitivityReport r = *MeasureSensitivity(*model, *loader, {});
//   for (const GroupSensitivity& g : r.groups) Score(g, SensitivityMetric::kPaper);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "datasets/loader.h"
#include "lib/models/model.h"

namespace mpq::alloc {

// kPaper: score = Delta^2 E = 2^(-2B) E (the term the group adds to the bound).
// kCode: the authors' code's ranking (gsujankumar/IMPQ, utils/QuantModules.py
//        reduce_precision, utils/ActQuant.py reduce_precision_act), E without the 1/12:
//        weights: its mean over the group's elements times mean|Q(w)| of the group's
//        quantized weights at the current bits, over 2^B; activations: its sum over the
//        group's elements (per example) times the quantizer's clip value, over 2^B.
enum class SensitivityMetric { kPaper, kCode };
const char* Name(SensitivityMetric metric);

// How a convolution's per-example weight-gradient norms are computed; all are exact (to
// float32 rounding), they differ in cost (lib/alloc/sensitivity.cc, docs/impq.md "Speed"):
//   kDirect  the per-example gradients by one grouped weight-gradient convolution;
//   kGram    through each example's Gram matrix of im2col patches;
//   kAuto    the cheaper of the two per layer (the default; the others are for tests and
//            benchmarks).
enum class GradNormPath { kAuto, kDirect, kGram };

struct SensitivityOptions {
  int64_t eval_top = 0;     // 0: compare with every other class (the paper); else eval_top - 1 runner-ups
  int64_t max_batches = 0;  // 0: the whole loader
  GradNormPath conv_path = GradNormPath::kAuto;
  // Memory bounds. The compared classes of a batch are taken in chunks whose output
  // gradients, for every layer, fit class_chunk_bytes; one layer's per-example gradients
  // (or Gram matrices) are computed in slices of examples that fit layer_work_bytes.
  // A chunk holds at least one class and a slice one example, whatever the budgets.
  int64_t class_chunk_bytes = int64_t{1} << 30;
  int64_t layer_work_bytes = int64_t{256} << 20;
};

struct GroupSensitivity {
  std::string layer;        // module name
  bool is_weight = true;
  int64_t group = 0;        // output channel at kernel granularity, else 0
  int64_t bits = 32;        // current bits of the group
  int64_t elements = 0;     // weights in the group, or activation elements per example
  double energy = 0;        // E (with the 1/12), averaged over examples
  double mean_abs_weight = 0;  // weight groups: mean |w| of the float weights
  double mean_abs_quantized_weight = 0;  // weight groups: mean |Q(w)| at the current bits
  double clip = 0;             // activation groups: top of the quantizer's range (QActImpl::clip)
};

struct SensitivityReport {
  std::vector<GroupSensitivity> groups;  // weights (module order, then group), then activations
  int64_t examples = 0;
  int64_t classes_compared = 0;          // K - 1 per example
  int64_t tied_pairs = 0;                // (example, class) pairs with Z_i == Z_top, skipped
  double seconds = 0;
};

// Measures E for every QConv2d / QLinear weight group and every quantizing QAct over the
// loader's examples (use test-time transforms). The model is put in eval mode and
// restored afterwards; its parameters are not changed.
absl::StatusOr<SensitivityReport> MeasureSensitivity(models::Model& model, data::DataLoader& loader,
                                                     const SensitivityOptions& options);

// The ranking score of a group at `bits` (default: its current bits): lower = reduce first.
double Score(const GroupSensitivity& group, SensitivityMetric metric);
double Score(const GroupSensitivity& group, SensitivityMetric metric, int64_t bits);

// IMPQ's reduction step: the indices (into `groups`) of the `n` lowest-scoring eligible
// groups, eligible meaning min_bits < bits <= 16 (full-precision groups stay so). Ties
// go to the lower index. Fewer than n when fewer are eligible.
//
// kExact: exactly the n lowest (the paper: "the N least sensitive groups").
// kThreshold: the authors' code: the threshold is the (n+1)-th lowest score and every
//   eligible group scoring <= it is lowered: n + 1 groups, more on ties (all eligible
//   groups when n + 1 exceed them; the authors' code would fail there).
enum class ReductionRule { kExact, kThreshold };
const char* Name(ReductionRule rule);
std::vector<size_t> SelectForReduction(const std::vector<GroupSensitivity>& groups, SensitivityMetric metric,
                                       int64_t n, int64_t min_bits, ReductionRule rule = ReductionRule::kExact);

}  // namespace mpq::alloc
