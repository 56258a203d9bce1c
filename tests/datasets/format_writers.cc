#include "tests/datasets/format_writers.h"

#include <zlib.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "datasets/jpeg.h"
#include "datasets/random.h"

namespace mpq::testing {

std::string MakeTempDir(const std::string& name) {
  static std::atomic<int> counter{0};
  const char* base = std::getenv("TEST_TMPDIR");
  const std::filesystem::path dir =
      std::filesystem::path(base ? base : "/tmp") / absl::StrCat(name, "_", counter++);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void WriteIdx(const std::string& path, const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data,
              const std::vector<uint8_t>& magic_override) {
  std::vector<uint8_t> bytes = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  if (!magic_override.empty()) bytes = magic_override;
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>(d >> shift));
  }
  bytes.insert(bytes.end(), data.begin(), data.end());
  if (!absl::EndsWith(path, ".gz")) return WriteBytes(path, bytes);
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  gzFile file = gzopen(path.c_str(), "wb");
  if (file == nullptr || gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) != static_cast<int>(bytes.size()) ||
      gzclose(file) != Z_OK) {
    throw std::runtime_error("cannot write " + path);
  }
}

void WriteCifarBatch(const std::string& path, const std::vector<uint8_t>& labels,
                     const std::vector<uint8_t>& pixels) {
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i < labels.size(); ++i) {
    bytes.push_back(labels[i]);
    bytes.insert(bytes.end(), pixels.begin() + i * 3072, pixels.begin() + (i + 1) * 3072);
  }
  WriteBytes(path, bytes);
}

data::Image SmoothImage(int64_t channels, int64_t height, int64_t width, uint64_t seed) {
  data::Rng rng(seed);
  data::Image image(channels, height, width);
  for (int64_t c = 0; c < channels; ++c) {
    const double fy = rng.Uniform(0.5, 2.0) * 2 * M_PI / height, fx = rng.Uniform(0.5, 2.0) * 2 * M_PI / width;
    const double phase = rng.Uniform(0, 2 * M_PI);
    for (int64_t y = 0; y < height; ++y) {
      for (int64_t x = 0; x < width; ++x) {
        image.at(c, y, x) = static_cast<uint8_t>(std::lround(127.5 + 100 * std::sin(fy * y + fx * x + phase)));
      }
    }
  }
  return image;
}

std::vector<data::Image> WriteJpegFolder(const std::string& split_dir, const std::vector<std::string>& classes,
                                         int per_class, int64_t width, int64_t height, uint64_t seed) {
  std::vector<data::Image> written;
  for (size_t c = 0; c < classes.size(); ++c) {
    for (int k = 0; k < per_class; ++k) {
      data::Image image = SmoothImage(3, height, width, data::MixSeed(seed, c, k));
      absl::StatusOr<std::vector<uint8_t>> jpeg = data::EncodeJpeg(image, 95);
      if (!jpeg.ok()) throw std::runtime_error(std::string(jpeg.status().message()));
      WriteBytes(absl::StrCat(split_dir, "/", classes[c], "/img_", k, ".JPEG"), *jpeg);
      written.push_back(std::move(image));
    }
  }
  return written;
}

}  // namespace mpq::testing
