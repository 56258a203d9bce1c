// Experiment specs: validation messages and run identity.
#include "experiments/spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
  EXPECT_EQ(s->weight_bits, 4);
  EXPECT_EQ(s->lr, 1.0);
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
}

TEST(SpecTest, ImpqSettingsAreValidated) {
  absl::StatusOr<ExperimentSpec> s = ParseSpec(
      R"({"name": "a", "method": "impq", "weight_bits": 4, "impq_weight_schedule": "0:400,3:200,4:150",
          "impq_target_bw_eff": 1.74})",
      "x.json");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->impq_weight_schedule, "0:400,3:200,4:150");
  EXPECT_DOUBLE_EQ(s->impq_target_bw_eff, 1.74);
  EXPECT_THAT(Error(R"({"name": "a", "method": "impq"})"), HasSubstr("impq starts from a quantized model"));
  EXPECT_THAT(Error(R"({"name": "a", "method": "impq", "weight_bits": 4, "impq_weight_schedule": "0:400,2"})"),
              AllOf(HasSubstr("\"impq_weight_schedule\""), HasSubstr("schedule entry '2'")));
  EXPECT_THAT(Error(R"({"name": "a", "method": "impq", "weight_bits": 4, "impq_act_schedule": "0:1"})"),
              HasSubstr("needs an act_quantizer"));
  EXPECT_THAT(Error(R"({"name": "a", "method": "impq", "weight_bits": 4, "impq_metric": "hessian"})"),
              HasSubstr("'hessian' is not one of paper, code"));
  EXPECT_THAT(Error(R"({"name": "a", "method": "hawq"})"), HasSubstr("'hawq' is not one of uniform, impq"));
}

TEST(SpecTest, EdmipsSettingsAreValidated) {
  const std::string ok = R"("method": "edmips", "weight_quantizer": "hwgq", "act_quantizer": "hwgq",
                            "granularity": "per_tensor", "quantize_first_and_last": false)";
  absl::StatusOr<ExperimentSpec> s = ParseSpec("{\"name\": \"a\", " + ok + R"(, "edmips_cd": 0.00015})", "x.json");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_DOUBLE_EQ(s->edmips_cd, 0.00015);
  EXPECT_THAT(Error(R"({"name": "a", "method": "edmips"})"), HasSubstr("edmips searches HWGQ"));
  EXPECT_THAT(Error("{\"name\": \"a\", " + ok + R"(, "edmips_weight_candidates": "1,5"})"),
              HasSubstr("candidate '5' is not a bit-width in 1..4"));
  EXPECT_THAT(Error("{\"name\": \"a\", " + ok + R"(, "edmips_discretize": "gumbel"})"),
              HasSubstr("'gumbel' is not one of argmax, sample"));
  EXPECT_THAT(Error(R"({"name": "a", "method": "edmips", "weight_quantizer": "hwgq", "act_quantizer": "hwgq"})"),
              HasSubstr("set granularity to per_tensor"));
  EXPECT_EQ(*ParseCandidates("2, 3,4"), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_FALSE(ParseCandidates("2,2").ok());
}

TEST(SpecTest, IdentityIgnoresTheDataLocationButNotTheCodeOrSettings) {
  ExperimentSpec a = *ParseSpec(R"({"name": "a"})", "x");
  ExperimentSpec b = a;
  b.data_dir = "/elsewhere";
  EXPECT_EQ(SpecHash(a, "v1"), SpecHash(b, "v1"));
  EXPECT_NE(SpecHash(a, "v1"), SpecHash(a, "v2"));
  b.epochs = 2;
  EXPECT_NE(SpecHash(a, "v1"), SpecHash(b, "v1"));
  EXPECT_EQ(SpecHash(a, "v1").size(), 16u);
  // Canonical JSON round-trips.
  EXPECT_EQ(SpecToJson(*ParseSpec(SpecToJson(a), "x")), SpecToJson(a));
}

}  // namespace
}  // namespace mpq::experiments
