// DistEnvFrom: torch.distributed's and Slurm's variables, and the errors that name them.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "lib/dist/data_parallel.h"

namespace mpq::dist {
namespace {

absl::StatusOr<DistEnv> From(const std::map<std::string, std::string>& vars) {
  return DistEnvFrom([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(DistEnvTest, NothingSetIsOneProcess) {
  absl::StatusOr<DistEnv> e = From({});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->rank, 0);
  EXPECT_EQ(e->world_size, 1);
  EXPECT_EQ(e->source, "default");
}

TEST(DistEnvTest, TorchVariables) {
  absl::StatusOr<DistEnv> e =
      From({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "1234"},
            {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "9"}});  // torch's win over Slurm's
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->rank, 3);
  EXPECT_EQ(e->world_size, 4);
  EXPECT_EQ(e->master_addr, "node7");
  EXPECT_EQ(e->master_port, 1234);
  EXPECT_EQ(e->source, "torch");
}

TEST(DistEnvTest, SlurmVariables) {
  absl::StatusOr<DistEnv> e = From({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"}, {"SLURM_LAUNCH_NODE_IPADDR", "10.0.0.5"}});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->rank, 1);
  EXPECT_EQ(e->world_size, 2);
  EXPECT_EQ(e->master_addr, "10.0.0.5");
  EXPECT_EQ(e->master_port, 29500);
  EXPECT_EQ(e->source, "slurm");
}

TEST(DistEnvTest, ErrorsNameTheVariable) {
  auto message = [](const std::map<std::string, std::string>& v) {
    absl::StatusOr<DistEnv> e = From(v);
    EXPECT_FALSE(e.ok());
    return e.ok() ? std::string() : std::string(e.status().message());
  };
  EXPECT_NE(message({{"RANK", "0"}}).find("WORLD_SIZE is not"), std::string::npos);
  EXPECT_NE(message({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}).find("RANK='2'"), std::string::npos);
  EXPECT_NE(message({{"RANK", "0"}, {"WORLD_SIZE", "two"}}).find("WORLD_SIZE='two'"), std::string::npos);
  EXPECT_NE(message({{"RANK", "0"}, {"WORLD_SIZE", "2"}}).find("MASTER_ADDR is not set"), std::string::npos);
  EXPECT_NE(message({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}})
                .find("MASTER_PORT='70000'"),
            std::string::npos);
}

}  // namespace
}  // namespace mpq::dist
