#include "lib/alloc/trained_state.h"

#include <map>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "lib/nn/qconv.h"

namespace mpq::alloc {

absl::Status CopyTrainedState(const torch::nn::Module& from, torch::nn::Module& to) {
  static const std::set<std::string> kQuantizerState = {
      "weight_bits", "bits", "weight_step", "weight_d", "weight_qmax", "weight_b", "weight_xmin", "weight_xmax",
      "step", "alpha", "d", "qmax", "b", "xmin", "xmax", "initialized", "weight_fbits", "fbits"};
  auto leaf = [](const std::string& name) {
    const size_t dot = name.rfind('.');
    return dot == std::string::npos ? name : name.substr(dot + 1);
  };
  std::map<std::string, at::Tensor> source;
  for (const auto& p : from.named_parameters(true)) source[p.key()] = p.value();
  for (const auto& b : from.named_buffers(true)) source[b.key()] = b.value();
  std::set<std::string> copied;
  at::NoGradGuard no_grad;
  auto copy = [&](const std::string& name, const at::Tensor& target) {
    if (kQuantizerState.count(leaf(name))) return;
    auto it = source.find(name);
    if (it == source.end() || !it->second.sizes().equals(target.sizes()) ||
        it->second.scalar_type() != target.scalar_type()) {
      return;
    }
    target.detach().copy_(it->second.detach());
    copied.insert(name);
  };
  for (const auto& p : to.named_parameters(true)) copy(p.key(), p.value());
  for (const auto& b : to.named_buffers(true)) copy(b.key(), b.value());
  for (const auto& item : to.named_modules("", false)) {
    if (dynamic_cast<nn::QConv2dImpl*>(item.value().get()) || dynamic_cast<nn::QLinearImpl*>(item.value().get())) {
      const std::string name = item.key() + ".weight";
      if (!copied.count(name)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the trained starting model has no weight '", name, "' of the same shape to start from"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace mpq::alloc
