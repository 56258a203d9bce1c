// synthetic.h — a seeded, learnable synthetic image dataset for tests and benchmarks.
//
// Each class has a random smooth prototype image; an example is its class prototype
// plus Gaussian pixel noise, clipped to bytes. A small network separates the classes
// within a few hundred steps, so end-to-end tests can check that loss falls and
// accuracy beats chance without real data.
//
//   SyntheticOptions o;  o.num_examples = 512;  o.seed = 7;
//   absl::StatusOr<std::unique_ptr<InMemoryDataset>> ds = MakeSynthetic(o);
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "datasets/dataset.h"

namespace mpq::data {

struct SyntheticOptions {
  int64_t num_examples = 1024;  // default 1024
  int64_t num_classes = 10;     // default 10
  int64_t channels = 1;         // default 1
  int64_t height = 28;          // default 28
  int64_t width = 28;           // default 28
  double noise_std = 40.0;      // pixel noise in byte units; default 40
  uint64_t seed = 0;            // class prototypes; default 0. The same options give the same bytes
  uint64_t stream = 0;          // independent draw of examples of the same classes
                                // (registry: 0 = train, 1 = test); default 0
};

absl::StatusOr<std::unique_ptr<InMemoryDataset>> MakeSynthetic(const SyntheticOptions& options);

}  // namespace mpq::data
