// imagenet.h — ImageNet (ILSVRC-2012) as a folder of JPEG files, from a user directory.
//
// Layout: <dir>/train/<wnid>/*.JPEG and <dir>/val/<wnid>/*.JPEG (the validation set
// sorted into class folders, as torchvision's ImageFolder expects). Classes are the
// sorted wnid folder names of train/; the test split (val/) must use only those, so
// label k means the same class in both. Files with extension .jpeg/.jpg (any case)
// are examples; other files are ignored. Scanning is done once, up front, and sorted,
// so indices are stable; decoding happens on Read(), on the loader's worker threads.
//
//   absl::StatusOr<std::unique_ptr<ImageFolderDataset>> val = LoadImageNet(dir, Split::kTest);
//
// Errors: a missing root, train/ or val/ directory; a class folder with no images;
// a val/ class that train/ does not have; an unreadable JPEG on Read() (the loader
// fails the epoch or skips and counts, see loader.h). Each message names the path.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "datasets/dataset.h"

namespace mpq::data {

// ImageFolderDataset: class-per-folder JPEG files, decoded on demand.
class ImageFolderDataset final : public Dataset {
 public:
  // Scans `split_dir`/<class>/ for the given classes (all subfolders when `classes`
  // is empty; they become the sorted class list).
  static absl::StatusOr<std::unique_ptr<ImageFolderDataset>> Scan(const std::string& name,
                                                                  const std::string& split_dir,
                                                                  std::vector<std::string> classes,
                                                                  Normalization normalization);

  const DatasetInfo& info() const override { return info_; }
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  int64_t label(int64_t index) const override { return labels_[index]; }
  absl::Status Read(int64_t index, Image* image, int64_t min_shorter_side = 0) const override;

  const std::vector<std::string>& classes() const { return classes_; }
  const std::string& path(int64_t index) const { return files_[index]; }
  const std::vector<std::string>& source_files() const override { return files_; }

 private:
  ImageFolderDataset() = default;

  DatasetInfo info_;
  std::vector<std::string> classes_;
  std::vector<std::string> files_;
  std::vector<int32_t> labels_;
};

// ImageNet train (<dir>/train) or test (<dir>/val); classes from <dir>/train.
absl::StatusOr<std::unique_ptr<ImageFolderDataset>> LoadImageNet(const std::string& dir, Split split);

inline constexpr char kImageNetHowToGet[] =
    "obtain ILSVRC-2012 (image-net.org), extract the training images to <dir>/train/<wnid>/*.JPEG and "
    "sort the validation images into <dir>/val/<wnid>/*.JPEG (e.g. with the widely used valprep.sh), "
    "then pass --data_dir=<dir>";

}  // namespace mpq::data
