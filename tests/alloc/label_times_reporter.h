// label_times_reporter.h — Google Benchmark's console reporter that also keeps every
// benchmark's real time per iteration under its label (the median over repetitions when
// --benchmark_repetitions is given), and hands them to a summary at the
// end: how the allocator benchmarks print ratios against a baseline measured in the same run.
//
//   int main(int argc, char** argv) {
//     return RunBenchmarks(argc, argv, [](const LabelTimes& t) { PrintRatio(t, "fixed", "uhlich"); });
//   }
#pragma once

#include <benchmark/benchmark.h>

#include "lib/runtime/malloc_tuning.h"

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <set>
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
      // One run: its time. With --benchmark_repetitions: the median over the repetitions
      // (reported after them), so that one disturbed repetition does not set the ratio.
      if (r.run_type == Run::RT_Iteration && r.iterations > 0 && !medians_.count(r.report_label)) {
        times_[r.report_label] = r.GetAdjustedRealTime();
      }
      if (r.run_type == Run::RT_Aggregate && r.aggregate_name == "median") {
        times_[r.report_label] = r.GetAdjustedRealTime();
        medians_.insert(r.report_label);
      }
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
  std::set<std::string> medians_;
};

// "  <label>  <t / t_base>x" when both were measured.
inline void PrintRatio(const LabelTimes& t, const std::string& base, const std::string& label) {
  if (t.count(base) && t.count(label)) std::printf("  %-28s %.2fx\n", label.c_str(), t.at(label) / t.at(base));
}

// The timed loop of a training-step benchmark: 3 warm-up steps, then `step` for as long as
// the benchmark runs; images/s from `batch` images a step; `label` names the mode.
inline void MeasureSteps(benchmark::State& state, const std::function<void()>& step, int64_t batch,
                         const std::string& label) {
  for (int i = 0; i < 3; ++i) step();
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
  state.SetLabel(label);
}

// The main() of an allocator benchmark: malloc tuned for repeated large allocations, the
// registered benchmarks run with a LabelTimesReporter, then `summary` with their times.
inline int RunBenchmarks(int argc, char** argv, std::function<void(const LabelTimes&)> summary) {
  runtime::TuneMallocForRepeatedLargeAllocations();
  benchmark::Initialize(&argc, argv);
  LabelTimesReporter reporter(std::move(summary));
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}

}  // namespace mpq::alloc::testing
