#include "lib/nn/quantizer_options.h"

#include <utility>

#include "lib/runtime/name_table.h"

namespace mpq::nn {
namespace {

using runtime::NameIn;
using runtime::NamesIn;
using runtime::ParseIn;

constexpr std::pair<WeightQuantizer, const char*> kWeightNames[] = {
    {WeightQuantizer::kNone, "none"}, {WeightQuantizer::kLin, "lin"},   {WeightQuantizer::kDorefa, "dorefa"},
    {WeightQuantizer::kLsq, "lsq"},   {WeightQuantizer::kHwgq, "hwgq"}, {WeightQuantizer::kUhlich, "uhlich"},
    {WeightQuantizer::kSymmetric, "symmetric"}, {WeightQuantizer::kFracBits, "fracbits"}};
constexpr std::pair<ActQuantizer, const char*> kActNames[] = {
    {ActQuantizer::kNone, "none"}, {ActQuantizer::kDorefa, "dorefa"}, {ActQuantizer::kPact, "pact"},
    {ActQuantizer::kLsq, "lsq"},   {ActQuantizer::kHwgq, "hwgq"},     {ActQuantizer::kUhlich, "uhlich"},
    {ActQuantizer::kFracBits, "fracbits"}};
constexpr std::pair<Granularity, const char*> kGranularityNames[] = {{Granularity::kPerChannel, "per_channel"},
                                                                      {Granularity::kPerTensor, "per_tensor"}};
constexpr std::pair<UhlichParametrization, const char*> kUhlichNames[] = {
    {UhlichParametrization::kDeltaXmax, "delta_xmax"},
    {UhlichParametrization::kBXmax, "b_xmax"},
    {UhlichParametrization::kXminXmax, "xmin_xmax"}};

}  // namespace

const char* Name(WeightQuantizer q) { return NameIn(kWeightNames, q); }
const char* Name(ActQuantizer q) { return NameIn(kActNames, q); }
const char* Name(Granularity g) { return NameIn(kGranularityNames, g); }
const char* Name(UhlichParametrization p) { return NameIn(kUhlichNames, p); }
absl::StatusOr<WeightQuantizer> ParseWeightQuantizer(absl::string_view name) {
  return ParseIn(kWeightNames, name, "a weight quantizer");
}
absl::StatusOr<ActQuantizer> ParseActQuantizer(absl::string_view name) {
  return ParseIn(kActNames, name, "an activation quantizer");
}
absl::StatusOr<Granularity> ParseGranularity(absl::string_view name) {
  return ParseIn(kGranularityNames, name, "a granularity");
}
absl::StatusOr<UhlichParametrization> ParseUhlichParametrization(absl::string_view name) {
  return ParseIn(kUhlichNames, name, "an Uhlich parametrization");
}
std::vector<std::string> WeightQuantizerNames() { return NamesIn(kWeightNames); }
std::vector<std::string> ActQuantizerNames() { return NamesIn(kActNames); }
std::vector<std::string> GranularityNames() { return NamesIn(kGranularityNames); }
std::vector<std::string> UhlichParametrizationNames() { return NamesIn(kUhlichNames); }

}  // namespace mpq::nn
