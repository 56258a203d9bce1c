#include "datasets/fashion_mnist.h"

#include <zlib.h>

#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mpq::data {
namespace {

// Reads a whole gzip (or, transparently, plain) file.
absl::StatusOr<std::vector<uint8_t>> ReadGzipFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": file not found"));
  }
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> chunk(1 << 20);
  while (true) {
    const int n = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      const std::string message = gzerror(file, &code);
      gzclose(file);
      return absl::DataLossError(absl::StrCat(path, ": corrupt gzip data (", message, ")"));
    }
    if (n == 0) break;
    bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + n);
  }
  // gzread reports a gzip stream cut short as end of file; gzclose_r tells.
  const int close_rc = gzclose(file);
  if (close_rc != Z_OK) {
    return absl::DataLossError(absl::StrCat(path, ": gzip stream is truncated or corrupt (zlib error ", close_rc, ")"));
  }
  return bytes;
}

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// The file for `stem` in `dir`: stem.gz, or stem uncompressed.
std::string ResolveIdxPath(const std::string& dir, const std::string& stem) {
  const std::string gz = (std::filesystem::path(dir) / (stem + ".gz")).string();
  const std::string plain = (std::filesystem::path(dir) / stem).string();
  std::error_code ec;
  if (!std::filesystem::exists(gz, ec) && std::filesystem::exists(plain, ec)) return plain;
  return gz;
}

}  // namespace

absl::StatusOr<IdxArray> ReadIdxUint8(const std::string& path, int expected_rank) {
  absl::StatusOr<std::vector<uint8_t>> bytes = ReadGzipFile(path);
  if (!bytes.ok()) return bytes.status();
  const std::vector<uint8_t>& b = *bytes;
  if (b.size() < 4) {
    return absl::DataLossError(absl::StrCat(path, ": ", b.size(), " bytes; an IDX file needs at least a 4-byte magic"));
  }
  if (b[0] != 0 || b[1] != 0 || b[2] != 0x08 || b[3] != expected_rank) {
    return absl::DataLossError(absl::StrFormat(
        "%s: bad IDX magic %02x %02x %02x %02x; expected 00 00 08 %02x (unsigned bytes, rank %d)", path, b[0],
        b[1], b[2], b[3], expected_rank, expected_rank));
  }
  const size_t header = 4 + 4 * static_cast<size_t>(expected_rank);
  if (b.size() < header) {
    return absl::DataLossError(absl::StrCat(path, ": truncated header (", b.size(), " bytes, expected ", header, ")"));
  }
  IdxArray array;
  size_t count = 1;
  for (int d = 0; d < expected_rank; ++d) {
    const uint32_t dim = BigEndian32(b.data() + 4 + 4 * d);
    array.dims.push_back(dim);
    count *= dim;
  }
  const size_t payload = b.size() - header;
  if (payload != count) {
    return absl::DataLossError(absl::StrCat(path, ": ", payload < count ? "truncated" : "trailing data",
                                            ": the header promises ", count, " bytes of data, the file has ",
                                            payload));
  }
  array.data.assign(b.begin() + header, b.end());
  return array;
}

absl::StatusOr<std::unique_ptr<InMemoryDataset>> LoadFashionMnist(const std::string& dir, Split split) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(
        "fashion_mnist: directory ", dir, " not found; install Debian's dataset-fashion-mnist (tools/setup.sh) ",
        "or pass the directory holding {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz"));
  }
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  const std::string images_path = ResolveIdxPath(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = ResolveIdxPath(dir, prefix + "-labels-idx1-ubyte");
  absl::StatusOr<IdxArray> images = ReadIdxUint8(images_path, 3);
  if (!images.ok()) return images.status();
  absl::StatusOr<IdxArray> labels = ReadIdxUint8(labels_path, 1);
  if (!labels.ok()) return labels.status();
  if (images->dims[1] != 28 || images->dims[2] != 28) {
    return absl::DataLossError(absl::StrCat(images_path, ": images are ", images->dims[1], "x", images->dims[2],
                                            "; Fashion-MNIST images are 28x28"));
  }
  if (images->dims[0] != labels->dims[0]) {
    return absl::DataLossError(absl::StrCat(images_path, " has ", images->dims[0], " images but ", labels_path,
                                            " has ", labels->dims[0], " labels"));
  }
  DatasetInfo info;
  info.name = "fashion_mnist";
  info.source = dir;
  info.num_classes = 10;
  info.channels = 1;
  info.height = 28;
  info.width = 28;
  info.normalization = {{kFashionMnistMean}, {kFashionMnistStd}};
  info.files = {images_path, labels_path};
  // InMemoryDataset::Create checks label ranges; name the label file in its message.
  absl::StatusOr<std::unique_ptr<InMemoryDataset>> dataset =
      InMemoryDataset::Create(std::move(info), std::move(images->data), std::move(labels->data));
  if (!dataset.ok()) {
    return absl::Status(dataset.status().code(), absl::StrCat(labels_path, ": ", dataset.status().message()));
  }
  return dataset;
}

}  // namespace mpq::data
