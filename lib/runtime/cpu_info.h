// cpu_info.h — which processor a run was made on, for the runs table's device column.
// Float results are bit-reproducible on one machine, not across processors (another SIMD
// width, another summation order in the BLAS and in our kernels; docs/leaderboard.md), so
// a run records its CPU model beside its thread count.
//
//   std::string model = runtime::CpuModel();   // "Intel(R) Xeon(R) Processor", or "unknown CPU"
#pragma once

#include <string>

namespace mpq::runtime {

// The first "model name" line of `cpuinfo` (Linux's /proc/cpuinfo format), trimmed;
// "unknown CPU" when the file cannot be read or has no such line.
std::string CpuModel(const std::string& cpuinfo = "/proc/cpuinfo");

}  // namespace mpq::runtime
