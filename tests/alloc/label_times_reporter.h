// label_times_reporter.h — Google Benchmark's console reporter that also keeps every
// benchmark's real time per iteration under its label, and hands them to a summary at the
// end: how the allocator benchmarks print ratios against a baseline measured in the same run.
//
//   LabelTimesReporter reporter([](const LabelTimes& t) { PrintRatio(t, "fixed", "uhlich"); });
//   benchmark::RunSpecifiedBenchmarks(&reporter);
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mpq::alloc::testing {

using LabelTimes = std::map<std::string, double>;  // label -> seconds per iteration (real time)

class LabelTimesReporter : public benchmark::ConsoleReporter {
 public:
  explicit LabelTimesReporter(std::function<void(const LabelTimes&)> summary) : summary_(std::move(summary)) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.run_type == Run::RT_Iteration && r.iterations > 0) times_[r.report_label] = r.GetAdjustedRealTime();
    }
    ConsoleReporter::ReportRuns(runs);
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    summary_(times_);
  }

 private:
  std::function<void(const LabelTimes&)> summary_;
  LabelTimes times_;
};

// "  <label>  <t / t_base>x" when both were measured.
inline void PrintRatio(const LabelTimes& t, const std::string& base, const std::string& label) {
  if (t.count(base) && t.count(label)) std::printf("  %-28s %.2fx\n", label.c_str(), t.at(label) / t.at(base));
}

}  // namespace mpq::alloc::testing
