#include "lib/train/options.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mpq::train {
namespace {

constexpr std::pair<Optimizer, const char*> kOptimizers[] = {{Optimizer::kSgd, "sgd"}, {Optimizer::kAdam, "adam"}};
constexpr std::pair<Schedule, const char*> kSchedules[] = {{Schedule::kConstant, "constant"},
                                                            {Schedule::kStep, "step"},
                                                            {Schedule::kMultiStep, "multistep"},
                                                            {Schedule::kCosine, "cosine"}};

template <typename E, size_t N>
std::vector<std::string> NamesIn(const std::pair<E, const char*> (&table)[N]) {
  std::vector<std::string> out;
  for (const auto& entry : table) out.push_back(entry.second);
  return out;
}

template <typename E, size_t N>
const char* NameIn(const std::pair<E, const char*> (&table)[N], E value) {
  for (const auto& [e, name] : table) {
    if (e == value) return name;
  }
  return "?";
}

template <typename E, size_t N>
absl::StatusOr<E> ParseIn(const std::pair<E, const char*> (&table)[N], absl::string_view name, const char* what) {
  for (const auto& [e, n] : table) {
    if (name == n) return e;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", name, "' is not ", what, "; valid: ", absl::StrJoin(NamesIn(table), ", ")));
}

}  // namespace

const char* Name(Optimizer o) { return NameIn(kOptimizers, o); }
const char* Name(Schedule s) { return NameIn(kSchedules, s); }
absl::StatusOr<Optimizer> ParseOptimizer(absl::string_view name) { return ParseIn(kOptimizers, name, "an optimizer"); }
absl::StatusOr<Schedule> ParseSchedule(absl::string_view name) { return ParseIn(kSchedules, name, "a schedule"); }
std::vector<std::string> OptimizerNames() { return NamesIn(kOptimizers); }
std::vector<std::string> ScheduleNames() { return NamesIn(kSchedules); }

}  // namespace mpq::train
