// cifar10.h — CIFAR-10 (Krizhevsky, 2009), binary version, from a user directory.
//
// Train: data_batch_1.bin .. data_batch_5.bin; test: test_batch.bin. Each file is a
// sequence of 3073-byte records: 1 label byte (0..9), then 3072 bytes of a 32x32 RGB
// image, channel-planar (1024 R, 1024 G, 1024 B), rows top to bottom. The real files
// hold 10000 records each; any positive whole number of records is accepted, so tests
// can write small files in exactly this format.
//
// `dir` may be the directory holding the .bin files or its parent, where the official
// tarball extracts to cifar-10-batches-bin/.
//
//   absl::StatusOr<std::unique_ptr<InMemoryDataset>> train = LoadCifar10(dir, Split::kTrain);
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "datasets/dataset.h"

namespace mpq::data {

inline constexpr int64_t kCifar10RecordBytes = 1 + 3 * 32 * 32;

absl::StatusOr<std::unique_ptr<InMemoryDataset>> LoadCifar10(const std::string& dir, Split split);

// What to tell a user whose directory lacks the data.
inline constexpr char kCifar10HowToGet[] =
    "download cifar-10-binary.tar.gz (the 'CIFAR-10 binary version' from the CIFAR page of "
    "the University of Toronto), extract it, and pass --data_dir=<dir containing cifar-10-batches-bin>";

}  // namespace mpq::data
