// State files: module archives and JSON state round trip; a damaged archive, a state
// file with a wrongly typed or missing field, or a different network is an error that
// names the file (and the field), never an abort.
#include "lib/train/state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>
#include <torch/serialize/input-archive.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "lib/runtime/atomic_file.h"

namespace mpq::train {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

std::string TempPath(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  return std::string(base ? base : "/tmp") + "/" + name;
}

TEST(StateTest, ModulesRoundTripAndDamageOrAnotherNetworkIsNamed) {
  const std::string path = TempPath("linear.pt");
  torch::nn::Linear a(4, 3), b(4, 3), other(5, 3);
  ASSERT_TRUE(SaveModule(*a, path).ok());
  ASSERT_TRUE(LoadModule(*b, path).ok());
  EXPECT_TRUE(b->weight.equal(a->weight));

  const absl::Status wrong = LoadModule(*other, path);
  EXPECT_EQ(wrong.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(wrong.message(), HasSubstr(path + " into the model: weight has shape [3, 4] there, [3, 5] in the model"));

  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.write("xxxxxxxxxx", 10);
  }
  const absl::Status damaged = LoadModule(*b, path);
  EXPECT_EQ(damaged.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(damaged.message(), HasSubstr(path + " fails its checksum"));
}

// Archives are read onto the module's device, whatever device wrote them. The only
// other device a CPU-only LibTorch has is "meta" (shapes without storage): a module
// there loads a CPU-written archive onto meta, and an archive read onto another device
// than the module's is refused.
struct TwoTensors : torch::nn::Module {  // a Linear's parameters, made on a given device
  explicit TwoTensors(c10::Device device) {
    weight = register_parameter("weight", at::randn({3, 4}).to(device));
    bias = register_parameter("bias", at::randn({3}).to(device));
  }
  at::Tensor weight, bias;
};

TEST(StateTest, ArchivesAreReadOntoTheModulesDevice) {
  const std::string path = TempPath("device.pt");
  TwoTensors a(c10::kCPU), on_meta(c10::kMeta), on_cpu(c10::kCPU);
  ASSERT_TRUE(SaveModule(a, path).ok());
  ASSERT_EQ(on_meta.weight.device(), c10::Device(c10::kMeta));
  const absl::Status loaded = LoadModule(on_meta, path);
  ASSERT_TRUE(loaded.ok()) << loaded;
  EXPECT_EQ(on_meta.weight.device(), c10::Device(c10::kMeta));
  EXPECT_EQ(on_meta.bias.device(), c10::Device(c10::kMeta));

  torch::serialize::InputArchive archive;
  ASSERT_TRUE(LoadArchive(archive, path, c10::Device(c10::kCPU)).ok());
  const absl::Status moved = LoadModuleFrom(on_meta, archive, path);
  EXPECT_EQ(moved.code(), absl::StatusCode::kDataLoss);
  // Between meta and CPU LibTorch's own set_data refuses; between a GPU and the CPU it
  // would move the tensor, and LoadModuleFrom's device check refuses ("weight was read
  // onto cpu, the model is on cuda:0"). Either way: DataLoss naming the file.
  EXPECT_THAT(std::string(moved.message()), HasSubstr("cannot load " + path + " into the model"));

  ASSERT_TRUE(LoadModule(on_cpu, path).ok());
  EXPECT_TRUE(on_cpu.weight.equal(a.weight));
  EXPECT_TRUE(on_cpu.bias.equal(a.bias));
}

TEST(StateTest, JsonStateIsCheckedFieldByField) {
  const std::string path = TempPath("state.json");
  const Json like = {{"done", -1}, {"base_val_top1", 0.0}, {"stopped", false}, {"reason", ""}};
  ASSERT_TRUE(WriteJsonFile(path, {{"done", 2}, {"base_val_top1", 91}, {"stopped", true}, {"reason", "r"},
                                   {"extra", 1}})
                  .ok());
  absl::StatusOr<Json> ok = ReadJsonState(path, like);
  ASSERT_TRUE(ok.ok()) << ok.status();  // an integer where a number is expected is fine
  EXPECT_EQ((*ok)["done"], 2);
  EXPECT_EQ((*ok)["extra"], 1);  // kept

  ASSERT_TRUE(WriteJsonFile(path, {{"done", "2"}, {"base_val_top1", 91.0}, {"stopped", true}, {"reason", ""}}).ok());
  absl::Status s = ReadJsonState(path, like).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(path + ": \"done\" is a string, expected an integer"));

  ASSERT_TRUE(WriteJsonFile(path, {{"done", 2.5}, {"base_val_top1", 1.0}, {"stopped", true}, {"reason", ""}}).ok());
  EXPECT_THAT(ReadJsonState(path, like).status().message(), HasSubstr("\"done\" is a number, expected an integer"));

  ASSERT_TRUE(WriteJsonFile(path, {{"done", 2}, {"stopped", true}, {"reason", ""}}).ok());
  EXPECT_THAT(ReadJsonState(path, like).status().message(), HasSubstr("\"base_val_top1\" is missing"));

  ASSERT_TRUE(WriteJsonFile(path, Json::array({1, 2})).ok());
  EXPECT_THAT(ReadJsonState(path, like).status().message(), HasSubstr("holds an array, not an object"));

  ASSERT_TRUE(runtime::WriteChecksummedFile(path, "{not json").ok());
  EXPECT_THAT(ReadJsonState(path, like).status().message(), HasSubstr("is not valid JSON"));
}

}  // namespace
}  // namespace mpq::train
