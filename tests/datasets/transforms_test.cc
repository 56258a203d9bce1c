// Augmentation pipelines against plain reference computations written here.
#include "datasets/transforms.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/datasets/format_writers.h"

namespace mpq::data {
namespace {

using ::testing::HasSubstr;

const Normalization kUnit1{{0.0f}, {1.0f}};  // output = byte / 255

std::vector<float> Apply(const Pipeline& p, const Image& image, const Normalization& norm, uint64_t seed,
                         int64_t* h = nullptr, int64_t* w = nullptr) {
  int64_t oh = 0, ow = 0;
  EXPECT_TRUE(p.OutputSize(std::max(image.height, p.pad_to), std::max(image.width, p.pad_to), &oh, &ow).ok());
  std::vector<float> out(image.channels * oh * ow);
  Rng rng(seed);
  const absl::Status s = p.Apply(image, norm, rng, out.data());
  EXPECT_TRUE(s.ok()) << s;
  if (h) *h = oh;
  if (w) *w = ow;
  return out;
}

TEST(TransformsTest, IdentityNormalizesPerChannel) {
  const Image image = testing::SmoothImage(3, 5, 7, 1);
  const Normalization norm{{0.1f, 0.2f, 0.3f}, {0.5f, 0.25f, 2.0f}};
  const std::vector<float> out = Apply(Pipeline{}, image, norm, 0);
  ASSERT_EQ(out.size(), 3u * 5 * 7);
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t i = 0; i < 35; ++i) {
      const double want = (image.plane(c)[i] / 255.0 - norm.mean[c]) / norm.std[c];
      ASSERT_NEAR(out[c * 35 + i], want, 1e-5);
    }
  }
}

TEST(TransformsTest, PadToCentresTheImageOnZeros) {
  const Image image = testing::SmoothImage(1, 28, 28, 2);
  Pipeline p = FashionMnistPipelines(32).eval;
  int64_t h = 0, w = 0;
  const std::vector<float> out = Apply(p, image, kUnit1, 0, &h, &w);
  ASSERT_EQ(h, 32);
  ASSERT_EQ(w, 32);
  for (int64_t y = 0; y < 32; ++y) {
    for (int64_t x = 0; x < 32; ++x) {
      const bool inside = y >= 2 && y < 30 && x >= 2 && x < 30;
      const float want = inside ? image.at(0, y - 2, x - 2) / 255.0f : 0.0f;
      ASSERT_FLOAT_EQ(out[y * 32 + x], want) << y << "," << x;
    }
  }
}

// Reference for pad + crop + flip: build the padded image explicitly, crop, mirror.
TEST(TransformsTest, PadRandomCropFlipMatchesExplicitPaddedCrop) {
  const Image image = testing::SmoothImage(3, 32, 32, 3);
  const Pipeline p = Cifar10Pipelines().train;
  int flips = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    // Recover the draws the pipeline makes from the same generator.
    Rng draws(seed);
    const int64_t top = draws.UniformInt(41 - 32), left = draws.UniformInt(41 - 32);
    const bool flip = draws.Bernoulli(0.5);
    flips += flip;
    const std::vector<float> out = Apply(p, image, {{0, 0, 0}, {1, 1, 1}}, seed);
    for (int64_t c = 0; c < 3; ++c) {
      for (int64_t y = 0; y < 32; ++y) {
        for (int64_t x = 0; x < 32; ++x) {
          const int64_t px = left + (flip ? 31 - x : x) - 4, py = top + y - 4;
          const bool inside = px >= 0 && px < 32 && py >= 0 && py < 32;
          const float want = inside ? image.at(c, py, px) / 255.0f : 0.0f;
          ASSERT_FLOAT_EQ(out[(c * 32 + y) * 32 + x], want);
        }
      }
    }
  }
  EXPECT_GT(flips, 5);
  EXPECT_LT(flips, 35);
}

TEST(TransformsTest, SameSeedSameOutputDifferentSeedsDiffer) {
  const Image image = testing::SmoothImage(3, 60, 80, 4);
  const Pipeline p = ImageNetPipelines(32, 36).train;
  EXPECT_EQ(Apply(p, image, {{0, 0, 0}, {1, 1, 1}}, 9), Apply(p, image, {{0, 0, 0}, {1, 1, 1}}, 9));
  EXPECT_NE(Apply(p, image, {{0, 0, 0}, {1, 1, 1}}, 9), Apply(p, image, {{0, 0, 0}, {1, 1, 1}}, 10));
}

// Bilinear resampling reproduces a linear ramp exactly (up to float rounding).
TEST(TransformsTest, ResizeCenterCropOfARampIsARamp) {
  Image ramp(1, 100, 200);  // value = x (0..199 fits a byte), constant over y
  for (int64_t y = 0; y < 100; ++y) {
    for (int64_t x = 0; x < 200; ++x) ramp.at(0, y, x) = static_cast<uint8_t>(x);
  }
  // Shorter side 100 -> 50 (scale 1/2): resized 50x100, centre 40x40 crop starts at
  // x = 30 in resized coordinates. Output x samples source x = 2 * (30 + x + 0.5) - 0.5.
  Pipeline p = ImageNetPipelines(40, 50).eval;
  int64_t h = 0, w = 0;
  const std::vector<float> out = Apply(p, ramp, kUnit1, 0, &h, &w);
  ASSERT_EQ(h, 40);
  ASSERT_EQ(w, 40);
  for (int64_t y = 0; y < 40; ++y) {
    for (int64_t x = 0; x < 40; ++x) {
      const double want = (2.0 * (30 + x + 0.5) - 0.5) / 255.0;
      ASSERT_NEAR(out[y * 40 + x], want, 1e-5) << y << "," << x;
    }
  }
}

TEST(TransformsTest, RandomResizedCropStaysInsideAndCoversScaleRange) {
  Image ramp(1, 64, 64);
  for (int64_t y = 0; y < 64; ++y) {
    for (int64_t x = 0; x < 64; ++x) ramp.at(0, y, x) = static_cast<uint8_t>(4 * x);
  }
  const Pipeline p = ImageNetPipelines(16, 18).train;
  double min_span = 1e9, max_span = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const std::vector<float> out = Apply(p, ramp, kUnit1, seed);
    // Every value is a convex combination of source values: inside [0, 252] / 255.
    for (float v : out) ASSERT_TRUE(v >= 0.0f && v <= 252.0f / 255.0f + 1e-6f);
    const double span = std::abs(out[15] - out[0]);  // horizontal extent of the crop, in ramp units
    min_span = std::min(min_span, span);
    max_span = std::max(max_span, span);
  }
  // Crops range from ~8% of the area (width ~18 px) to the whole image (64 px).
  EXPECT_LT(min_span, 30.0 * 4 / 255);
  EXPECT_GT(max_span, 50.0 * 4 / 255);
}

TEST(TransformsTest, BadConfigurationsAreErrors) {
  const Image image = testing::SmoothImage(1, 10, 10, 5);
  std::vector<float> out(10000);
  Rng rng(0);
  Pipeline crop_too_big;
  crop_too_big.geometry = Pipeline::Geometry::kPadRandomCrop;
  crop_too_big.out_height = crop_too_big.out_width = 20;
  EXPECT_THAT(crop_too_big.Apply(image, kUnit1, rng, out.data()).message(), HasSubstr("larger than"));
  EXPECT_THAT(Pipeline{}.Apply(image, {{0, 0}, {1, 1}}, rng, out.data()).message(), HasSubstr("normalization"));
  int64_t h = 0, w = 0;
  EXPECT_FALSE(Pipeline{}.OutputSize(0, 0, &h, &w).ok());  // identity on variable-size data
}

}  // namespace
}  // namespace mpq::data
