// The device setting: its syntax, its resolution against the CUDA devices there are
// (a CPU-only LibTorch has none: asking for CUDA is an error that says so, never a
// silent CPU run), and the device a module lives on.
#include "lib/runtime/device.h"

#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>

#include <string>

namespace mpq::runtime {
namespace {

using Kind = DeviceSetting::Kind;

TEST(DeviceTest, ParsesTheFourForms) {
  EXPECT_EQ(ParseDeviceSetting("auto")->kind, Kind::kAuto);
  EXPECT_EQ(ParseDeviceSetting("cpu")->kind, Kind::kCpu);
  const absl::StatusOr<DeviceSetting> cuda = ParseDeviceSetting("cuda");
  ASSERT_TRUE(cuda.ok());
  EXPECT_EQ(cuda->kind, Kind::kCuda);
  EXPECT_EQ(cuda->index, 0);
  const absl::StatusOr<DeviceSetting> third = ParseDeviceSetting("cuda:3");
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->index, 3);
  EXPECT_EQ(Name(*third), "cuda:3");
  EXPECT_EQ(Name(*cuda), "cuda:0");
  EXPECT_EQ(Name(*ParseDeviceSetting("auto")), "auto");
}

TEST(DeviceTest, RejectsAnythingElseNamingIt) {
  for (const char* bad : {"", "gpu", "CUDA", "cuda:", "cuda:-1", "cuda:+1", "cuda:x", "cuda:1.5", "cpu:0", " cpu"}) {
    const absl::StatusOr<DeviceSetting> s = ParseDeviceSetting(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find(std::string("\"") + bad + "\""), std::string::npos) << s.status();
    EXPECT_NE(s.status().message().find("auto, cpu, cuda or cuda:N"), std::string::npos) << s.status();
  }
}

TEST(DeviceTest, AutoIsTheFirstGpuWhenThereIsOneElseTheCpu) {
  const DeviceSetting auto_setting;
  EXPECT_EQ(*ResolveDevice(auto_setting, 0), c10::Device(c10::kCPU));
  EXPECT_EQ(*ResolveDevice(auto_setting, 2), c10::Device(c10::kCUDA, 0));
  EXPECT_EQ(*ResolveDevice(*ParseDeviceSetting("cpu"), 2), c10::Device(c10::kCPU));
  EXPECT_EQ(*ResolveDevice(*ParseDeviceSetting("cuda:1"), 2), c10::Device(c10::kCUDA, 1));
}

TEST(DeviceTest, CudaWhereThereIsNoneIsAClearError) {
  const absl::StatusOr<c10::Device> none = ResolveDevice(*ParseDeviceSetting("cuda"), 0);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(none.status().message().find("device cuda:0 was asked for, but no CUDA device is usable"),
            std::string::npos)
      << none.status();
  EXPECT_NE(none.status().message().find("set device cpu"), std::string::npos) << none.status();
  const absl::StatusOr<c10::Device> beyond = ResolveDevice(*ParseDeviceSetting("cuda:2"), 2);
  ASSERT_FALSE(beyond.ok());
  EXPECT_NE(beyond.status().message().find("only 2 CUDA devices (cuda:0..cuda:1) are visible"), std::string::npos)
      << beyond.status();
}

TEST(DeviceTest, ThisProcessResolvesConsistentlyWithItsDeviceCount) {
  // On a CPU-only LibTorch (CI) there is no CUDA device: auto is the CPU and cuda fails.
  const int n = CudaDeviceCount();
  EXPECT_EQ(*ResolveDevice(DeviceSetting{}), n > 0 ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU));
  EXPECT_EQ(ResolveDevice(*ParseDeviceSetting("cuda")).ok(), n > 0);
}

TEST(DeviceTest, AModuleIsWhereItsParametersAre) {
  torch::nn::Linear linear(3, 2);
  EXPECT_EQ(DeviceOf(*linear), c10::Device(c10::kCPU));
  torch::nn::Module empty;
  EXPECT_EQ(DeviceOf(empty), c10::Device(c10::kCPU));
}

TEST(DeviceTest, DescribesTheDeviceForTheRunsTable) {
  const std::string cpu = DescribeDevice(c10::Device(c10::kCPU), 2, 0);
  EXPECT_EQ(cpu.rfind("cpu (2 threads, ", 0), 0u) << cpu;
  const std::string gpu = DescribeDevice(c10::Device(c10::kCUDA, 1), 2, 4);
  EXPECT_EQ(gpu.rfind("cuda:1 (of 4 CUDA devices; host ", 0), 0u) << gpu;
}

}  // namespace
}  // namespace mpq::runtime
