#include "lib/alloc/schedule.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace mpq::alloc {

absl::StatusOr<Schedule> ParseSchedule(const std::string& text) {
  Schedule s;
  if (absl::StripAsciiWhitespace(text).empty()) return s;
  for (absl::string_view entry : absl::StrSplit(text, ',')) {
    std::vector<absl::string_view> parts = absl::StrSplit(entry, ':');
    int64_t from = 0, n = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(absl::StripAsciiWhitespace(parts[0]), &from) ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(parts[1]), &n) || from < 0 || n < 0) {
      return absl::InvalidArgumentError(absl::StrCat("schedule entry '", entry,
                                                     "' is not ITERATION:GROUPS with both >= 0 (e.g. \"0:400,3:200\")"));
    }
    if (!s.empty() && from <= s.back().first) {
      return absl::InvalidArgumentError(
          absl::StrCat("schedule entry '", entry, "': iterations must increase (after ", s.back().first, ")"));
    }
    s.emplace_back(from, n);
  }
  return s;
}

std::string FormatSchedule(const Schedule& schedule) {
  std::string out;
  for (const auto& [from, groups] : schedule) absl::StrAppend(&out, out.empty() ? "" : ",", from, ":", groups);
  return out;
}

int64_t GroupsAt(const Schedule& schedule, int64_t iteration) {
  int64_t n = 0;
  for (const auto& [from, groups] : schedule) {
    if (from <= iteration) n = groups;
  }
  return n;
}

}  // namespace mpq::alloc
