// random_search.h — random search as a mixed-precision baseline (random search is the
// standard baseline of architecture search: Li & Talwalkar, "Random Search and
// Reproducibility for Neural Architecture Search", UAI 2019), and the worked example of
// docs/adding_a_method.md.
//
//   RandomSearchOptions o;  o.samples = 8;  o.budget_fraction = 0.5;   // half the starting BitOps
//   RandomSearchAllocator random(o);
//   absl::StatusOr<AllocatorResult> r = random.Run(context);           // context.model: trained
//
// From the trained starting model (the spec's uniform bits; point 0), sample k = 1..K:
// every quantized weight group (and, with act_candidates, every quantizing activation
// group) draws a bit-width uniformly from the candidates; while the allocation's cost
// (BitOps or weight bytes, computed from the recorded layer geometry) is above the
// budget = budget_fraction x the starting model's cost (or, with budget_bits, the cost
// of every quantized group at budget_bits), one group drawn at random among
// those above the smallest candidate moves down one candidate. The sampled network
// starts from the starting model's weights, is fine-tuned `finetune_epochs` at
// `finetune_lr` and reported as point k. The sample with the best validation top-1 is
// the result (never the test set). Draws use data::Rng seeded with (seed, k), so a run
// is the same on every machine. State in context.state_dir: start.pt, sample_<k>/
// (Trainer), sample_<k>.pt and state.json, so a killed run resumes at its sample.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/alloc/allocator.h"
#include "lib/alloc/method.h"

namespace mpq::alloc {

enum class BudgetMetric { kBitOps, kWeightSize };

struct RandomSearchOptions : public MethodOptions {
  int64_t samples = 4;                             // K; default 4
  int64_t finetune_epochs = 1;                     // per sample; default 1
  double finetune_lr = 0.01;                       // default 0.01
  BudgetMetric budget = BudgetMetric::kBitOps;     // default BitOps
  double budget_fraction = 0.5;                    // of the starting model's cost; default 0.5
  // When > 0, the budget is instead the cost of the starting model with every quantized
  // group (weights and activations) at these bits: a uniform allocation's BitOps or
  // size, e.g. a leaderboard's budget; default 0.
  int64_t budget_bits = 0;
  std::vector<int64_t> weight_candidates = {1, 2, 3, 4, 5, 6, 7, 8};  // default 1..8
  std::vector<int64_t> act_candidates;             // empty (default): activations keep their bits
  uint64_t seed = 1;                               // the run's seed

  // The spec's "random" object: keys samples, finetune_epochs, finetune_lr, budget
  // (bitops | weight_size), budget_fraction, budget_bits, weight_candidates ("1,2,4"),
  // act_candidates ("" = keep).
  static absl::StatusOr<std::shared_ptr<const MethodOptions>> Parse(const nlohmann::json* options,
                                                                     const MethodContext& run);
  nlohmann::json ToJson() const override;
  int64_t EpochBudget(int64_t spec_epochs) const override { return spec_epochs + samples * finetune_epochs; }
};

// The budget of a run from `start`: budget_fraction x its cost, or with budget_bits the
// cost of `start` with every quantized group at budget_bits.
double BudgetOf(const Allocation& start, const std::vector<cost::LayerCost>& layers, const RandomSearchOptions& options);

// One random allocation of `model`'s groups under the budget (see above); an error when
// even every group at its smallest candidate is over the budget.
absl::StatusOr<Allocation> SampleAllocation(const Allocation& start, const std::vector<cost::LayerCost>& layers,
                                            const RandomSearchOptions& options, double budget, uint64_t seed);

class RandomSearchAllocator : public Allocator {
 public:
  explicit RandomSearchAllocator(RandomSearchOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "random"; }
  absl::StatusOr<AllocatorResult> Run(AllocatorContext& context) override;

 private:
  RandomSearchOptions options_;
};

}  // namespace mpq::alloc
