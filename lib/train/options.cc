#include "lib/train/options.h"

#include <utility>

#include "lib/runtime/name_table.h"

namespace mpq::train {
namespace {

using runtime::NameIn;
using runtime::NamesIn;
using runtime::ParseIn;

constexpr std::pair<Optimizer, const char*> kOptimizers[] = {{Optimizer::kSgd, "sgd"}, {Optimizer::kAdam, "adam"}};
constexpr std::pair<Schedule, const char*> kSchedules[] = {{Schedule::kConstant, "constant"},
                                                            {Schedule::kStep, "step"},
                                                            {Schedule::kMultiStep, "multistep"},
                                                            {Schedule::kCosine, "cosine"}};

}  // namespace

const char* Name(Optimizer o) { return NameIn(kOptimizers, o); }
const char* Name(Schedule s) { return NameIn(kSchedules, s); }
absl::StatusOr<Optimizer> ParseOptimizer(absl::string_view name) { return ParseIn(kOptimizers, name, "an optimizer"); }
absl::StatusOr<Schedule> ParseSchedule(absl::string_view name) { return ParseIn(kSchedules, name, "a schedule"); }
std::vector<std::string> OptimizerNames() { return NamesIn(kOptimizers); }
std::vector<std::string> ScheduleNames() { return NamesIn(kSchedules); }

}  // namespace mpq::train
