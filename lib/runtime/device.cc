#include "lib/runtime/device.h"

#include <torch/cuda.h>
#include <torch/nn/module.h>

#include "absl/strings/strip.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lib/runtime/cpu_info.h"

namespace mpq::runtime {

absl::StatusOr<DeviceSetting> ParseDeviceSetting(absl::string_view text) {
  const std::string original(text);
  DeviceSetting s;
  if (text == "auto") return s;
  if (text == "cpu") {
    s.kind = DeviceSetting::Kind::kCpu;
    return s;
  }
  if (text == "cuda") {
    s.kind = DeviceSetting::Kind::kCuda;
    return s;
  }
  int index = -1;
  if (absl::ConsumePrefix(&text, "cuda:") && !text.empty() && text[0] != '+' && text[0] != '-' &&
      absl::SimpleAtoi(text, &index) && index >= 0 && index < 1024) {
    s.kind = DeviceSetting::Kind::kCuda;
    s.index = index;
    return s;
  }
  return absl::InvalidArgumentError(absl::StrCat("device \"", original,
                                                 "\" is not a device; expected auto, cpu, cuda or cuda:N"));
}

std::string Name(const DeviceSetting& setting) {
  switch (setting.kind) {
    case DeviceSetting::Kind::kAuto:
      return "auto";
    case DeviceSetting::Kind::kCpu:
      return "cpu";
    case DeviceSetting::Kind::kCuda:
      return absl::StrCat("cuda:", setting.index);
  }
  return "auto";
}

absl::StatusOr<c10::Device> ResolveDevice(const DeviceSetting& setting, int cuda_devices) {
  switch (setting.kind) {
    case DeviceSetting::Kind::kAuto:
      return cuda_devices > 0 ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
    case DeviceSetting::Kind::kCpu:
      return c10::Device(c10::kCPU);
    case DeviceSetting::Kind::kCuda:
      if (cuda_devices == 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            "device ", Name(setting),
            " was asked for, but no CUDA device is usable here (the linked LibTorch was built without CUDA, or no "
            "GPU is visible: see nvidia-smi and CUDA_VISIBLE_DEVICES); build against a CUDA LibTorch on a GPU "
            "machine (tools/gpu/README.md), or set device cpu"));
      }
      if (setting.index >= cuda_devices) {
        return absl::FailedPreconditionError(absl::StrCat("device ", Name(setting), " was asked for, but only ",
                                                          cuda_devices, " CUDA device", cuda_devices == 1 ? "" : "s",
                                                          " (cuda:0..cuda:", cuda_devices - 1, ") are visible"));
      }
      return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(setting.index));
  }
  return c10::Device(c10::kCPU);
}

int CudaDeviceCount() { return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0; }

absl::StatusOr<c10::Device> ResolveDevice(const DeviceSetting& setting) {
  return ResolveDevice(setting, CudaDeviceCount());
}

c10::Device DeviceOf(const torch::nn::Module& module) {
  for (const at::Tensor& p : module.parameters()) return p.device();
  for (const at::Tensor& b : module.buffers()) return b.device();
  return c10::Device(c10::kCPU);
}

std::string DescribeDevice(const c10::Device& device, int threads, int cuda_devices) {
  if (device.is_cuda()) {
    return absl::StrCat("cuda:", device.has_index() ? device.index() : 0, " (of ", cuda_devices, " CUDA device",
                        cuda_devices == 1 ? "" : "s", "; host ", CpuModel(), ")");
  }
  return absl::StrCat("cpu (", threads, " threads, ", CpuModel(), ")");
}

}  // namespace mpq::runtime
