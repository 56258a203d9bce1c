#include "lib/nn/quantizer_options.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mpq::nn {
namespace {

constexpr std::pair<WeightQuantizer, const char*> kWeightNames[] = {
    {WeightQuantizer::kNone, "none"}, {WeightQuantizer::kLin, "lin"},   {WeightQuantizer::kDorefa, "dorefa"},
    {WeightQuantizer::kLsq, "lsq"},   {WeightQuantizer::kHwgq, "hwgq"}, {WeightQuantizer::kUhlich, "uhlich"}};
constexpr std::pair<ActQuantizer, const char*> kActNames[] = {
    {ActQuantizer::kNone, "none"}, {ActQuantizer::kDorefa, "dorefa"}, {ActQuantizer::kPact, "pact"},
    {ActQuantizer::kLsq, "lsq"},   {ActQuantizer::kHwgq, "hwgq"},     {ActQuantizer::kUhlich, "uhlich"}};
constexpr std::pair<Granularity, const char*> kGranularityNames[] = {{Granularity::kPerChannel, "per_channel"},
                                                                      {Granularity::kPerTensor, "per_tensor"}};

template <typename E, size_t N>
const char* NameIn(const std::pair<E, const char*> (&table)[N], E value) {
  for (const auto& [e, name] : table) {
    if (e == value) return name;
  }
  return "?";
}

template <typename E, size_t N>
std::vector<std::string> NamesIn(const std::pair<E, const char*> (&table)[N]) {
  std::vector<std::string> out;
  for (const auto& entry : table) out.push_back(entry.second);
  return out;
}

template <typename E, size_t N>
absl::StatusOr<E> ParseIn(const std::pair<E, const char*> (&table)[N], absl::string_view name, const char* what) {
  for (const auto& [e, n] : table) {
    if (name == n) return e;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", name, "' is not a ", what, "; valid: ", absl::StrJoin(NamesIn(table), ", ")));
}

}  // namespace

const char* Name(WeightQuantizer q) { return NameIn(kWeightNames, q); }
const char* Name(ActQuantizer q) { return NameIn(kActNames, q); }
const char* Name(Granularity g) { return NameIn(kGranularityNames, g); }
absl::StatusOr<WeightQuantizer> ParseWeightQuantizer(absl::string_view name) {
  return ParseIn(kWeightNames, name, "weight quantizer");
}
absl::StatusOr<ActQuantizer> ParseActQuantizer(absl::string_view name) {
  return ParseIn(kActNames, name, "activation quantizer");
}
absl::StatusOr<Granularity> ParseGranularity(absl::string_view name) {
  return ParseIn(kGranularityNames, name, "granularity");
}
std::vector<std::string> WeightQuantizerNames() { return NamesIn(kWeightNames); }
std::vector<std::string> ActQuantizerNames() { return NamesIn(kActNames); }
std::vector<std::string> GranularityNames() { return NamesIn(kGranularityNames); }

}  // namespace mpq::nn
