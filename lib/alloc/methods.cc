// The method registry (method.h): one row per method. Adding a method = its allocator
// and options files, one row here, its BUILD dependency (:methods), its experiment
// rows (docs/adding_a_method.md).
#include <nlohmann/json.hpp>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/alloc/bitpruning.h"
#include "lib/alloc/edmips.h"
#include "lib/alloc/hawq.h"
#include "lib/alloc/impq.h"
#include "lib/alloc/method.h"
#include "lib/alloc/random_search.h"
#include "lib/alloc/uhlich.h"
#include "lib/alloc/uniform.h"

namespace mpq::alloc {
namespace {

template <typename A, typename O>
std::unique_ptr<Allocator> Make(const MethodOptions& options) {
  return std::make_unique<A>(dynamic_cast<const O&>(options));
}

std::unique_ptr<Allocator> MakeUniform(const MethodOptions&) { return std::make_unique<UniformAllocator>(); }

const MethodEntry kMethods[] = {
    {"uniform", "every group at the spec's weight_bits / act_bits (network-level precision)", ModelBuild::kPlain,
     /*chooses_bits=*/false, /*trains_starting_model=*/true, /*points_are_models=*/true, UniformOptions::Parse, MakeUniform,
     R"({"weight_bits": 4, "act_quantizer": "pact", "act_bits": 4})"},
    {"impq", "IMPQ: sensitivity-ordered iterative precision reduction (Gonugondla & Shanbhag, ICASSP 2022)",
     ModelBuild::kPlain, /*chooses_bits=*/true, /*trains_starting_model=*/true, /*points_are_models=*/true,
     ImpqOptions::Parse,
     Make<ImpqAllocator, ImpqOptions>,
     R"({"weight_bits": 4, "impq": {"weight_schedule": "0:100", "max_iterations": 1, "finetune_lr": 0.01}})"},
    {"edmips", "EdMIPS: differentiable bit-width search, then retraining (Cai & Vasconcelos, CVPR 2020)",
     ModelBuild::kSearch, /*chooses_bits=*/true, /*trains_starting_model=*/false, /*points_are_models=*/false,
     EdmipsOptions::Parse,
     Make<EdmipsAllocator, EdmipsOptions>,
     R"({"weight_quantizer": "hwgq", "act_quantizer": "hwgq", "granularity": "per_tensor",
         "quantize_first_and_last": false, "edmips": {"search_epochs": 1}})"},
    {"random", "random search: K random allocations under a BitOps or size budget, best on validation",
     ModelBuild::kPlain, /*chooses_bits=*/true, /*trains_starting_model=*/true, /*points_are_models=*/true,
     RandomSearchOptions::Parse,
     Make<RandomSearchAllocator, RandomSearchOptions>,
     R"({"weight_bits": 4, "random": {"samples": 2, "weight_candidates": "2,3,4"}})"},
    {"uhlich", "Uhlich et al.: learned step size and range, bits inferred, memory constraints (ICLR 2020)",
     ModelBuild::kPlain, /*chooses_bits=*/true, /*trains_starting_model=*/true, /*points_are_models=*/true,
     UhlichOptions::Parse,
     Make<UhlichAllocator, UhlichOptions>,
     R"({"uhlich": {"epochs": 1, "weight_kb": 2, "act_kb": 1}})"},
    {"hawq", "HAWQ-V3: Hessian-trace sensitivity, an ILP under a BitOps or size budget, fine-tuning (ICML 2021)",
     ModelBuild::kPlain, /*chooses_bits=*/true, /*trains_starting_model=*/true, /*points_are_models=*/true,
     HawqOptions::Parse,
     Make<HawqAllocator, HawqOptions>,
     R"({"hawq": {"candidates": "2,4", "trace_max_iterations": 3, "calibration_fraction": 0.1}})"},
    {"bitpruning", "BitPruning: learned real-valued bitlengths under a bit-count regularizer, rounded, fine-tuned (2020)",
     ModelBuild::kPlain, /*chooses_bits=*/true, /*trains_starting_model=*/true, /*points_are_models=*/false,
     BitPruningOptions::Parse,
     Make<BitPruningAllocator, BitPruningOptions>,
     R"({"bitpruning": {"epochs": 1, "finetune_epochs": 1, "lambda": 5, "bits_lr": 0.5, "calibration_fraction": 0.1}})"},
};

}  // namespace

absl::Span<const MethodEntry> Methods() { return kMethods; }

std::vector<std::string> MethodNames() {
  std::vector<std::string> names;
  for (const MethodEntry& m : kMethods) names.push_back(m.name);
  return names;
}

absl::StatusOr<const MethodEntry*> FindMethod(absl::string_view name) {
  for (const MethodEntry& m : kMethods) {
    if (name == m.name) return &m;
  }
  return absl::NotFoundError(
      absl::StrCat("'", name, "' is not one of ", absl::StrJoin(MethodNames(), ", ")));
}

}  // namespace mpq::alloc
