#include "datasets/cifar10.h"

#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace mpq::data {

absl::StatusOr<std::unique_ptr<InMemoryDataset>> LoadCifar10(const std::string& dir, Split split) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path root(dir);
  if (!fs::is_directory(root, ec)) {
    return absl::NotFoundError(absl::StrCat("cifar10: directory ", dir, " not found; ", kCifar10HowToGet));
  }
  if (!fs::exists(root / "test_batch.bin", ec) && fs::is_directory(root / "cifar-10-batches-bin", ec)) {
    root /= "cifar-10-batches-bin";
  }
  std::vector<std::string> files;
  if (split == Split::kTrain) {
    for (int i = 1; i <= 5; ++i) files.push_back((root / absl::StrCat("data_batch_", i, ".bin")).string());
  } else {
    files.push_back((root / "test_batch.bin").string());
  }

  constexpr int64_t kImageBytes = kCifar10RecordBytes - 1;
  std::vector<uint8_t> pixels, labels;
  for (const std::string& path : files) {
    if (!fs::is_regular_file(path, ec)) {
      return absl::NotFoundError(absl::StrCat("cifar10: ", path, " not found; ", kCifar10HowToGet));
    }
    const auto size = static_cast<int64_t>(fs::file_size(path, ec));
    if (ec || size <= 0 || size % kCifar10RecordBytes != 0) {
      return absl::DataLossError(absl::StrCat(path, ": size ", size, " bytes is not a positive multiple of the ",
                                              kCifar10RecordBytes, "-byte CIFAR-10 record (expected ",
                                              10000 * kCifar10RecordBytes, " for a full batch)"));
    }
    std::ifstream in(path, std::ios::binary);
    std::vector<uint8_t> bytes(static_cast<size_t>(size));
    if (!in.read(reinterpret_cast<char*>(bytes.data()), size)) {
      return absl::DataLossError(absl::StrCat(path, ": read failed after ", in.gcount(), " of ", size, " bytes"));
    }
    const int64_t records = size / kCifar10RecordBytes;
    pixels.reserve(pixels.size() + records * kImageBytes);
    for (int64_t r = 0; r < records; ++r) {
      const uint8_t* record = bytes.data() + r * kCifar10RecordBytes;
      if (record[0] >= 10) {
        return absl::DataLossError(absl::StrCat(path, ": record ", r, " has label ", record[0],
                                                "; CIFAR-10 labels are in [0, 10)"));
      }
      labels.push_back(record[0]);
      pixels.insert(pixels.end(), record + 1, record + kCifar10RecordBytes);
    }
  }
  DatasetInfo info;
  info.name = "cifar10";
  info.source = root.string();
  info.files = files;
  info.num_classes = 10;
  info.channels = 3;
  info.height = 32;
  info.width = 32;
  // Per-channel statistics of the 50000 training images.
  info.normalization = {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
  return InMemoryDataset::Create(std::move(info), std::move(pixels), std::move(labels));
}

}  // namespace mpq::data
