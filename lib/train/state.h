// state.h — the resumable state files every trainer and allocator writes, in one
// place: a module's parameters and buffers (LibTorch archives) and JSON records, each
// serialized in memory, then written atomically with a CRC-32 trailer and fsync
// (lib/runtime/atomic_file.h), and read back with an error that names the file and
// what to do: a full disk, a torn or damaged file never becomes a crash or a silent resume.
//
//   absl::Status s = SaveModule(model, dir + "/point_3.pt");
//   absl::Status t = LoadModule(model, dir + "/point_3.pt");        // DataLoss names the file
//   absl::StatusOr<nlohmann::json> j = ReadJsonState(dir + "/state.json", defaults);
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace torch::nn {
class Module;
}
namespace torch::serialize {
class InputArchive;
class OutputArchive;
}

namespace mpq::train {

// A module's parameters and buffers, copied (detached), in module order; restored into
// the same module (or one built the same way).
std::vector<at::Tensor> CopyState(const torch::nn::Module& module);
void RestoreState(torch::nn::Module& module, const std::vector<at::Tensor>& state);

// Writes an archive to `path` (checksummed, atomic); LoadArchive checks and reads it,
// with every tensor placed on `device` whatever device wrote it (a GPU run's state
// resumes on a CPU machine and the reverse).
absl::Status SaveArchive(torch::serialize::OutputArchive& archive, const std::string& path);
absl::Status LoadArchive(torch::serialize::InputArchive& archive, const std::string& path,
                         c10::Device device = c10::Device(c10::kCPU));
absl::Status SaveModule(const torch::nn::Module& module, const std::string& path);
// The module must have the same parameters and buffers (names and shapes) as the one
// saved; otherwise DataLoss naming the file and the first differing tensor (the module
// is then unusable). The tensors are read onto the module's device (runtime::DeviceOf).
absl::Status LoadModule(torch::nn::Module& module, const std::string& path);
// The same from an archive already read (`path` names it in errors); the archive must
// have been read onto the module's device (LoadArchive's `device`), else DataLoss
// naming the tensor and both devices (LibTorch would silently move it).
absl::Status LoadModuleFrom(torch::nn::Module& module, torch::serialize::InputArchive& archive,
                            const std::string& path);

absl::Status WriteJsonFile(const std::string& path, const nlohmann::json& value);
// NotFound when `path` does not exist; DataLoss when it is damaged or not valid JSON.
absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path);
// ReadJsonFile for a state object: it must be an object holding every key of `like`
// with a value of the same kind (number, integer, string, boolean, array, object);
// DataLoss names the file, the key, what it holds and what was expected. Keys not in
// `like` are kept.
absl::StatusOr<nlohmann::json> ReadJsonState(const std::string& path, const nlohmann::json& like);

}  // namespace mpq::train
