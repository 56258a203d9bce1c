// registry.h — the explicit list of datasets the runner, tests and tools know.
//
//   absl::StatusOr<const DatasetEntry*> entry = FindDataset("cifar10");   // error lists valid names
//   absl::StatusOr<std::unique_ptr<Dataset>> train = (*entry)->load(dir, Split::kTrain);
//   Pipelines p = (*entry)->pipelines(/*image_size=*/0);
//
// Adding a dataset = one row in registry.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "datasets/dataset.h"
#include "datasets/transforms.h"

namespace mpq::data {

struct DatasetEntry {
  const char* name;         // "fashion_mnist", "cifar10", "imagenet", "synthetic"
  const char* default_dir;  // used when no directory is given; "" = the user must give one
  const char* how_to_get;   // printed when the data is missing
  absl::StatusOr<std::unique_ptr<Dataset>> (*load)(const std::string& dir, Split split);
  // Standard train/eval pipelines; image_size 0 = the dataset's native size
  // (Fashion-MNIST accepts 32 to feed the CIFAR networks).
  Pipelines (*pipelines)(int64_t image_size);
  // The image sizes those pipelines produce for training and evaluation alike (specs
  // are checked against them): Fashion-MNIST pads its 28x28 images up to image_size,
  // CIFAR-10's are 32x32, ImageNet's are resized to any size.
  int64_t min_image_size;
  int64_t max_image_size;  // 0 = no maximum
};

absl::Span<const DatasetEntry> Datasets();
absl::StatusOr<const DatasetEntry*> FindDataset(absl::string_view name);

}  // namespace mpq::data
