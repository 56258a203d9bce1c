#include "datasets/synthetic.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "datasets/random.h"

namespace mpq::data {

absl::StatusOr<std::unique_ptr<InMemoryDataset>> MakeSynthetic(const SyntheticOptions& o) {
  if (o.num_examples <= 0 || o.num_classes <= 0 || o.num_classes > 256 || o.channels <= 0 || o.height <= 0 ||
      o.width <= 0 || o.noise_std < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "synthetic: num_examples ", o.num_examples, ", num_classes ", o.num_classes, " (<= 256), shape ",
        o.channels, "x", o.height, "x", o.width, " must be positive and noise_std ", o.noise_std, " >= 0"));
  }
  const int64_t image_bytes = o.channels * o.height * o.width;
  Rng rng(MixSeed(o.seed, 0x70726f746fULL /* "proto" */));

  // Smooth prototypes: a sum of a few random low-frequency sinusoids per channel.
  std::vector<float> prototypes(o.num_classes * image_bytes);
  for (int64_t k = 0; k < o.num_classes; ++k) {
    for (int64_t c = 0; c < o.channels; ++c) {
      float* plane = prototypes.data() + (k * o.channels + c) * o.height * o.width;
      for (int term = 0; term < 3; ++term) {
        const double fy = rng.Uniform(0.5, 3.0) * 2 * M_PI / o.height;
        const double fx = rng.Uniform(0.5, 3.0) * 2 * M_PI / o.width;
        const double phase = rng.Uniform(0, 2 * M_PI);
        for (int64_t y = 0; y < o.height; ++y) {
          for (int64_t x = 0; x < o.width; ++x) plane[y * o.width + x] += 40.0 * std::sin(fy * y + fx * x + phase);
        }
      }
    }
  }
  std::vector<uint8_t> pixels(o.num_examples * image_bytes), labels(o.num_examples);
  Rng noise(MixSeed(o.seed, 0x6e6f697365ULL /* "noise" */, o.stream));
  for (int64_t i = 0; i < o.num_examples; ++i) {
    const int64_t k = i % o.num_classes;  // balanced classes
    labels[i] = static_cast<uint8_t>(k);
    const float* proto = prototypes.data() + k * image_bytes;
    for (int64_t p = 0; p < image_bytes; ++p) {
      const double v = 128.0 + proto[p] + o.noise_std * noise.Normal();
      pixels[i * image_bytes + p] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
    }
  }
  DatasetInfo info;
  info.name = "synthetic";
  info.source = absl::StrCat("synthetic(seed=", o.seed, ", stream=", o.stream, ")");
  info.num_classes = o.num_classes;
  info.channels = o.channels;
  info.height = o.height;
  info.width = o.width;
  info.normalization = {std::vector<float>(o.channels, 0.5f), std::vector<float>(o.channels, 0.25f)};
  return InMemoryDataset::Create(std::move(info), std::move(pixels), std::move(labels));
}

}  // namespace mpq::data
