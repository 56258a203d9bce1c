// name_table.h — an enum's names as one constexpr table, for the enums specs, stores
// and reports spell out (quantizers, optimizers, schedules). Torch-free, header-only.
//
//   constexpr std::pair<Schedule, const char*> kSchedules[] = {{Schedule::kStep, "step"}, ...};
//   NameIn(kSchedules, Schedule::kStep)                        // "step"
//   ParseIn(kSchedules, "cosin", "a schedule")                 // error: "'cosin' is not a schedule; valid: ..."
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace mpq::runtime {

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

// `what` completes "'<name>' is not <what>", e.g. "a schedule".
template <typename E, size_t N>
absl::StatusOr<E> ParseIn(const std::pair<E, const char*> (&table)[N], absl::string_view name, const char* what) {
  for (const auto& [e, n] : table) {
    if (name == n) return e;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", name, "' is not ", what, "; valid: ", absl::StrJoin(NamesIn(table), ", ")));
}

}  // namespace mpq::runtime
