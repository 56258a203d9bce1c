#include "datasets/imagenet.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "datasets/jpeg.h"

namespace mpq::data {
namespace {

bool IsJpegName(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return ext == ".jpeg" || ext == ".jpg";
}

absl::StatusOr<std::vector<uint8_t>> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  const std::streamsize size = in.tellg();
  in.seekg(0);
  std::vector<uint8_t> bytes(static_cast<size_t>(std::max<std::streamsize>(size, 0)));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size)) {
    return absl::DataLossError(absl::StrCat(path, ": read failed"));
  }
  return bytes;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ImageFolderDataset>> ImageFolderDataset::Scan(const std::string& name,
                                                                             const std::string& split_dir,
                                                                             std::vector<std::string> classes,
                                                                             Normalization normalization) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(split_dir, ec)) {
    return absl::NotFoundError(absl::StrCat(name, ": directory ", split_dir, " not found"));
  }
  std::vector<std::string> present;
  for (const fs::directory_entry& entry : fs::directory_iterator(split_dir, ec)) {
    if (entry.is_directory()) present.push_back(entry.path().filename().string());
  }
  if (ec) return absl::PermissionDeniedError(absl::StrCat(name, ": cannot list ", split_dir, ": ", ec.message()));
  std::sort(present.begin(), present.end());
  if (present.empty()) {
    return absl::NotFoundError(absl::StrCat(name, ": ", split_dir, " has no class folders (expected <wnid>/*.JPEG)"));
  }
  if (classes.empty()) {
    classes = present;
  } else {
    for (const std::string& c : present) {
      if (!std::binary_search(classes.begin(), classes.end(), c)) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": class folder ", (fs::path(split_dir) / c).string(),
                                                       " is not among the ", classes.size(),
                                                       " training classes"));
      }
    }
  }

  std::unique_ptr<ImageFolderDataset> ds(new ImageFolderDataset());
  for (int32_t label = 0; label < static_cast<int32_t>(classes.size()); ++label) {
    const fs::path class_dir = fs::path(split_dir) / classes[label];
    if (!fs::is_directory(class_dir, ec)) continue;  // a split may lack some classes (small val sets)
    std::vector<std::string> files;
    for (const fs::directory_entry& entry : fs::directory_iterator(class_dir, ec)) {
      if (entry.is_regular_file() && IsJpegName(entry.path())) files.push_back(entry.path().string());
    }
    if (files.empty()) {
      return absl::NotFoundError(absl::StrCat(name, ": class folder ", class_dir.string(),
                                              " has no .JPEG/.jpg files"));
    }
    std::sort(files.begin(), files.end());
    for (std::string& f : files) {
      ds->files_.push_back(std::move(f));
      ds->labels_.push_back(label);
    }
  }
  ds->classes_ = std::move(classes);
  ds->info_.name = name;
  ds->info_.source = split_dir;
  ds->info_.num_classes = static_cast<int64_t>(ds->classes_.size());
  ds->info_.channels = 3;
  ds->info_.normalization = std::move(normalization);
  ds->info_.fingerprint_by_listing = true;
  return ds;
}

absl::Status ImageFolderDataset::Read(int64_t index, Image* image, int64_t min_shorter_side) const {
  if (index < 0 || index >= size()) {
    return absl::OutOfRangeError(absl::StrCat(info_.name, ": example ", index, " out of range [0, ", size(), ")"));
  }
  absl::StatusOr<std::vector<uint8_t>> bytes = ReadFile(files_[index]);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<Image> decoded = DecodeJpeg(*bytes, files_[index], min_shorter_side);
  if (!decoded.ok()) return decoded.status();
  *image = std::move(*decoded);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ImageFolderDataset>> LoadImageNet(const std::string& dir, Split split) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const Normalization normalization{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
  for (const char* sub : {"train", "val"}) {
    if (!fs::is_directory(fs::path(dir) / sub, ec)) {
      return absl::NotFoundError(absl::StrCat("imagenet: ", (fs::path(dir) / sub).string(), " not found; ",
                                              kImageNetHowToGet));
    }
  }
  const std::string train_dir = (fs::path(dir) / "train").string();
  if (split == Split::kTrain) return ImageFolderDataset::Scan("imagenet", train_dir, {}, normalization);
  // Class list from train/ without listing its files.
  std::vector<std::string> classes;
  for (const fs::directory_entry& entry : fs::directory_iterator(train_dir, ec)) {
    if (entry.is_directory()) classes.push_back(entry.path().filename().string());
  }
  std::sort(classes.begin(), classes.end());
  if (classes.empty()) {
    return absl::NotFoundError(absl::StrCat("imagenet: ", train_dir, " has no class folders; ", kImageNetHowToGet));
  }
  return ImageFolderDataset::Scan("imagenet", (fs::path(dir) / "val").string(), std::move(classes), normalization);
}

}  // namespace mpq::data
