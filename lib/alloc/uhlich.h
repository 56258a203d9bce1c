// uhlich.h — Uhlich et al., "Mixed Precision DNNs: All you need is a good
// parametrization", ICLR 2020 [1] (seed 004; sony/ai-research-code, mixed-precision-dnns):
// quantizers with learned step size and dynamic range, bits inferred from them, trained
// under weight and activation memory constraints. Facts, choices and deviations:
// docs/uhlich.md.
//
//   UhlichOptions o;  o.parametrization = nn::UhlichParametrization::kDeltaXmax;
//   o.weight_kb = 70.1;  o.act_kb = 8.1;  o.act_memory = ActMemory::kMax;
//   UhlichAllocator uhlich(o);
//   context.model = trained_fp_model;                 // the runner trains it (spec epochs)
//   context.make_model_with = ...;                    // the same architecture, Uhlich quantizers
//   absl::StatusOr<AllocatorResult> r = uhlich.Run(context);   // r->model: the quantized network
//
// Run: builds the network with kUhlich weight and activation quantizers (activations at
// the ReLU outputs, first conv and classifier quantized, as [1]'s code), copies the
// trained weights and BN statistics into it, initialises the quantizers as [1]'s code
// (InitializeQuantizers), then trains `epochs` epochs with
//   loss = CE + lambda_w relu(KB_w - T_w)^2 + lambda_a relu(KB_a - T_a)^2
// (MemoryPenalty; a term only when its target is set). After every backward pass, while
// a target is set, the gradients of d and xmax are clipped (ClipGradients); after every
// optimizer step the parameters are projected to their valid ranges (Project) and the
// modules' bits buffers set to the inferred bits (RefreshBits), so the cost model and the
// allocation read what the network would be deployed at. The checkpoint kept is the best
// on validation among the epochs whose network satisfies the targets (never the test
// set). Every epoch's inferred allocation is a point (with weight KB and activation KB);
// the final point (epochs + 1) is the selected network. State: context.state_dir/train
// (Trainer): a killed run resumes mid-training.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/alloc/allocator.h"
#include "lib/alloc/method.h"
#include "lib/nn/quantizer_options.h"

namespace mpq::alloc {

// Valid ranges of one kind of quantizer parameter ([1]'s train_resnet.py defaults).
struct UhlichBounds {
  double d_min, d_max;        // step size
  double xmin_min, xmin_max;  // power-of-two lower end
  double xmax_min, xmax_max;  // range
  int64_t b_min, b_max;       // bits (b_xmax's parameter; b_min also floors inferred bits)
};
// Weights: d in [2^-8, 1], xmin in [2^-16, 127], xmax in [2^-8, 127], bits in [2, 8].
UhlichBounds WeightBounds();
// Activations: d in [2^-8, 1], xmin in [2^-14, 255], xmax in [2^-8, 255], bits in [1, 8].
UhlichBounds ActivationBounds();

// One Uhlich quantizer of a network: a QConv2d / QLinear's weights or a QAct, viewed
// through its parameters (those of its parametrization; the others undefined), each
// [groups] (activations: 1 group).
struct UhlichQuantizer {
  std::string name;       // the module, as named_modules() names it
  bool is_weight = true;
  bool is_signed = true;  // weights signed; activations after a ReLU unsigned
  nn::UhlichParametrization parametrization = nn::UhlichParametrization::kDeltaXmax;
  at::Tensor d, b, xmin, xmax;
  at::Tensor bits;        // the module's int32 bits buffer
  at::Tensor weight;      // weights only: the float weight (for initialisation)
  // Values each group's bits apply to, per example for activations: weights with the
  // group's share of the bias (as [1] counts), or the activation's elements.
  double elements_per_group = 0;
  UhlichBounds bounds;
};

// The network's Uhlich quantizers in module order, weights first; activation element
// counts from one recorded forward pass on zeros of `input_shape`. Error when a
// quantizer of the network is not kUhlich (the method owns every quantizer).
absl::StatusOr<std::vector<UhlichQuantizer>> FindUhlichQuantizers(models::Model& model,
                                                                  const std::vector<int64_t>& input_shape,
                                                                  const UhlichBounds& weights = WeightBounds(),
                                                                  const UhlichBounds& activations = ActivationBounds());

// The bits a quantizer's parameters imply, differentiable with [1]'s straight-through
// gradients (identity for round and ceil; zero where a clip is active), float [groups]:
//   delta_xmax: d_q = 2^round(log2 clip(d, d_min, d_max)), x = clip(xmax, xmax_min, xmax_max),
//               x_q = round(x / d_q) d_q, b = max(ceil(log2(x_q / d_q + 1) + s), b_min)
//               with s = 1 signed (weights), 0 unsigned (activations)
//   b_xmax:     b = round(clip(b, b_min, b_max))
//   xmin_xmax:  xmin_q, xmax_q = 2^round(log2 clip(.)), b = max(ceil(log2(log2(xmax_q / xmin_q) + 1) + 1), b_min)
at::Tensor BitsExpression(const UhlichQuantizer& q);
// The same, as integers (int64 [groups]).
at::Tensor InferredBits(const UhlichQuantizer& q);

enum class ActMemory { kMax, kSum };

// relu(kb - target)^2, or 0 when target <= 0 (no constraint).
at::Tensor SizePenalty(const at::Tensor& kb, double target);

// [1]'s memory: KB_w = sum over weight quantizers and groups of b N / 8 / 1024; KB_a =
// the max (gradient to the first maximal quantizer, as nnabla's F.max) or the sum over
// activation quantizers of b E / 8 / 1024. Differentiable in the quantizer parameters.
class MemoryPenalty {
 public:
  MemoryPenalty(std::vector<UhlichQuantizer> quantizers, ActMemory act_memory) :
      quantizers_(std::move(quantizers)), act_memory_(act_memory) {}
  // BitsExpression of every quantizer, in order.
  std::vector<at::Tensor> Bits() const;
  // From given bits (one tensor [groups] per quantizer, in order; any real values):
  at::Tensor WeightKb(const std::vector<at::Tensor>& bits) const;
  at::Tensor ActivationKb(const std::vector<at::Tensor>& bits) const;  // 0 when no activation is quantized
  // lambda_w SizePenalty(WeightKb, weight_kb) + lambda_a SizePenalty(ActivationKb, act_kb).
  at::Tensor Loss(const std::vector<at::Tensor>& bits, double lambda_w, double weight_kb, double lambda_a,
                  double act_kb) const;
  // The same at the quantizers' current parameters (differentiable in them).
  at::Tensor WeightKb() const { return WeightKb(Bits()); }
  at::Tensor ActivationKb() const { return ActivationKb(Bits()); }
  at::Tensor operator()(double lambda_w, double weight_kb, double lambda_a, double act_kb) const {
    return Loss(Bits(), lambda_w, weight_kb, lambda_a, act_kb);
  }

 private:
  std::vector<UhlichQuantizer> quantizers_;
  ActMemory act_memory_;
};

// The memory targets of the network at `bits` everywhere (UhlichOptions::budget_bits):
// MemoryPenalty's WeightKb and ActivationKb with every group's bits set to `bits`.
struct UniformTargets {
  double weight_kb = 0, act_kb = 0;
};
UniformTargets TargetsAtBits(const std::vector<UhlichQuantizer>& quantizers, const MemoryPenalty& memory, int64_t bits);

// [1]'s clip_quant_grads: d.grad and xmax.grad clipped to [-d, d] (delta_xmax), xmin.grad
// and xmax.grad to [-xmin, xmin] (xmin_xmax), elementwise; b_xmax untouched.
void ClipGradients(const std::vector<UhlichQuantizer>& quantizers);
// [1]'s clip_quant_vals: d <= xmax (d = min(d, xmax - 1e-5), xmax = max(d + 1e-5, xmax)),
// likewise xmin <= xmax, then every parameter into its range shrunk by 1e-5 at both ends.
void Project(const std::vector<UhlichQuantizer>& quantizers);
// Sets every bits buffer to InferredBits (clamped to 1..16).
void RefreshBits(const std::vector<UhlichQuantizer>& quantizers);

// [1]'s initialisation: weights per group from max|W| with `weight_bits` (find_delta:
// d = 2^floor(log2(max|W| / (2^(b-1) - 1))) for b <= 4, ceil above; xmax = d (2^(b-1) - 1));
// activations d = act_step, xmax = d (2^act_bits - 1); power of two: xmax rounded to a
// power of two, xmin = xmax / 2^(2^(b-1) - 1); b_xmax: b = the bits. Then Project and
// RefreshBits.
void InitializeQuantizers(const std::vector<UhlichQuantizer>& quantizers, int64_t weight_bits, int64_t act_bits,
                          double act_step);

struct UhlichOptions : public MethodOptions {
  nn::UhlichParametrization parametrization = nn::UhlichParametrization::kDeltaXmax;  // [1]'s best
  nn::Granularity granularity = nn::Granularity::kPerTensor;  // [1]: per layer
  bool quantize_activations = true;
  double weight_kb = 0;              // T_w; 0 = unconstrained
  double act_kb = 0;                 // T_a; 0 = unconstrained
  // When > 0, the targets left at 0 become the memory of this network with every group at
  // these bits, counted as the authors count it (weights with biases; activations as
  // act_memory): a uniform allocation's budget, e.g. a leaderboard's; default 0.
  int64_t budget_bits = 0;
  ActMemory act_memory = ActMemory::kMax;
  double lambda_w = 0.1, lambda_a = 0.1;
  int64_t weight_bits = 4, act_bits = 4;  // initial bits
  int64_t weight_bits_min = 2, weight_bits_max = 8, act_bits_min = 1, act_bits_max = 8;
  double act_step = 0.125;           // initial activation step 2^-3
  int64_t epochs = 160;
  std::vector<int64_t> milestones = {80, 120};  // lr / 10 at each
  double lr = 0.03;                  // [1]'s *_CON_INIT configurations
  bool adam = false;                 // [1]'s alternative optimizer (then lr 1e-3 in their cfg)
  double momentum = 0.9;
  double weight_decay = 2e-4;
  // Beyond the authors (0 = theirs): before every validation, re-estimate BatchNorm's
  // running statistics on this share of the training split (test-time transforms; the
  // runner's calibration loader). docs/uhlich.md: the running averages can lag the
  // quantizers badly enough that a network at 87% with batch statistics validates at 19%.
  double bn_recalibration_fraction = 0;

  // The spec's "uhlich" object: keys parametrization (delta_xmax | b_xmax | xmin_xmax),
  // granularity, quantize_activations, weight_kb, act_kb, budget_bits, act_memory (max | sum),
  // lambda_w, lambda_a, weight_bits, act_bits, weight_bits_min/max, act_bits_min/max,
  // act_step, epochs, milestones ("80,120"), lr, optimizer (sgd | adam), momentum,
  // weight_decay, bn_recalibration_fraction.
  static absl::StatusOr<std::shared_ptr<const MethodOptions>> Parse(const nlohmann::json* options,
                                                                     const MethodContext& run);
  nlohmann::json ToJson() const override;
  int64_t EpochBudget(int64_t spec_epochs) const override { return spec_epochs + epochs; }
  double CalibrationFraction() const override { return bn_recalibration_fraction; }
  // The quantization the method trains: kUhlich weights (first and last layer too) and,
  // if quantize_activations, kUhlich activations at the ReLU outputs.
  models::QuantConfig Quant() const;
};

class UhlichAllocator : public Allocator {
 public:
  explicit UhlichAllocator(UhlichOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "uhlich"; }
  absl::StatusOr<AllocatorResult> Run(AllocatorContext& context) override;

 private:
  UhlichOptions options_;
};

// Re-estimates every BatchNorm's running mean and variance as the cumulative average
// over one pass of `loader` in training mode, without gradients (nothing learned
// changes); momentum and mode are restored afterwards.
absl::Status RecalibrateBatchNorm(models::Model& model, data::DataLoader& loader);

}  // namespace mpq::alloc
