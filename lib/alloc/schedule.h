// schedule.h — IMPQ's reduction schedule: how many groups lose a bit at each
// iteration, as "ITER:GROUPS,..." ("0:400,3:200,4:150": 400 per iteration from
// iteration 0, 200 from 3, 150 from 4 on; iterations are 0-based reduction counts as in
// the authors' code). Torch-free so experiment specs can validate it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace mpq::alloc {

// (first iteration index, groups per iteration), iterations increasing.
using Schedule = std::vector<std::pair<int64_t, int64_t>>;

// Parses "0:400,3:200,4:150". Errors name the bad entry. "" = empty schedule.
absl::StatusOr<Schedule> ParseSchedule(const std::string& text);
// The canonical text of a schedule ("0:400,3:200,4:150"); ParseSchedule inverts it.
std::string FormatSchedule(const Schedule& schedule);
// Groups to reduce at 0-based reduction `iteration` (0 before the first entry).
int64_t GroupsAt(const Schedule& schedule, int64_t iteration);

}  // namespace mpq::alloc
