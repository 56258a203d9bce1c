#include "datasets/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "datasets/random.h"

namespace mpq::data {

const char* SplitName(Split split) { return split == Split::kTrain ? "train" : "test"; }

absl::StatusOr<std::unique_ptr<InMemoryDataset>> InMemoryDataset::Create(DatasetInfo info,
                                                                         std::vector<uint8_t> pixels,
                                                                         std::vector<uint8_t> labels) {
  if (info.channels <= 0 || info.height <= 0 || info.width <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(info.name, ": image shape ", info.channels, "x",
                                                   info.height, "x", info.width,
                                                   " must be positive in every dimension"));
  }
  if (info.num_classes <= 0 || info.num_classes > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat(info.name, ": num_classes ", info.num_classes, " must be in [1, 256]"));
  }
  if (labels.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(info.name, " (", info.source, "): no examples"));
  }
  const size_t image_bytes = static_cast<size_t>(info.channels * info.height * info.width);
  if (pixels.size() != labels.size() * image_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        info.name, " (", info.source, "): ", pixels.size(), " pixel bytes for ", labels.size(),
        " labels; expected ", labels.size() * image_bytes, " (", image_bytes, " per image)"));
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= info.num_classes) {
      return absl::InvalidArgumentError(absl::StrCat(info.name, " (", info.source, "): label ",
                                                     labels[i], " of example ", i,
                                                     " is out of range [0, ", info.num_classes, ")"));
    }
  }
  if (info.normalization.mean.size() != static_cast<size_t>(info.channels) ||
      info.normalization.std.size() != static_cast<size_t>(info.channels)) {
    return absl::InvalidArgumentError(absl::StrCat(info.name, ": normalization needs ", info.channels,
                                                   " means and stds"));
  }
  return std::unique_ptr<InMemoryDataset>(
      new InMemoryDataset(std::move(info), std::move(pixels), std::move(labels)));
}

absl::Status InMemoryDataset::Read(int64_t index, Image* image, int64_t /*min_shorter_side*/) const {
  if (index < 0 || index >= size()) {
    return absl::OutOfRangeError(
        absl::StrCat(info_.name, ": example ", index, " out of range [0, ", size(), ")"));
  }
  if (image->channels != info_.channels || image->height != info_.height || image->width != info_.width) {
    *image = Image(info_.channels, info_.height, info_.width);
  }
  std::memcpy(image->pixels.data(), pixels_.data() + index * image_bytes(), image_bytes());
  return absl::OkStatus();
}

absl::StatusOr<TrainValidationSplit> SplitTrainValidation(const Dataset& train, double validation_fraction,
                                                          uint64_t seed) {
  if (!(validation_fraction >= 0.0 && validation_fraction < 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("validation_fraction ", validation_fraction,
                                                   " must be in [0, 1)"));
  }
  const int64_t num_classes = train.info().num_classes;
  std::vector<std::vector<int64_t>> by_class(num_classes);
  for (int64_t i = 0; i < train.size(); ++i) by_class[train.label(i)].push_back(i);

  TrainValidationSplit split;
  Rng rng(MixSeed(seed, 0x76616c6964ULL /* "valid" */));
  for (std::vector<int64_t>& members : by_class) {
    rng.Shuffle(members);
    const auto held_out = static_cast<size_t>(std::llround(validation_fraction * members.size()));
    split.validation.insert(split.validation.end(), members.begin(), members.begin() + held_out);
    split.train.insert(split.train.end(), members.begin() + held_out, members.end());
  }
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.validation.begin(), split.validation.end());
  if (split.train.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(train.info().name, ": validation_fraction ",
                                                   validation_fraction, " leaves no training examples"));
  }
  return split;
}

std::vector<int64_t> ClassHistogram(const Dataset& dataset, const std::vector<int64_t>& indices) {
  std::vector<int64_t> counts(dataset.info().num_classes, 0);
  if (indices.empty()) {
    for (int64_t i = 0; i < dataset.size(); ++i) ++counts[dataset.label(i)];
  } else {
    for (int64_t i : indices) ++counts[dataset.label(i)];
  }
  return counts;
}

}  // namespace mpq::data
