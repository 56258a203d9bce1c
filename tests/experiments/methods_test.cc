// Every method of the registry, end to end through the runner on the synthetic data
// set: its row's smoke spec trains, allocates, stores each point with its allocation
// and finishes; a second call is a cache hit. A new registry row cannot be forgotten
// here: the test iterates the registry.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "experiments/run_experiment.h"
#include "experiments/spec.h"
#include "lib/alloc/method.h"
#include "lib/alloc/metric_names.h"
#include "results/store.h"
#include "tests/experiments/smoke_spec.h"

namespace mpq::experiments {
namespace {

class MethodsTest : public ::testing::TestWithParam<const alloc::MethodEntry*> {};

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(base ? base : "/tmp") + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/results");
  return dir;
}

RunnerOptions TestOptions(const std::string& workspace) {
  RunnerOptions options;
  options.workspace = workspace;
  options.code_version = "test";
  options.threads = 1;
  options.workers = 0;
  return options;
}

TEST_P(MethodsTest, SmokeSpecRunsEndToEndAndIsStored) {
  const alloc::MethodEntry& method = *GetParam();
  ASSERT_TRUE(nlohmann::json::parse(method.smoke_spec, nullptr, /*allow_exceptions=*/false).is_object())
      << method.name << ": smoke_spec must be a JSON object";
  absl::StatusOr<ExperimentSpec> parsed = ParseSpec(test_specs::CompletedSmokeSpec(method), "smoke_spec");
  ASSERT_TRUE(parsed.ok()) << parsed.status();

  const std::string ws = TempDir(method.name);
  auto store = std::move(*results::ResultStore::Open(ws + "/results/mpqbench.db"));
  RunnerOptions options = TestOptions(ws);
  RunError error;
  absl::StatusOr<RunSummary> s = RunExperiment(*parsed, *store, options, &error);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->status, "finished");
  ASSERT_TRUE(s->result.has_value());
  EXPECT_GT(*s->result->bitops, 0);
  EXPECT_EQ(store->GetRun(s->run)->status, "finished");

  // Every point has its accuracy and its allocation; the final one is among them.
  const std::vector<int64_t> points = *store->ListAllocationIterations(s->run);
  ASSERT_FALSE(points.empty());
  int point_vals = 0;
  const absl::StatusOr<std::vector<results::Metric>> metrics = store->GetMetrics(s->run);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  for (const results::Metric& m : *metrics) {
    point_vals += m.name == alloc::names::PointMetric(alloc::names::kValTop1);
  }
  EXPECT_EQ(point_vals, static_cast<int>(points.size()));
  const nlohmann::json extra = nlohmann::json::parse(s->result->extra_json);
  EXPECT_NE(std::find(points.begin(), points.end(), extra.at(alloc::names::kExtraFinalPoint).get<int64_t>()),
            points.end());
  EXPECT_FALSE(store->GetAllocation(s->run, points.back())->empty());

  absl::StatusOr<RunSummary> again = RunExperiment(*parsed, *store, options, &error);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->status, "cached");
  EXPECT_EQ(again->run, s->run);
}

std::vector<const alloc::MethodEntry*> AllMethods() {
  std::vector<const alloc::MethodEntry*> out;
  for (const alloc::MethodEntry& m : alloc::Methods()) out.push_back(&m);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Registry, MethodsTest, ::testing::ValuesIn(AllMethods()),
                         [](const auto& info) { return std::string(info.param->name); });

// Whatever throws once the run row exists ends the run as failed with the message; the
// next call resumes it to the end.
TEST(RunExperimentTest, AnExceptionAfterTheRunRowEndsItFailedAndItResumes) {
  absl::StatusOr<ExperimentSpec> spec = ParseSpec(
      R"({"name": "throws", "dataset": "synthetic", "epochs": 1, "train_subset": 64, "batch_size": 32})", "t");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const std::string ws = TempDir("throws");
  auto store = std::move(*results::ResultStore::Open(ws + "/results/mpqbench.db"));
  RunnerOptions options = TestOptions(ws);
  RunError error;
  for (const char* stage : {"open", "evaluate"}) {
    options.fault_after_stage = stage;
    absl::StatusOr<RunSummary> s = RunExperiment(*spec, *store, options, &error);
    ASSERT_FALSE(s.ok()) << stage;
    EXPECT_THAT(std::string(s.status().message()), ::testing::HasSubstr("injected fault"));
    const std::vector<results::RunRecord> runs = *store->ListRuns();
    ASSERT_EQ(runs.size(), 1u) << stage;  // the second failure is the same run, resumed
    EXPECT_EQ(runs[0].status, "failed") << stage;
    EXPECT_THAT(runs[0].error, ::testing::HasSubstr("injected fault")) << stage;
  }
  options.fault_after_stage = "";
  absl::StatusOr<RunSummary> s = RunExperiment(*spec, *store, options, &error);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->run, 1);
  EXPECT_EQ(store->GetRun(1)->status, "finished");
  EXPECT_EQ(store->GetRun(1)->error, "");
}

// IMPQ with the authors' placement (every ReLU output quantized) lowers the activation
// quantizers that placement creates, and the stored allocation names them.
TEST(RunExperimentTest, ImpqReducesReluOutputQuantizersUnderTheAuthorsPlacement) {
  absl::StatusOr<ExperimentSpec> spec = ParseSpec(
      R"({"name": "relu", "dataset": "synthetic", "epochs": 1, "train_subset": 96, "batch_size": 32,
          "validation_fraction": 0.2, "weight_bits": 4, "act_quantizer": "pact", "act_bits": 4,
          "act_placement": "relu", "method": "impq",
          "impq": {"weight_schedule": "0:20", "act_schedule": "0:2", "max_iterations": 1, "finetune_epochs": 1,
                   "finetune_lr": 0.01, "eval_fraction": 0.1, "reduction": "threshold"}})",
      "relu");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const std::string ws = TempDir("relu");
  auto store = std::move(*results::ResultStore::Open(ws + "/results/mpqbench.db"));
  RunError error;
  absl::StatusOr<RunSummary> s = RunExperiment(*spec, *store, TestOptions(ws), &error);
  ASSERT_TRUE(s.ok()) << s.status();
  const std::vector<results::GroupBits> start = *store->GetAllocation(s->run, 0), after = *store->GetAllocation(s->run, 1);
  int out_acts = 0, lowered_acts = 0, lowered_weights = 0;
  for (size_t i = 0; i < start.size(); ++i) {
    ASSERT_EQ(start[i].layer, after[i].layer);
    if (!start[i].is_weight) out_acts += start[i].layer.find("out_act") != std::string::npos;
    if (after[i].bits < start[i].bits) (start[i].is_weight ? lowered_weights : lowered_acts) += 1;
  }
  EXPECT_EQ(out_acts, 19);  // every activation group is a ReLU output
  EXPECT_GE(lowered_acts, 3);      // threshold rule: N + 1 = 3 (more on ties)
  EXPECT_GE(lowered_weights, 21);  // 20 + 1
}

TEST(MethodRegistryTest, NamesAreUniqueAndUnknownNamesListTheValidOnes) {
  std::vector<std::string> names = alloc::MethodNames();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());
  EXPECT_THAT(std::string(alloc::FindMethod("hawq-v4").status().message()),
              ::testing::HasSubstr("not one of uniform, impq, edmips, random, uhlich, hawq"));
}

}  // namespace
}  // namespace mpq::experiments
