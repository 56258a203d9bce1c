// dataset.h — the one dataset interface that training and evaluation read from.
//
// A Dataset is an indexed collection of labelled 8-bit images (see image.h). Readers
// (fashion_mnist.h, cifar10.h, imagenet.h, synthetic.h) return one per split; a
// DataLoader (loader.h) turns index lists into normalized float NCHW batches with
// int64 labels. The validation split is carved out of the training set by
// SplitTrainValidation: model selection never looks at the test set.
//
//   absl::StatusOr<std::unique_ptr<Dataset>> train = LoadFashionMnist(dir, Split::kTrain);
//   if (!train.ok()) return train.status();            // names the file and the problem
//   absl::StatusOr<TrainValidationSplit> split = SplitTrainValidation(**train, 0.1, /*seed=*/1);
//   DataLoader loader(**train, split->train, FashionMnistPipelines(32).train, options);
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "datasets/image.h"

namespace mpq::data {

// Which file set of a dataset to read. The validation split is not a file set: it is
// held out from kTrain by SplitTrainValidation.
enum class Split { kTrain, kTest };
const char* SplitName(Split split);

// Per-channel normalization applied after scaling bytes to [0, 1]: (v - mean) / std.
struct Normalization {
  std::vector<float> mean;
  std::vector<float> std;
};

// DatasetInfo: what a model needs to know to consume a dataset.
struct DatasetInfo {
  std::string name;            // registry name, e.g. "fashion_mnist"
  std::string source;          // where it was read from (directory), for run records
  int64_t num_classes = 0;
  int64_t channels = 0;
  // Stored image size; 0 when images vary in size (ImageNet).
  int64_t height = 0;
  int64_t width = 0;
  Normalization normalization;
  // The files this split was read from (empty for generated data), for the run
  // identity's dataset fingerprint: read in full and digested, or, when
  // `fingerprint_by_listing` (image folders: a million JPEGs), named with their sizes.
  // Image folders give theirs through Dataset::source_files() instead.
  std::vector<std::string> files;
  bool fingerprint_by_listing = false;
};

// Dataset: random access to labelled images. Implementations are immutable after
// construction, so Read() may be called from several loader threads at once.
class Dataset {
 public:
  virtual ~Dataset() = default;

  virtual const DatasetInfo& info() const = 0;
  virtual int64_t size() const = 0;
  // Label of example `index` without decoding it; in [0, info().num_classes).
  virtual int64_t label(int64_t index) const = 0;
  // Decodes example `index` into `image`. `min_shorter_side` is a hint: a reader that
  // can decode at reduced resolution (JPEG DCT scaling) may return an image whose
  // shorter side is at least that; 0 asks for full resolution. Errors name the file.
  virtual absl::Status Read(int64_t index, Image* image, int64_t min_shorter_side = 0) const = 0;
  // The files behind the examples (see DatasetInfo::files).
  virtual const std::vector<std::string>& source_files() const { return info().files; }
};

// InMemoryDataset: all images of one shape held as one contiguous uint8 NCHW block
// (Fashion-MNIST, CIFAR-10 and synthetic data are small enough).
class InMemoryDataset final : public Dataset {
 public:
  // `pixels` holds labels.size() images of info.channels x info.height x info.width.
  // Create() checks sizes and label ranges and returns an error naming the problem.
  static absl::StatusOr<std::unique_ptr<InMemoryDataset>> Create(DatasetInfo info,
                                                                  std::vector<uint8_t> pixels,
                                                                  std::vector<uint8_t> labels);

  const DatasetInfo& info() const override { return info_; }
  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  int64_t label(int64_t index) const override { return labels_[index]; }
  absl::Status Read(int64_t index, Image* image, int64_t min_shorter_side = 0) const override;

  // Raw access, e.g. for statistics: image `index` starts at pixels() + index * image_bytes().
  const uint8_t* pixels() const { return pixels_.data(); }
  int64_t image_bytes() const { return info_.channels * info_.height * info_.width; }

 private:
  InMemoryDataset(DatasetInfo info, std::vector<uint8_t> pixels, std::vector<uint8_t> labels)
      : info_(std::move(info)), pixels_(std::move(pixels)), labels_(std::move(labels)) {}

  DatasetInfo info_;
  std::vector<uint8_t> pixels_;
  std::vector<uint8_t> labels_;
};

// The training indices of a dataset split into train and validation.
struct TrainValidationSplit {
  std::vector<int64_t> train;       // sorted
  std::vector<int64_t> validation;  // sorted
};

// Holds out round(validation_fraction * n_c) examples of every class c (stratified),
// chosen by a seeded shuffle; the same (dataset, fraction, seed) always gives the same
// split. validation_fraction must be in [0, 1); 0 gives an empty validation set.
absl::StatusOr<TrainValidationSplit> SplitTrainValidation(const Dataset& train,
                                                          double validation_fraction,
                                                          uint64_t seed);

// Number of examples per class over `indices` (all examples when empty).
std::vector<int64_t> ClassHistogram(const Dataset& dataset, const std::vector<int64_t>& indices = {});

}  // namespace mpq::data
