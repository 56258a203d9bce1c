// format_writers.h — writes small dataset files in exactly the real on-disk formats,
// so reader tests and loader benchmarks need no downloaded data.
//
//   WriteIdx(dir + "/train-images-idx3-ubyte.gz", {n, 28, 28}, pixels);
//   WriteCifarBatch(dir + "/data_batch_1.bin", labels, pixels);
//   WriteJpegFolder(root + "/train", {"n01", "n02"}, /*per_class=*/3, 64, 48, /*seed=*/1);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datasets/image.h"

namespace mpq::testing {

// A fresh directory under $TEST_TMPDIR (or /tmp), unique per call.
std::string MakeTempDir(const std::string& name);

// An IDX file of unsigned bytes (magic 00 00 08 rank, big-endian dims, data), gzip-
// compressed when `path` ends in ".gz". `magic_override` (4 bytes) replaces the magic.
void WriteIdx(const std::string& path, const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data,
              const std::vector<uint8_t>& magic_override = {});

// Raw bytes to a file.
void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes);
std::vector<uint8_t> ReadBytes(const std::string& path);

// CIFAR-10 binary records: label byte + 3072 CHW bytes per image.
void WriteCifarBatch(const std::string& path, const std::vector<uint8_t>& labels,
                     const std::vector<uint8_t>& pixels);

// A smooth random RGB image (JPEG compresses it with little error).
data::Image SmoothImage(int64_t channels, int64_t height, int64_t width, uint64_t seed);

// <split_dir>/<class>/img_<k>.JPEG for each class, `per_class` smooth images of
// width x height. Returns the images written, in (class, k) order.
std::vector<data::Image> WriteJpegFolder(const std::string& split_dir, const std::vector<std::string>& classes,
                                         int per_class, int64_t width, int64_t height, uint64_t seed);

}  // namespace mpq::testing
