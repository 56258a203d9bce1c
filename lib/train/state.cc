#include "lib/train/state.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "lib/runtime/atomic_file.h"

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
  return runtime::ReplaceFileAtomically(path, [&](const std::string& tmp) {
    try {
      archive.save_to(tmp);
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", e.what_without_backtrace()));
    }
    return absl::OkStatus();
  });
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

absl::Status LoadModule(torch::nn::Module& module, const std::string& path) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    module.load(archive);
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("cannot load ", path,
                                            " (delete it, or the run's checkpoint directory, to start over): ",
                                            e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::Status WriteJsonFile(const std::string& path, const nlohmann::json& value) {
  return runtime::WriteFileAtomically(path, value.dump(2) + "\n");
}

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat(path, " is not valid JSON (delete it to restart): ", e.what()));
  }
}

}  // namespace mpq::train
