// fashion_mnist.h — Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017) from IDX files.
//
// The default dataset of every mpqbench target: Debian's `dataset-fashion-mnist`
// installs the four gzip IDX files in kFashionMnistDefaultDir. 60000 train / 10000
// test grayscale 28x28 images, 10 classes (6000 / 1000 per class).
//
//   absl::StatusOr<std::unique_ptr<InMemoryDataset>> test =
//       LoadFashionMnist(kFashionMnistDefaultDir, Split::kTest);
//
// Files: {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz; an uncompressed file of the
// same name without ".gz" is accepted too. Errors name the file and what was expected:
// missing file, gzip corruption, bad magic, dimension or count mismatch, truncated or
// over-long data, label out of range.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "datasets/dataset.h"

namespace mpq::data {

inline constexpr char kFashionMnistDefaultDir[] = "/usr/share/datasets/fashion-mnist";

// Per-channel normalization over the 60000 training images (tested against the data).
inline constexpr float kFashionMnistMean = 0.2860f;
inline constexpr float kFashionMnistStd = 0.3530f;

absl::StatusOr<std::unique_ptr<InMemoryDataset>> LoadFashionMnist(const std::string& dir, Split split);

// The contents of one IDX file of unsigned bytes (type code 0x08).
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};

// Reads an IDX file (gzip-compressed or plain) whose element type is unsigned byte
// and whose rank is `expected_rank`; the data length must equal the product of dims.
absl::StatusOr<IdxArray> ReadIdxUint8(const std::string& path, int expected_rank);

}  // namespace mpq::data
