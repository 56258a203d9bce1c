// edmips.h — EdMIPS (Cai & Vasconcelos, CVPR 2020; seed 003): differentiable search of
// per-layer weight and activation bits, then discretization and retraining.
//
//   EdmipsOptions o;  o.cd = 0.00335;  o.search_epochs = 25;
//   EdmipsAllocator edmips(o);
//   ModelOptions m = ...;  m.quant.units = o.SearchUnits();     // MixQAct + MixQConv2d units
//   context.model = search_model.get();                          // built with m
//   context.make_model = [&] { return discrete_model(); };      // HWGQ QConv2d/QAct, same names
//   absl::StatusOr<AllocatorResult> r = edmips.Run(context);     // r->model: the retrained network
//
// Search: every searched layer is a MixQConv2d (composite convolution over the softmax-
// mixed HWGQ-quantized candidates of one shared weight) fed by a MixQAct; loss =
// cross-entropy + cd * ExpectedBitOps (below); W and alpha are trained in one backward
// pass per step (alternate = true: W and alpha on alternating steps), W with the run's
// optimizer, alpha with SGD (arch_lr 0.01, momentum 0.9, weight decay 1e-4), both with
// the step schedule /10 every `search_step_size` epochs. After every search epoch the
// soft architecture (softmax(alpha) per layer) goes to on_metrics and its argmax
// allocation to on_point (point = epoch + 1). Discretization: winner-take-all (argmax)
// or one multinomial sample per layer (seeded); the discrete network from make_model gets
// that allocation and is retrained from scratch with context.training (point
// search_epochs + 1). State in context.state_dir: search/ (Trainer), allocation.json,
// retrain/ (Trainer): a killed run resumes in either phase.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/alloc/allocator.h"
#include "lib/alloc/method.h"

namespace torch::nn {
class Module;
}

namespace mpq::alloc {

// EdMIPS's complexity term: sum over searched layers l of
//   MACs_l * E[b_w,l] * E[b_a,l] / MACs of the first searched layer,
// E[b] = sum_i softmax(alpha)_i b_i. Built from one recorded forward pass, which pairs
// each MixQConv2d with the MixQAct that feeds it (a layer fed by anything else counts
// its input as 32 bits).
class ExpectedBitOps {
 public:
  static absl::StatusOr<ExpectedBitOps> Build(models::Model& search_model, std::vector<int64_t> input_shape);
  at::Tensor operator()() const;   // differentiable in every alpha
  int64_t layers() const { return static_cast<int64_t>(terms_.size()); }
  double reference_macs() const { return reference_macs_; }

 private:
  struct Term {
    double macs = 0;
    std::shared_ptr<torch::nn::Module> conv, act;  // MixQConv2dImpl, MixQActImpl (or null)
  };
  std::vector<Term> terms_;
  double reference_macs_ = 1;
};

enum class Discretization { kArgmax, kSample };

// "1,2,3,4" -> {1, 2, 3, 4}: candidate bit-widths (1..4, the HWGQ constants; no repeats).
absl::StatusOr<std::vector<int64_t>> ParseCandidates(const std::string& text);

// The discrete allocation of a search model: per MixQConv2d / MixQAct the argmax
// candidate, or a sample from softmax(alpha) drawn with `seed`.
Allocation Discretize(models::Model& search_model, Discretization how, uint64_t seed);

// EdmipsSearchUnits: the search model's conv units (QuantConfig::units): a MixQAct over
// `act_bits` feeding a MixQConv2d over `weight_bits`, under the names "act" and "conv".
class EdmipsSearchUnits : public models::ConvUnitFactory {
 public:
  EdmipsSearchUnits(std::vector<int64_t> weight_bits, std::vector<int64_t> act_bits)
      : weight_bits_(std::move(weight_bits)), act_bits_(std::move(act_bits)) {}
  torch::nn::AnyModule MakeActivation(const models::QConvBnOptions& unit) const override;
  torch::nn::AnyModule MakeConv(const models::QConvBnOptions& unit, torch::ExpandingArray<2> padding) const override;

 private:
  std::vector<int64_t> weight_bits_, act_bits_;
};

struct EdmipsOptions : public MethodOptions {
  double cd = 0.00335;                // complexity weight (the authors' ResNet-18 value)
  int64_t search_epochs = 25;         // default 25
  int64_t search_step_size = 10;      // lr /10 every 10 search epochs
  double arch_lr = 0.01;
  double arch_momentum = 0.9;
  double arch_weight_decay = 1e-4;
  bool alternate = false;             // alternating instead of joint W/alpha updates
  Discretization discretize = Discretization::kArgmax;
  uint64_t seed = 1;                  // for kSample (the run's seed)
  std::vector<int64_t> weight_candidates = {1, 2, 3, 4};  // the search space ([1])
  std::vector<int64_t> act_candidates = {2, 3, 4};

  // The spec's "edmips" object: keys cd, search_epochs, search_step_size, arch_lr,
  // weight_candidates ("1,2,3,4"), act_candidates, discretize (argmax | sample), alternate.
  static absl::StatusOr<std::shared_ptr<const MethodOptions>> Parse(const nlohmann::json* options,
                                                                     const MethodContext& run);
  nlohmann::json ToJson() const override;
  int64_t EpochBudget(int64_t spec_epochs) const override { return search_epochs + spec_epochs; }
  std::shared_ptr<const models::ConvUnitFactory> SearchUnits() const;
};

class EdmipsAllocator : public Allocator {
 public:
  explicit EdmipsAllocator(EdmipsOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "edmips"; }
  absl::StatusOr<AllocatorResult> Run(AllocatorContext& context) override;

 private:
  EdmipsOptions options_;
};

}  // namespace mpq::alloc
