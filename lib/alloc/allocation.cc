#include "lib/alloc/allocation.h"

#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/nn/mixq.h"
#include "lib/nn/qact.h"
#include "lib/nn/qconv.h"

namespace mpq::alloc {
namespace {

// The weight-bits buffer of a QConv2d / QLinear, or undefined.
at::Tensor WeightBitsOf(const torch::nn::Module& m) {
  if (const auto* conv = dynamic_cast<const nn::QConv2dImpl*>(&m)) return conv->weight_bits;
  if (const auto* fc = dynamic_cast<const nn::QLinearImpl*>(&m)) return fc->weight_bits;
  return {};
}

// The real-valued bits of a fracbits QConv2d / QLinear, or undefined.
at::Tensor FracBitsOf(const torch::nn::Module& m) {
  const nn::WeightQuantization* q = nullptr;
  if (const auto* conv = dynamic_cast<const nn::QConv2dImpl*>(&m)) q = &conv->quantization;
  if (const auto* fc = dynamic_cast<const nn::QLinearImpl*>(&m)) q = &fc->quantization;
  return q != nullptr && q->kind == nn::WeightQuantizer::kFracBits ? q->fbits : at::Tensor();
}

const nn::QActImpl* QuantizingActOf(const torch::nn::Module& m) {
  const auto* act = dynamic_cast<const nn::QActImpl*>(&m);
  return act != nullptr && act->options.quantizer() != nn::ActQuantizer::kNone ? act : nullptr;
}

bool ValidBits(int64_t b) { return b == 32 || (b >= 1 && b <= 16); }

}  // namespace

Allocation ReadAllocation(const torch::nn::Module& model) {
  Allocation a;
  std::vector<GroupBits> acts;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    const torch::nn::Module& m = *item.value();
    if (at::Tensor bits = WeightBitsOf(m); bits.defined()) {
      const at::Tensor b = bits.to(at::kCPU, at::kLong).contiguous();
      for (int64_t g = 0; g < b.numel(); ++g) a.groups.push_back({item.key(), true, g, b.data_ptr<int64_t>()[g]});
    } else if (const nn::QActImpl* act = QuantizingActOf(m)) {
      acts.push_back({item.key(), false, 0, act->current_bits()});
    } else if (const auto* mix = dynamic_cast<const nn::MixQConv2dImpl*>(&m)) {
      a.groups.push_back({item.key(), true, 0, mix->selected_bits()});  // EdMIPS search: the argmax
    } else if (const auto* mix_act = dynamic_cast<const nn::MixQActImpl*>(&m)) {
      acts.push_back({item.key(), false, 0, mix_act->selected_bits()});
    }
  }
  a.groups.insert(a.groups.end(), acts.begin(), acts.end());
  return a;
}

absl::Status ApplyAllocation(torch::nn::Module& model, const Allocation& allocation) {
  std::map<std::string, std::shared_ptr<torch::nn::Module>> modules;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) modules[item.key()] = item.value();
  // Validate everything first so that an error changes nothing.
  for (const GroupBits& g : allocation.groups) {
    auto it = modules.find(g.layer);
    if (it == modules.end()) return absl::NotFoundError(absl::StrCat("allocation: no layer named '", g.layer, "'"));
    if (!ValidBits(g.bits)) {
      return absl::InvalidArgumentError(absl::StrCat("allocation: ", g.layer, " group ", g.group, ": bits ", g.bits,
                                                     " out of range; expected 1..16 or 32"));
    }
    if (g.is_weight) {
      at::Tensor bits = WeightBitsOf(*it->second);
      if (!bits.defined()) {
        return absl::InvalidArgumentError(absl::StrCat("allocation: '", g.layer, "' has no weight bits"));
      }
      if (g.group < 0 || g.group >= bits.numel()) {
        return absl::OutOfRangeError(absl::StrCat("allocation: ", g.layer, " has ", bits.numel(), " weight groups; group ",
                                                  g.group, " does not exist"));
      }
    } else if (QuantizingActOf(*it->second) == nullptr || g.group != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("allocation: '", g.layer, "' group ", g.group, " is not a quantizing activation (group 0)"));
    }
  }
  for (const GroupBits& g : allocation.groups) {
    torch::nn::Module& m = *modules[g.layer];
    if (g.is_weight) {
      WeightBitsOf(m)[g.group].fill_(g.bits);
      if (at::Tensor f = FracBitsOf(m); f.defined()) {
        at::NoGradGuard no_grad;
        f[g.group].fill_(static_cast<double>(g.bits));
      }
    } else {
      dynamic_cast<nn::QActImpl&>(m).set_bits(g.bits);
    }
  }
  return absl::OkStatus();
}

std::string AllocationToJson(const Allocation& a) {
  nlohmann::json groups = nlohmann::json::array();
  for (const GroupBits& g : a.groups) {
    groups.push_back({{"layer", g.layer}, {"weight", g.is_weight}, {"group", g.group}, {"bits", g.bits}});
  }
  return nlohmann::json{{"groups", groups}}.dump(1) + "\n";
}

absl::StatusOr<Allocation> AllocationFromJson(const std::string& text, const std::string& source) {
  Allocation a;
  try {
    const nlohmann::json parsed = nlohmann::json::parse(text);  // kept alive for the loop
    for (const nlohmann::json& g : parsed.at("groups")) {
      a.groups.push_back({g.at("layer").get<std::string>(), g.at("weight").get<bool>(), g.at("group").get<int64_t>(),
                          g.at("bits").get<int64_t>()});
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(
        absl::StrCat(source, " is not a valid allocation (delete it, or the run's checkpoint directory, to start over): ",
                     e.what()));
  }
  return a;
}

}  // namespace mpq::alloc
