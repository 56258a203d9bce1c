// Experiment specs: validation messages and run identity.
#include "experiments/spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"

#include "lib/alloc/edmips.h"
#include "lib/alloc/impq.h"

namespace mpq::experiments {
namespace {

using ::testing::HasSubstr;

std::string Error(const std::string& json) {
  absl::StatusOr<ExperimentSpec> s = ParseSpec(json, "x.json");
  return s.ok() ? "ok" : std::string(s.status().message());
}

TEST(SpecTest, DefaultsFillUnsetKeys) {
  absl::StatusOr<ExperimentSpec> s = ParseSpec(R"({"name": "a", "weight_bits": 4, "lr": 1})", "x.json");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->model, "resnet20");
  EXPECT_EQ(s->image_size, 32);  // the model's default
  EXPECT_EQ(s->quant.weight_bits, 4);
  EXPECT_EQ(s->lr, 1.0);
  EXPECT_STREQ(s->method->name, "uniform");
}

TEST(SpecTest, ErrorsNameTheFileTheKeyAndWhatIsValid) {
  EXPECT_THAT(Error(R"({"name": "a", "epoch": 3})"),
              AllOf(HasSubstr("x.json"), HasSubstr("\"epoch\": unknown key; valid keys:"), HasSubstr("epochs")));
  EXPECT_THAT(Error(R"({"name": "a", "model": "resnet21"})"), HasSubstr("valid: resnet20, vgg_small"));
  EXPECT_THAT(Error(R"({"name": "a", "dataset": "mnist"})"), HasSubstr("valid: fashion_mnist, cifar10"));
  EXPECT_THAT(Error(R"({"name": "a", "act_quantizer": "relu"})"), HasSubstr("not one of none, dorefa, pact"));
  EXPECT_THAT(Error(R"({"name": "a", "weight_bits": 0})"), HasSubstr("0 is out of range; expected 1..16 or 32"));
  EXPECT_THAT(Error(R"({"name": "a", "epochs": "3"})"), HasSubstr("expected a number, got \"3\""));
  EXPECT_THAT(Error(R"({"name": "a", "epochs": 2.5})"), HasSubstr("\"epochs\": expected a number"));
  EXPECT_THAT(Error(R"({"model": "resnet20"})"), HasSubstr("\"name\": required"));
  EXPECT_THAT(Error(R"({"name": "a",)"), HasSubstr("not valid JSON"));
  EXPECT_THAT(Error(R"([1, 2])"), HasSubstr("must be a JSON object"));
  EXPECT_THAT(Error(R"({"name": "a", "validation_fraction": 1.0})"), HasSubstr("must be in [0, 1)"));
  EXPECT_THAT(Error(R"({"name": "a", "epochs": 0})"), HasSubstr("\"epochs\": 0 is out of range: must be an integer in [1,"));
  EXPECT_THAT(Error(R"({"name": "a", "model": "alexnet", "image_size": 32})"),
              HasSubstr("\"image_size\": 32 is too small for alexnet: expected >= 63"));
  EXPECT_THAT(Error(R"({"name": "a", "model": "vgg_small", "image_size": 36})"), HasSubstr("a multiple of 8"));
  EXPECT_THAT(Error(R"({"name": "a", "model": "vgg_small", "image_size": 16})"),
              HasSubstr("\"image_size\": 16: the fashion_mnist pipelines give images of 28 pixels or more"));
  EXPECT_THAT(Error(R"({"name": "a", "dataset": "cifar10", "image_size": 64})"),
              HasSubstr("the cifar10 pipelines give images of 32 pixels"));
  EXPECT_THAT(Error(R"({"name": "a", "epochs": -1, "epochs": 1})"), HasSubstr("\"epochs\" is given twice"));
  EXPECT_THAT(Error(std::string(100000, '[') + std::string(100000, ']')), HasSubstr("nested deeper than 64"));
  EXPECT_THAT(Error(R"({"name": "a", "lr": 1e999})"), HasSubstr("not valid JSON"));
  EXPECT_THAT(Error(R"({"name": "a", "batch_size": 1e12})"), HasSubstr("\"batch_size\": expected a number without"));
  EXPECT_THAT(Error(R"({"name": "a", "batch_size": 9223372036854775807})"), HasSubstr("must be an integer in [1,"));
  EXPECT_THAT(Error(R"({"name": "a", "weight_decay": -1e-4})"), HasSubstr("\"weight_decay\": -0.0001 is out of range"));
  EXPECT_THAT(Error(R"({"name": "a", "momentum": -1})"), HasSubstr("\"momentum\": -1 is out of range"));
  EXPECT_THAT(Error(R"({"name": "a", "weight_quantizer": "none", "weight_bits": 4})"),
              HasSubstr("4 bits with weight_quantizer none"));
  EXPECT_THAT(Error(R"({"name": "a", "act_bits": 4})"), HasSubstr("4 bits with act_quantizer none"));
  EXPECT_THAT(Error(R"({"name": "a", "weight_quantizer": "hwgq", "weight_bits": 8})"),
              HasSubstr("its step constants exist for 1..4 bits"));
  EXPECT_THAT(Error(R"({"name": "a", "weight_quantizer": "symmetric", "weight_bits": 1})"),
              HasSubstr("1 bit with the symmetric quantizer"));
}

TEST(SpecTest, ImpqSettingsAreValidated) {
  absl::StatusOr<ExperimentSpec> s = ParseSpec(
      R"({"name": "a", "method": "impq", "weight_bits": 4,
          "impq": {"weight_schedule": "0:400, 3:200,4:150", "target_bw_eff": 1.74}})",
      "x.json");
  ASSERT_TRUE(s.ok()) << s.status();
  const alloc::ImpqOptions& impq = s->options<alloc::ImpqOptions>();
  EXPECT_EQ(impq.weight_schedule, (alloc::Schedule{{0, 400}, {3, 200}, {4, 150}}));
  EXPECT_DOUBLE_EQ(impq.target_bw_eff, 1.74);
  EXPECT_DOUBLE_EQ(impq.CalibrationFraction(), 0.05);  // the default eval_fraction
  EXPECT_THAT(Error(R"({"name": "a", "method": "impq"})"), HasSubstr("impq starts from a quantized model"));
  EXPECT_THAT(Error(R"({"name": "a", "method": "impq", "weight_bits": 4, "impq": {"weight_schedule": "0:400,2"}})"),
              AllOf(HasSubstr("\"impq.weight_schedule\""), HasSubstr("schedule entry '2'")));
  EXPECT_THAT(Error(R"({"name": "a", "method": "impq", "weight_bits": 4, "impq": {"act_schedule": "0:1"}})"),
              HasSubstr("needs an act_quantizer"));
  EXPECT_THAT(Error(R"({"name": "a", "method": "impq", "weight_bits": 4, "impq": {"metric": "hessian"}})"),
              HasSubstr("'hessian' is not one of paper, code"));
  EXPECT_THAT(Error(R"({"name": "a", "method": "impq", "weight_bits": 4, "impq": {"eval_fraction": 0}})"),
              HasSubstr("\"impq.eval_fraction\": 0 is out of range: must be in (0, 1]"));
  EXPECT_THAT(Error(R"({"name": "a", "method": "impq", "weight_bits": 4, "impq": {"metic": "code"}})"),
              AllOf(HasSubstr("\"impq.metic\": unknown key; valid keys: metric, reduction, eval_top"), HasSubstr("min_act_bits")));
  EXPECT_THAT(Error(R"({"name": "a", "method": "hawq-v4"})"), HasSubstr("'hawq-v4' is not one of uniform, impq"));
}

TEST(SpecTest, HawqSettingsAreValidated) {
  EXPECT_EQ(Error(R"({"name": "a", "method": "hawq", "hawq": {"candidates": "2,4,8", "budget": "weight_size"}})"),
            "ok");
  EXPECT_THAT(Error(R"({"name": "a", "method": "hawq", "weight_bits": 4})"),
              HasSubstr("hawq measures Hessian traces on a full-precision network"));
  EXPECT_THAT(Error(R"({"name": "a", "method": "hawq", "hawq": {"candidates": "1,4"}})"),
              HasSubstr("\"hawq.candidates\": '1' is not a bit-width in 2..16"));
  EXPECT_THAT(Error(R"({"name": "a", "method": "hawq", "hawq": {"budget_fraction": 1.5}})"),
              HasSubstr("\"hawq.budget_fraction\": 1.5 is out of range"));
  EXPECT_THAT(Error(R"({"name": "a", "method": "hawq", "hawq": {"budget_bits": 1}})"),
              HasSubstr("1 is out of range; expected 0 (use budget_fraction) or 2..16"));
  EXPECT_THAT(Error(R"({"name": "a", "method": "hawq", "hawq": {"budget": "latency"}})"),
              HasSubstr("'latency' is not one of bitops, weight_size"));
  EXPECT_THAT(Error(R"({"name": "a", "method": "hawq", "validation_fraction": 0})"),
              HasSubstr("hawq keeps the best fine-tuning epoch on validation"));
}

TEST(SpecTest, EdmipsSettingsAreValidated) {
  const std::string ok = R"("method": "edmips", "weight_quantizer": "hwgq", "act_quantizer": "hwgq",
                            "granularity": "per_tensor", "quantize_first_and_last": false)";
  absl::StatusOr<ExperimentSpec> s = ParseSpec("{\"name\": \"a\", " + ok + R"(, "edmips": {"cd": 0.00015}})", "x.json");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_DOUBLE_EQ(s->options<alloc::EdmipsOptions>().cd, 0.00015);
  EXPECT_EQ(s->options<alloc::EdmipsOptions>().EpochBudget(s->epochs), 25 + 1);  // search + retrain
  EXPECT_THAT(Error(R"({"name": "a", "method": "edmips"})"), HasSubstr("edmips searches HWGQ"));
  EXPECT_THAT(Error("{\"name\": \"a\", " + ok + R"(, "edmips": {"weight_candidates": "1,5"}})"),
              HasSubstr("candidate '5' is not a bit-width in 1..4"));
  EXPECT_THAT(Error("{\"name\": \"a\", " + ok + R"(, "edmips": {"discretize": "gumbel"}})"),
              HasSubstr("'gumbel' is not one of argmax, sample"));
  EXPECT_THAT(Error(R"({"name": "a", "method": "edmips", "weight_quantizer": "hwgq", "act_quantizer": "hwgq"})"),
              HasSubstr("set granularity to per_tensor"));
  EXPECT_EQ(*alloc::ParseCandidates("2, 3,4"), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_FALSE(alloc::ParseCandidates("2,2").ok());
}

TEST(SpecTest, AnotherMethodsOptionsAreRefused) {
  EXPECT_THAT(Error(R"({"name": "a", "weight_bits": 4, "edmips": {"cd": 0.1}})"),
              HasSubstr("\"edmips\": options of method edmips, but \"method\" is \"uniform\""));
  EXPECT_THAT(Error(R"({"name": "a", "weight_bits": 4, "uniform": {"x": 1}})"),
              HasSubstr("\"uniform.x\": unknown key"));
  EXPECT_THAT(Error(R"({"name": "a", "weight_bits": 4, "method": "random", "random": {"budget": "latency"}})"),
              HasSubstr("'latency' is not one of bitops, weight_size"));
}

TEST(SpecTest, ActivationPlacementIsValidatedAndKeepsOldIdentities) {
  absl::StatusOr<ExperimentSpec> relu = ParseSpec(
      R"({"name": "a", "weight_bits": 4, "act_quantizer": "pact", "act_bits": 4, "act_placement": "relu"})", "x");
  ASSERT_TRUE(relu.ok()) << relu.status();
  EXPECT_EQ(relu->quant.act_placement, models::ActPlacement::kReluOutput);
  EXPECT_EQ(nlohmann::json::parse(SpecToJson(*relu)).at("act_placement"), "relu");
  EXPECT_EQ(ParseSpec(SpecToJson(*relu), "round trip")->quant.act_placement, models::ActPlacement::kReluOutput);
  absl::StatusOr<ExperimentSpec> plain = ParseSpec(R"({"name": "a", "weight_bits": 4})", "x");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(SpecToJson(*plain).find("act_placement"), std::string::npos);  // the default: hash unchanged
  EXPECT_THAT(Error(R"({"name": "a", "model": "alexnet", "act_placement": "relu"})"),
              HasSubstr("\"act_placement\": \"relu\" is not implemented for alexnet"));
  EXPECT_THAT(Error(R"({"name": "a", "method": "edmips", "weight_quantizer": "hwgq", "act_quantizer": "hwgq",
                        "act_placement": "relu"})"),
              HasSubstr("method edmips searches over conv units"));
  EXPECT_THAT(Error(R"({"name": "a", "act_placement": "everywhere"})"), HasSubstr("\"act_placement\""));
}

TEST(SpecTest, TheDeviceIsValidatedAndIsNotPartOfTheIdentity) {
  const ExperimentSpec plain = *ParseSpec(R"({"name": "a"})", "x");
  EXPECT_EQ(plain.device, "auto");
  EXPECT_EQ(SpecToJson(plain).find("device"), std::string::npos);  // the default: stored specs unchanged
  const absl::StatusOr<ExperimentSpec> gpu = ParseSpec(R"({"name": "a", "device": "cuda"})", "x");
  ASSERT_TRUE(gpu.ok()) << gpu.status();  // parsed anywhere; resolved when it runs
  EXPECT_EQ(gpu->device, "cuda:0");
  EXPECT_EQ(nlohmann::json::parse(SpecToJson(*gpu)).at("device"), "cuda:0");
  EXPECT_EQ(ParseSpec(SpecToJson(*gpu), "round trip")->device, "cuda:0");
  EXPECT_EQ(SpecHash(*gpu, "v1"), SpecHash(plain, "v1"));  // a GPU run resumes on a CPU and the reverse
  EXPECT_EQ(SpecHash(*ParseSpec(R"({"name": "a", "device": "cpu"})", "x"), "v1"), SpecHash(plain, "v1"));
  EXPECT_THAT(Error(R"({"name": "a", "device": "gpu"})"),
              HasSubstr("\"device\": device \"gpu\" is not a device; expected auto, cpu, cuda or cuda:N"));
  EXPECT_THAT(Error(R"({"name": "a", "device": 0})"), HasSubstr("\"device\""));
}

TEST(SpecTest, StoredSpecsOfTheFlatLayoutAreUpgraded) {
  // A run stored before the registry: every method's keys at the top level.
  absl::StatusOr<ExperimentSpec> s = ParseStoredSpec(
      R"({"name": "a", "method": "impq", "weight_bits": 4, "impq_weight_schedule": "0:7", "impq_metric": "code",
          "edmips_cd": 0.1, "edmips_search_epochs": 3})",
      "run 1");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->options<alloc::ImpqOptions>().weight_schedule, (alloc::Schedule{{0, 7}}));
  EXPECT_EQ(s->options<alloc::ImpqOptions>().metric, alloc::SensitivityMetric::kCode);
  // Today's shape passes through unchanged.
  const ExperimentSpec today = *ParseSpec(R"({"name": "b", "method": "impq", "weight_bits": 4})", "x");
  EXPECT_EQ(SpecToJson(*ParseStoredSpec(SpecToJson(today), "run 2")), SpecToJson(today));
}

TEST(SpecTest, IdentityIgnoresTheDataLocationButNotTheCodeOrSettings) {
  ExperimentSpec a = *ParseSpec(R"({"name": "a"})", "x");
  ExperimentSpec b = a;
  b.data_dir = "/elsewhere";
  EXPECT_EQ(SpecHash(a, "v1"), SpecHash(b, "v1"));
  EXPECT_NE(SpecHash(a, "v1"), SpecHash(a, "v2"));
  b.epochs = 2;
  EXPECT_NE(SpecHash(a, "v1"), SpecHash(b, "v1"));
  ExperimentSpec c = *ParseSpec(R"({"name": "a", "method": "impq", "weight_bits": 4})", "x");
  ExperimentSpec d = *ParseSpec(R"({"name": "a", "method": "impq", "weight_bits": 4, "impq": {"finetune_epochs": 2}})", "x");
  EXPECT_NE(SpecHash(c, "v1"), SpecHash(d, "v1"));  // a method option is part of the identity
  EXPECT_EQ(SpecToJson(*ParseSpec(SpecToJson(d), "x")), SpecToJson(d));
  EXPECT_EQ(WithEpochs(d, 5)->epochs, 5);
  EXPECT_FALSE(WithEpochs(d, 0).ok());
  EXPECT_EQ(SpecHash(a, "v1").size(), 16u);
  // Canonical JSON round-trips.
  EXPECT_EQ(SpecToJson(*ParseSpec(SpecToJson(a), "x")), SpecToJson(a));
}

// Every experiment() target's spec (//experiments:all_specs) parses and names a
// published row that exists: a bad key in experiments/BUILD fails here, not in a
// nightly run.
TEST(SpecTest, EveryExperimentTargetParses) {
  absl::StatusOr<std::set<std::string>> paper_rows = ReadPaperRows("experiments/papers");
  ASSERT_TRUE(paper_rows.ok()) << paper_rows.status();
  int specs = 0;
  for (const auto& entry : std::filesystem::directory_iterator("experiments")) {
    const std::string path = entry.path().string();
    if (entry.path().extension() != ".json" || absl::EndsWith(path, ".table.json")) continue;
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<ExperimentSpec> s = ParseSpec(text.str(), path);
    EXPECT_TRUE(s.ok()) << s.status();
    if (s.ok()) {
      const absl::Status row = CheckPaperRow(*s, *paper_rows, "experiments/papers");
      EXPECT_TRUE(row.ok()) << path << ": " << row;
    }
    ++specs;
  }
  EXPECT_GE(specs, 38);  // experiments/BUILD defines 38 experiment() targets today
  ExperimentSpec unknown = *ParseSpec(R"({"name": "u", "paper_row": "no-such/row"})", "u");
  const absl::Status s = CheckPaperRow(unknown, *paper_rows, "experiments/papers");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'no-such/row' is not a row of experiments/papers/*.json"), std::string::npos) << s;
}

}  // namespace
}  // namespace mpq::experiments
