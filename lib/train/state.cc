#include "lib/train/state.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/runtime/atomic_file.h"
#include "lib/runtime/device.h"

namespace mpq::train {

std::vector<at::Tensor> CopyState(const torch::nn::Module& module) {
  std::vector<at::Tensor> state;
  for (const at::Tensor& p : module.parameters()) state.push_back(p.detach().clone());
  for (const at::Tensor& b : module.buffers()) state.push_back(b.detach().clone());
  return state;
}

void RestoreState(torch::nn::Module& module, const std::vector<at::Tensor>& state) {
  at::NoGradGuard no_grad;
  size_t i = 0;
  for (const at::Tensor& p : module.parameters()) p.copy_(state.at(i++));
  for (const at::Tensor& b : module.buffers()) b.copy_(state.at(i++));
}

absl::Status SaveArchive(torch::serialize::OutputArchive& archive, const std::string& path) {
  // Serialized in memory first: LibTorch's file writer throws from its destructor when a
  // write fails (a full disk), which no caller could catch.
  std::ostringstream bytes;
  try {
    archive.save_to(bytes);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("cannot serialize ", path, ": ", e.what()));
  }
  return runtime::WriteChecksummedFile(path, bytes.str());
}

absl::Status LoadArchive(torch::serialize::InputArchive& archive, const std::string& path, c10::Device device) {
  absl::StatusOr<std::string> bytes = runtime::ReadChecksummedFile(path);
  if (!bytes.ok()) return bytes.status();
  try {
    std::istringstream in(*bytes);
    archive.load_from(in, device);  // map_location: the tensors as they were written, on `device`
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("cannot load ", path,
                                            " (delete it, or the run's checkpoint directory, to start over): ",
                                            e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::Status SaveModule(const torch::nn::Module& module, const std::string& path) {
  torch::serialize::OutputArchive archive;
  try {
    module.save(archive);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("cannot serialize the model for ", path, ": ", e.what_without_backtrace()));
  }
  return SaveArchive(archive, path);
}

absl::Status LoadModuleFrom(torch::nn::Module& module, torch::serialize::InputArchive& archive,
                            const std::string& path) {
  // LibTorch's load replaces each tensor (shape included) with the archive's: a
  // checkpoint of another network would load "successfully". Shapes are compared.
  // Where the archive's device differs from a tensor's, LibTorch moves the tensor there
  // (set_data): devices are compared too.
  std::vector<std::pair<std::vector<int64_t>, c10::Device>> shapes;
  for (const auto& p : module.named_parameters()) shapes.emplace_back(p.value().sizes().vec(), p.value().device());
  for (const auto& b : module.named_buffers()) shapes.emplace_back(b.value().sizes().vec(), b.value().device());
  const std::string fix = " (a different network or build? delete it, or the run's checkpoint directory, to start over)";
  try {
    module.load(archive);
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("cannot load ", path, " into the model", fix, ": ", e.what_without_backtrace()));
  }
  size_t i = 0;
  auto check = [&](const std::string& name, const at::Tensor& t) -> absl::Status {
    const auto& [want, device] = shapes[i++];
    if (t.device() != device) {
      return absl::DataLossError(absl::StrCat("cannot load ", path, " into the model: ", name, " was read onto ",
                                              t.device().str(), ", the model is on ", device.str(),
                                              " (load the archive onto the model's device)"));
    }
    if (t.sizes().vec() == want) return absl::OkStatus();
    return absl::DataLossError(absl::StrCat("cannot load ", path, " into the model: ", name, " has shape [",
                                            absl::StrJoin(t.sizes().vec(), ", "), "] there, [",
                                            absl::StrJoin(want, ", "), "] in the model", fix));
  };
  for (const auto& p : module.named_parameters()) {
    if (absl::Status s = check(p.key(), p.value()); !s.ok()) return s;
  }
  for (const auto& b : module.named_buffers()) {
    if (absl::Status s = check(b.key(), b.value()); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status LoadModule(torch::nn::Module& module, const std::string& path) {
  torch::serialize::InputArchive archive;
  if (absl::Status s = LoadArchive(archive, path, runtime::DeviceOf(module)); !s.ok()) return s;
  return LoadModuleFrom(module, archive, path);
}

absl::Status WriteJsonFile(const std::string& path, const nlohmann::json& value) {
  return runtime::WriteChecksummedFile(path, value.dump(2) + "\n");
}

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path) {
  absl::StatusOr<std::string> text = runtime::ReadChecksummedFile(path);
  if (!text.ok()) return text.status();
  try {
    return nlohmann::json::parse(*text);
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat(path, " is not valid JSON (delete it to restart): ", e.what()));
  }
}

namespace {

const char* Kind(const nlohmann::json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

// An integer is accepted where a number is expected, not the other way round.
bool SameKind(const nlohmann::json& value, const nlohmann::json& like) {
  if (like.is_number_integer()) return value.is_number_integer();
  if (like.is_number()) return value.is_number();
  return value.type() == like.type();
}

}  // namespace

absl::StatusOr<nlohmann::json> ReadJsonState(const std::string& path, const nlohmann::json& like) {
  absl::StatusOr<nlohmann::json> j = ReadJsonFile(path);
  if (!j.ok()) return j.status();
  const std::string fix = " (damaged or written by another build: delete the run's state directory to start over)";
  if (!j->is_object()) return absl::DataLossError(absl::StrCat(path, " holds ", Kind(*j), ", not an object", fix));
  for (const auto& [key, expected] : like.items()) {
    const auto it = j->find(key);
    if (it == j->end()) return absl::DataLossError(absl::StrCat(path, ": \"", key, "\" is missing", fix));
    if (!SameKind(*it, expected)) {
      return absl::DataLossError(
          absl::StrCat(path, ": \"", key, "\" is ", Kind(*it), ", expected ", Kind(expected), fix));
    }
  }
  return j;
}

}  // namespace mpq::train
