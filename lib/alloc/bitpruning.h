// bitpruning.h — BitPruning (Nikolic et al., "BitPruning: Learning Bitlengths for
// Aggressive and Accurate Quantization", arXiv 2002.03090 [1]; seed 002): a real-valued
// bitlength per group of weights and activations, learned with the network under a
// regularizer on the bits, then rounded, frozen and fine-tuned. [1] has no public code;
// the quantizer is FracBits's interpolation (Yang & Jin, AAAI 2021 [2]; lib/quant/fracbits.h).
// Every choice and its source: docs/bitpruning.md.
//
//   BitPruningOptions o;  o.lambda = 1;  o.cost = BitCost::kBits;
//   BitPruningAllocator bp(o);
//   context.model = trained_fp_model;                  // the runner trains it (spec epochs)
//   context.make_model_with = ...;                     // the same architecture, fracbits quantizers
//   absl::StatusOr<AllocatorResult> r = bp.Run(context);   // r->model: rounded, fine-tuned network
//
// Run: builds the network with kFracBits weights (per layer or per output channel) and
// activations (every quantized layer's input), copies the trained weights and BN
// statistics into it, sets every bitlength to initial_bits and each activation clip to
// a quantile of its input on one calibration batch, then
//   1. learns: `epochs` epochs of loss = CE + lambda P(b), the bitlengths an
//      architecture-parameter group (bits_lr times the quantizer's number of groups,
//      ScaleBitsGradients; no weight decay), projected into
//      [bits_min, bits_max] after every step (the modules' bits buffers hold them
//      rounded, so each epoch's point is the rounded allocation; its note carries the
//      fractional one);
//   2. rounds every bitlength to the nearest integer and freezes it;
//   3. fine-tunes `finetune_epochs` epochs at those bits (CE only); the checkpoint kept
//      is the best on validation (never the test set).
// P (BitPenalty) is a normalised cost of the fractional bits: kBits the mean over
// quantizers of their mean bitlength (the paper's "average per layer bitlength");
// kMemory the parameter- / element-weighted mean bits; kBitOps sum MACs b_w b_a over
// (2 initial_bits sum MACs), whose gradient in b_g is MACs_g times the partner's bits.
// Each is normalised so that at the start its gradients sum to 1: lambda means the same
// across networks and costs. State: context.state_dir/{learn,finetune} (Trainer): a
// killed run resumes in either phase.
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

namespace torch::nn {
class Module;
}

namespace mpq::alloc {

enum class BitCost { kBits, kMemory, kBitOps };
const char* Name(BitCost c);

// One learned bitlength tensor of a network: a QConv2d / QLinear's weight_fbits or a
// QAct's fbits.
struct FracBitsQuantizer {
  std::string name;           // the module, as named_modules() names it
  const torch::nn::Module* module = nullptr;
  bool is_weight = true;
  at::Tensor fbits;           // the parameter, float [groups] (activations [1])
  at::Tensor bits;            // the module's int32 bits buffer
  at::Tensor alpha;           // activations: the PACT clip
  double elements_per_group = 0;  // weights: parameters per group; activations: elements per example
};

// The learned quantizers of `model` in module order, weights first; full-precision
// layers (bits 32, e.g. an unquantized first and last layer) are not among them.
// Error when a quantized layer does not use kFracBits (the method owns every quantizer).
absl::StatusOr<std::vector<FracBitsQuantizer>> FindFracBitsQuantizers(models::Model& model,
                                                                      const std::vector<int64_t>& input_shape);

// The regularizer P(b) of a network's quantizers (see above); differentiable in every
// fbits. Built from one recorded forward pass (the layer geometry the cost model sees).
class BitPenalty {
 public:
  static absl::StatusOr<BitPenalty> Make(models::Model& model, const std::vector<int64_t>& input_shape,
                                         std::vector<FracBitsQuantizer> quantizers, BitCost cost,
                                         int64_t initial_bits);
  at::Tensor operator()() const;
  // Unnormalised summaries of the current fractional bits, for notes and details:
  // mean over quantizers of their mean bits (weights, activations, all).
  double MeanWeightBits() const;
  double MeanActBits() const;
  double MeanBits() const;
  const std::vector<FracBitsQuantizer>& quantizers() const { return quantizers_; }

 private:
  // One layer's BitOps term: MACs per weight group times weight bits times input bits.
  struct Layer {
    int weight = -1;            // index into quantizers_, or -1 (fixed weight bits)
    int act = -1;               // index into quantizers_, or -1 (fixed input bits)
    double macs = 0;            // of the whole layer
    double fixed_weight_bits = 32, fixed_act_bits = 32;
  };
  double Mean(bool weights, bool acts) const;

  std::vector<FracBitsQuantizer> quantizers_;
  std::vector<Layer> layers_;
  BitCost cost_ = BitCost::kBits;
  double normaliser_ = 1;
};

// Clamps every fbits into [lo, hi] (weights: [weight_min, hi]) and sets the bits buffers
// to their rounded values (no autograd).
void ProjectBits(const std::vector<FracBitsQuantizer>& quantizers, double weight_min, double act_min, double hi);
// Multiplies each quantizer's fbits gradient by its number of groups: a per-group
// learning rate bits_lr x groups, so that one SGD step moves a kernel-wise layer's mean
// bitlength as far as a layer-wise one's (the penalty gives each of G groups 1/G of the
// layer's gradient). No autograd; gradients that are undefined stay so.
void ScaleBitsGradients(const std::vector<FracBitsQuantizer>& quantizers);
// Rounds every fbits to the nearest integer (half to even), writes the bits buffers and
// stops the bits' gradients (the network is then an ordinary mixed-precision one).
void RoundAndFreeze(const std::vector<FracBitsQuantizer>& quantizers);
// "conv1 w 5.83, ... | act a 3.10, ..." (per-channel weights: mean [min..max]).
std::string FractionalSummary(const std::vector<FracBitsQuantizer>& quantizers);

struct BitPruningOptions : public MethodOptions {
  BitCost cost = BitCost::kBits;
  double lambda = 1.0;
  nn::Granularity granularity = nn::Granularity::kPerTensor;  // [1]: per layer
  bool quantize_activations = true;
  bool quantize_first_and_last = true;
  int64_t initial_bits = 8;         // weights and activations start here
  double weight_bits_min = 2, act_bits_min = 1, bits_max = 8;
  double act_clip_quantile = 0.999;  // initial PACT clip: this quantile of the input on one batch
  double calibration_fraction = 0.01;  // share of the training split the clip is measured on
  int64_t epochs = 30;              // learning the bitlengths
  double lr = 0.01;                 // weights while learning (cosine)
  double bits_lr = 0.01;            // bitlengths (SGD, momentum 0.9, no decay; same schedule)
  int64_t finetune_epochs = 10;
  double finetune_lr = 0.001;       // cosine
  double momentum = 0.9;
  double weight_decay = 5e-4;

  // The spec's "bitpruning" object: keys cost (bits | memory | bitops), lambda,
  // granularity, quantize_activations, quantize_first_and_last, initial_bits,
  // weight_bits_min, act_bits_min, bits_max, act_clip_quantile, calibration_fraction,
  // epochs, lr, bits_lr, finetune_epochs, finetune_lr, momentum, weight_decay.
  static absl::StatusOr<std::shared_ptr<const MethodOptions>> Parse(const nlohmann::json* options,
                                                                     const MethodContext& run);
  nlohmann::json ToJson() const override;
  int64_t EpochBudget(int64_t spec_epochs) const override { return spec_epochs + epochs + finetune_epochs; }
  double CalibrationFraction() const override { return calibration_fraction; }
  models::QuantConfig Quant() const;
};

class BitPruningAllocator : public Allocator {
 public:
  explicit BitPruningAllocator(BitPruningOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "bitpruning"; }
  absl::StatusOr<AllocatorResult> Run(AllocatorContext& context) override;

 private:
  BitPruningOptions options_;
};

}  // namespace mpq::alloc
