// ImageNet folder reader and JPEG decoding, on folders of JPEGs the test writes.
#include "datasets/imagenet.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <turbojpeg.h>

#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <filesystem>

#include "datasets/jpeg.h"
#include "datasets/loader.h"
#include "tests/datasets/format_writers.h"

namespace mpq::data {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

double MeanAbsDifference(const Image& a, const Image& b) {
  double sum = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) sum += std::abs(a.pixels[i] - b.pixels[i]);
  return sum / a.pixels.size();
}

class ImageNetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::MakeTempDir("imagenet");
    train_images_ = testing::WriteJpegFolder(root_ + "/train", {"n02", "n01", "n03"}, 2, 40, 30, 11);
    testing::WriteJpegFolder(root_ + "/val", {"n01", "n03"}, 1, 36, 48, 12);
    testing::WriteBytes(root_ + "/train/n01/README.txt", {'h', 'i'});  // ignored: not a JPEG name
  }
  std::string root_;
  std::vector<Image> train_images_;
};

TEST_F(ImageNetTest, ClassesAreSortedWnidsAndLabelsFollowThem) {
  absl::StatusOr<std::unique_ptr<ImageFolderDataset>> train = LoadImageNet(root_, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_THAT((*train)->classes(), ElementsAre("n01", "n02", "n03"));
  ASSERT_EQ((*train)->size(), 6);
  EXPECT_EQ((*train)->label(0), 0);
  EXPECT_THAT((*train)->path(0), HasSubstr("train/n01/img_0.JPEG"));
  EXPECT_EQ((*train)->label(5), 2);

  absl::StatusOr<std::unique_ptr<ImageFolderDataset>> val = LoadImageNet(root_, Split::kTest);
  ASSERT_TRUE(val.ok()) << val.status();
  EXPECT_EQ((*val)->info().num_classes, 3);  // the training class list, though val lacks n02
  ASSERT_EQ((*val)->size(), 2);
  EXPECT_EQ((*val)->label(0), 0);
  EXPECT_EQ((*val)->label(1), 2);
}

TEST_F(ImageNetTest, DecodedPixelsMatchWhatWasEncoded) {
  absl::StatusOr<std::unique_ptr<ImageFolderDataset>> train = LoadImageNet(root_, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  Image image;
  ASSERT_TRUE((*train)->Read(2, &image).ok());  // n02/img_0, written first
  ASSERT_EQ(image.channels, 3);
  ASSERT_EQ(image.height, 30);
  ASSERT_EQ(image.width, 40);
  // Quality 95 with 4:2:0 chroma: on a 40x30 image whose three channels carry
  // independent patterns, halving chroma resolution costs ~5 levels on average. A
  // channel-order or layout bug costs tens of levels (checked against the swap below).
  EXPECT_LT(MeanAbsDifference(image, train_images_[0]), 8.0);
  Image swapped = image;
  std::swap_ranges(swapped.plane(0), swapped.plane(0) + 30 * 40, swapped.plane(2));
  EXPECT_GT(MeanAbsDifference(swapped, train_images_[0]), 30.0);
}

TEST(JpegTest, GrayscaleExpandsToThreeEqualChannels) {
  const Image gray = testing::SmoothImage(1, 20, 24, 3);
  absl::StatusOr<std::vector<uint8_t>> jpeg = EncodeJpeg(gray, 100);
  ASSERT_TRUE(jpeg.ok());
  absl::StatusOr<Image> decoded = DecodeJpeg(*jpeg, "gray");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->channels, 3);
  // Quality 100, no chroma: the accurate IDCT returns nearly every pixel exactly
  // (~0.1 levels mean error); the fast integer IDCT would give ~3.
  double error = 0;
  for (int64_t i = 0; i < 20 * 24; ++i) error += std::abs(decoded->plane(0)[i] - gray.plane(0)[i]);
  EXPECT_LT(error / (20 * 24), 0.5);
  for (int64_t i = 0; i < 20 * 24; ++i) {
    ASSERT_EQ(decoded->plane(0)[i], decoded->plane(1)[i]);
    ASSERT_EQ(decoded->plane(0)[i], decoded->plane(2)[i]);
  }
}

TEST(JpegTest, CmykIsConvertedToRgb) {
  // A uniform CMYK image in libjpeg's inverted Adobe convention: stored C'M'Y'K' =
  // (255, 128, 255, 200) -> R = 255*200/255 = 200, G = 128*200/255 = 100, B = 200.
  const int w = 16, h = 16;
  std::vector<uint8_t> cmyk(w * h * 4);
  for (int i = 0; i < w * h; ++i) {
    cmyk[4 * i] = 255;
    cmyk[4 * i + 1] = 128;
    cmyk[4 * i + 2] = 255;
    cmyk[4 * i + 3] = 200;
  }
  tjhandle tj = tjInitCompress();
  unsigned char* out = nullptr;
  unsigned long size = 0;  // NOLINT(runtime/int)
  ASSERT_EQ(tjCompress2(tj, cmyk.data(), w, 0, h, TJPF_CMYK, &out, &size, TJSAMP_444, 100, 0), 0)
      << tjGetErrorStr2(tj);
  std::vector<uint8_t> bytes(out, out + size);
  tjFree(out);
  tjDestroy(tj);
  absl::StatusOr<Image> decoded = DecodeJpeg(bytes, "cmyk");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_NEAR(decoded->at(0, 8, 8), 200, 3);
  EXPECT_NEAR(decoded->at(1, 8, 8), 100, 3);
  EXPECT_NEAR(decoded->at(2, 8, 8), 200, 3);
}

TEST(JpegTest, DctScalingHonoursTheShorterSideHint) {
  absl::StatusOr<std::vector<uint8_t>> jpeg = EncodeJpeg(testing::SmoothImage(3, 384, 512, 5), 90);
  ASSERT_TRUE(jpeg.ok());
  absl::StatusOr<Image> full = DecodeJpeg(*jpeg, "x");
  absl::StatusOr<Image> scaled = DecodeJpeg(*jpeg, "x", 100);
  ASSERT_TRUE(full.ok() && scaled.ok());
  EXPECT_EQ(full->height, 384);
  // 1/2 gives 192x256 (>= 100); 1/4 would give 96x128 (< 100).
  EXPECT_EQ(scaled->height, 192);
  EXPECT_EQ(scaled->width, 256);
  absl::StatusOr<Image> too_big = DecodeJpeg(*jpeg, "x", 1000);  // never upscales
  ASSERT_TRUE(too_big.ok());
  EXPECT_EQ(too_big->height, 384);
}

TEST(JpegTest, GarbageIsAnErrorNamingTheFile) {
  const absl::Status s = DecodeJpeg(std::vector<uint8_t>{1, 2, 3, 4, 5}, "val/n01/bad.JPEG").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("val/n01/bad.JPEG"), HasSubstr("not a readable JPEG")));
  EXPECT_EQ(DecodeJpeg(std::vector<uint8_t>{}, "empty.JPEG").status().code(), absl::StatusCode::kDataLoss);
}

TEST(JpegTest, TruncatedFileIsAnError) {
  absl::StatusOr<std::vector<uint8_t>> jpeg = EncodeJpeg(testing::SmoothImage(3, 64, 64, 9), 90);
  ASSERT_TRUE(jpeg.ok());
  jpeg->resize(jpeg->size() * 2 / 3);
  const absl::Status s = DecodeJpeg(*jpeg, "cut.JPEG").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("cut.JPEG"));
}

TEST_F(ImageNetTest, MissingValDirectoryExplainsTheLayout) {
  std::filesystem::remove_all(root_ + "/val");
  const absl::Status s = LoadImageNet(root_, Split::kTrain).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), AllOf(HasSubstr(root_ + "/val"), HasSubstr("<dir>/val/<wnid>/*.JPEG")));
}

TEST_F(ImageNetTest, EmptyClassFolderIsAnError) {
  std::filesystem::create_directories(root_ + "/train/n04");
  const absl::Status s = LoadImageNet(root_, Split::kTrain).status();
  EXPECT_THAT(s.message(), AllOf(HasSubstr(root_ + "/train/n04"), HasSubstr("no .JPEG")));
}

TEST_F(ImageNetTest, ValClassUnknownToTrainIsAnError) {
  testing::WriteJpegFolder(root_ + "/val", {"n99"}, 1, 8, 8, 1);
  const absl::Status s = LoadImageNet(root_, Split::kTest).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(root_ + "/val/n99"));
}

TEST_F(ImageNetTest, LoaderFailsOnAnUnreadableJpegNamingIt) {
  testing::WriteBytes(root_ + "/train/n02/img_1.JPEG", {0xff, 0xd8, 0x00, 0x01});
  absl::StatusOr<std::unique_ptr<ImageFolderDataset>> train = LoadImageNet(root_, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  LoaderOptions options;
  options.batch_size = 4;
  options.num_workers = 2;
  absl::StatusOr<std::unique_ptr<DataLoader>> loader =
      DataLoader::Create(**train, {0, 1, 2, 3, 4, 5}, ImageNetPipelines(16, 18).eval, options);
  ASSERT_TRUE(loader.ok()) << loader.status();
  (*loader)->StartEpoch(0);
  Batch batch;
  absl::StatusOr<bool> more = (*loader)->Next(&batch);
  ASSERT_FALSE(more.ok());
  EXPECT_THAT(more.status().message(), HasSubstr("train/n02/img_1.JPEG"));
}

TEST_F(ImageNetTest, LoaderCanSkipAndCountUnreadableJpegs) {
  testing::WriteBytes(root_ + "/train/n02/img_1.JPEG", {0xff, 0xd8, 0x00, 0x01});
  absl::StatusOr<std::unique_ptr<ImageFolderDataset>> train = LoadImageNet(root_, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  LoaderOptions options;
  options.batch_size = 4;
  options.on_bad_example = BadExamplePolicy::kSkip;
  absl::StatusOr<std::unique_ptr<DataLoader>> loader =
      DataLoader::Create(**train, {0, 1, 2, 3, 4, 5}, ImageNetPipelines(16, 18).train, options);
  ASSERT_TRUE(loader.ok()) << loader.status();
  (*loader)->StartEpoch(0);
  Batch batch;
  int64_t seen = 0;
  while (true) {
    absl::StatusOr<bool> more = (*loader)->Next(&batch);
    ASSERT_TRUE(more.ok()) << more.status();
    if (!*more) break;
    EXPECT_EQ(batch.images.size(1), 3);
    EXPECT_EQ(batch.images.size(2), 16);
    seen += batch.labels.size(0);
  }
  EXPECT_EQ(seen, 5);
  EXPECT_EQ((*loader)->skipped(), 1);
  EXPECT_THAT((*loader)->first_skip_error(), HasSubstr("train/n02/img_1.JPEG"));
}

}  // namespace
}  // namespace mpq::data
