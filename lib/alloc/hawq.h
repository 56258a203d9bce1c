// hawq.h — HAWQ-V3's mixed-precision allocation (Yao, Dong et al., "HAWQ-V3: Dyadic
// Neural Network Quantization", ICML 2021, sec. 3.3 and eq. 5; Zhen-Dong/HAWQ ILP.ipynb,
// amirgholami/PyHessian): Hessian-trace sensitivity, one bit-width per layer from an
// integer linear program under a BitOps or size budget, then quantization-aware
// fine-tuning. Derivations and deviations: docs/hawq.md.
//
//   HawqOptions o;  o.candidates = {4, 8};  o.budget = HawqBudget::kBitOps;  o.budget_fraction = 0.5;
//   HawqAllocator hawq(o);
//   absl::StatusOr<AllocatorResult> r = hawq.Run(context);  // context.model: the trained float network
//
// 1. Sensitivity on the trained float network (the spec's `epochs` train it): each
//    QConv2d / QLinear's Hessian trace Tr_l by Hutchinson (hessian_trace.h) on the
//    calibration split of the training set (test-time transforms; never the test set).
// 2. Perturbation per layer l and candidate b: Omega_l(b) = Tr_l / N_l ||Q_b(W_l) - W_l||^2,
//    Q_b the symmetric quantizer the network is fine-tuned with (lib/quant/symmetric.h).
// 3. The ILP (ilp.h, GLPK): minimise sum_l Omega_l(b_l) subject to cost(b) <= C_low + r
//    (C_high - C_low), with C_low / C_high every free layer at the smallest / largest
//    candidate; cost = BitOps (MACs b_w b_a) or weight size (N b / 8). Layers reading
//    the same tensor take the same bits (the downsample shortcut follows its block's
//    first convolution, the notebook's x4 == x6); the first convolution and the
//    classifier are fixed at first_last_bits, outside the program (as the notebook).
// 4. The network rebuilt with symmetric per-channel weights and per-layer activation
//    quantizers, the float weights copied in, the chosen bits applied (a layer's input
//    activation takes the layer's bits: HAWQ-V3's layers are WbAb), point 0 measured
//    (post-training, before fine-tuning), fine-tuned `finetune_epochs` with the best
//    validation epoch kept, point 1 measured.
// The traces, their convergence and Omega are stored as metrics of point 0. State in
// context.state_dir: hutchinson.json (after every iteration), ilp.json, finetune/
// (Trainer), done.json, so a killed run resumes where it stopped.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/alloc/allocator.h"
#include "lib/alloc/hessian_trace.h"
#include "lib/alloc/method.h"

namespace mpq::alloc {

enum class HawqBudget { kBitOps, kWeightSize };

struct HawqOptions : public MethodOptions {
  std::vector<int64_t> candidates = {4, 8};  // bit-widths a free layer may take; default HAWQ-V3's {4, 8}
  HawqBudget budget = HawqBudget::kBitOps;   // default BitOps
  double budget_fraction = 0.5;              // r in [0, 1]; default 0.5
  // When > 0, the budget is instead the cost of every free layer at these bits (a
  // uniform allocation's BitOps or size, e.g. a leaderboard's budget); default 0.
  int64_t budget_bits = 0;
  int64_t first_last_bits = 8;               // the first conv and the classifier; default 8 (HAWQ-V3)
  int64_t act_bits = 0;                      // 0 (default): each layer's input at the layer's bits; else fixed
  nn::Granularity granularity = nn::Granularity::kPerChannel;  // weights; default per channel (HAWQ-V3)
  nn::ActQuantizer act_quantizer = nn::ActQuantizer::kPact;   // per layer; default PACT (docs/hawq.md)
  double calibration_fraction = 0.01;        // of the training split, for the traces; default 1%
  int64_t trace_max_iterations = 100;        // PyHessian's maxIter; default 100
  double trace_tolerance = 1e-3;             // PyHessian's tol; default 1e-3
  TraceProducts trace_products = TraceProducts::kPerLayer;  // default per layer
  int64_t finetune_epochs = 1;               // default 1
  double finetune_lr = 1e-3;                 // cosine to 0; default 1e-3
  double ilp_time_limit_s = 60;              // GLPK's limit; default 60 s
  uint64_t seed = 1;                         // the run's seed (Hutchinson's vectors)

  // The spec's "hawq" object: keys candidates ("4,8"), budget (bitops | weight_size),
  // budget_fraction, budget_bits, first_last_bits, act_bits, granularity, act_quantizer (pact | lsq),
  // calibration_fraction, trace_max_iterations, trace_tolerance, trace_products
  // (per_layer | joint), finetune_epochs, finetune_lr, ilp_time_limit_s. The spec
  // itself must be full precision (weight_bits 32, act_quantizer none).
  static absl::StatusOr<std::shared_ptr<const MethodOptions>> Parse(const nlohmann::json* options,
                                                                     const MethodContext& run);
  nlohmann::json ToJson() const override;
  double CalibrationFraction() const override { return calibration_fraction; }
  int64_t EpochBudget(int64_t spec_epochs) const override { return spec_epochs + finetune_epochs; }
  // The quantizers of the fine-tuned network (bits: the largest candidate until the
  // allocation is applied).
  models::QuantConfig Quant() const;
};

const char* Name(HawqBudget budget);

// One layer of the program, with what the solver saw and chose.
struct HawqLayer {
  std::string layer;            // module name
  int64_t params = 0;           // N_l
  double macs = 0;
  std::string act_layer;        // the QAct feeding it in the quantized network ("" = none)
  bool fixed = false;           // first / last: not a variable
  std::vector<double> omega;    // per candidate
  int64_t bits = 0;             // chosen (or fixed)
};

struct HawqProgram {
  std::vector<HawqLayer> layers;                    // forward order
  std::vector<std::pair<int64_t, int64_t>> ties;    // indices into layers
  double budget = 0, cost_low = 0, cost_high = 0;   // of the free layers
  double objective = 0, cost = 0;                   // of the solution
  bool optimal = true;
  std::string solver;
};

// Steps 2-3 on their own, for tests and for the record: the program for `quantized`
// (the network with the method's quantizers; its recorded geometry and QActs) from
// `traces` (of the float network, same layer names), `ties` (pairs of layer names that
// read one tensor) and the float weights in `quantized`, solved.
absl::StatusOr<HawqProgram> SolveHawqProgram(models::Model& quantized, const std::vector<int64_t>& input_shape,
                                             const std::vector<LayerTrace>& traces,
                                             const std::vector<std::pair<std::string, std::string>>& ties,
                                             const HawqOptions& options);

// Pairs of QConv2d / QLinear layers of `model` whose forward reads the same tensor (in a
// network without activation quantizers, e.g. the trained float one).
std::vector<std::pair<std::string, std::string>> LayersReadingOneTensor(models::Model& model,
                                                                         const std::vector<int64_t>& input_shape);

class HawqAllocator : public Allocator {
 public:
  explicit HawqAllocator(HawqOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "hawq"; }
  absl::StatusOr<AllocatorResult> Run(AllocatorContext& context) override;

 private:
  HawqOptions options_;
};

}  // namespace mpq::alloc
