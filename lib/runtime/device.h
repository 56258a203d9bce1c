// device.h — where a run computes: the `device` setting of a spec (and the runner's
// --device flag), resolved against the LibTorch that is linked and the GPUs visible.
//
//   absl::StatusOr<DeviceSetting> s = ParseDeviceSetting("cuda:1");  // torch-free syntax check
//   absl::StatusOr<c10::Device> d = ResolveDevice(*s);                 // error: no such GPU here
//   model->to(*d);                      // the trainer and allocators follow the model's device
//   c10::Device where = DeviceOf(*model);
//
// Settings: "auto" (the default: the first CUDA device when this LibTorch has CUDA and
// one is visible, else the CPU), "cpu", "cuda" (= cuda:0), "cuda:N". Asking for CUDA
// where there is none is an error that says why (a CPU-only LibTorch, or fewer devices
// visible), never a silent CPU run.
#pragma once

#include <c10/core/Device.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace torch::nn {
class Module;
}

namespace mpq::runtime {

struct DeviceSetting {
  enum class Kind { kAuto, kCpu, kCuda };
  Kind kind = Kind::kAuto;
  int index = 0;  // kCuda: the device ordinal
};

// "auto", "cpu", "cuda" or "cuda:N" (N a non-negative integer); anything else is
// InvalidArgument quoting the text and listing the valid forms.
absl::StatusOr<DeviceSetting> ParseDeviceSetting(absl::string_view text);
// The canonical spelling: "auto", "cpu", "cuda:N".
std::string Name(const DeviceSetting& setting);

// The device for `setting` when `cuda_devices` CUDA devices are usable (0 with a
// CPU-only LibTorch). FailedPrecondition when CUDA is asked for and there is none, or
// the ordinal is not below cuda_devices; the message names the setting and what exists.
absl::StatusOr<c10::Device> ResolveDevice(const DeviceSetting& setting, int cuda_devices);
// The same against this process: torch::cuda::device_count() when LibTorch has CUDA.
absl::StatusOr<c10::Device> ResolveDevice(const DeviceSetting& setting);
// CUDA devices this process can use: 0 with a CPU-only LibTorch or no GPU visible.
int CudaDeviceCount();

// The device of the module's first parameter (else buffer); the CPU when it has none.
c10::Device DeviceOf(const torch::nn::Module& module);

// For the runs table's device column: "cpu (2 threads, <CPU model>)" or
// "cuda:0 (of 4 CUDA devices; host <CPU model>)".
std::string DescribeDevice(const c10::Device& device, int threads, int cuda_devices);

}  // namespace mpq::runtime
