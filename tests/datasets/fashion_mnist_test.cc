// Fashion-MNIST reader: the real Debian files, and every corrupt variant of the IDX
// format written by the test itself.
#include "datasets/fashion_mnist.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numeric>

#include "datasets/random.h"
#include "tests/datasets/format_writers.h"

namespace mpq::data {
namespace {

using ::testing::AllOf;
using ::testing::Each;
using ::testing::HasSubstr;

TEST(FashionMnistTest, RealTrainFilesHave60000BalancedExamples) {
  absl::StatusOr<std::unique_ptr<InMemoryDataset>> train = LoadFashionMnist(kFashionMnistDefaultDir, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ((*train)->size(), 60000);
  EXPECT_EQ((*train)->info().num_classes, 10);
  EXPECT_EQ((*train)->info().channels, 1);
  EXPECT_EQ((*train)->info().height, 28);
  EXPECT_EQ((*train)->info().width, 28);
  EXPECT_THAT(ClassHistogram(**train), Each(6000));
}

TEST(FashionMnistTest, RealTestFilesHave10000BalancedExamples) {
  absl::StatusOr<std::unique_ptr<InMemoryDataset>> test = LoadFashionMnist(kFashionMnistDefaultDir, Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ((*test)->size(), 10000);
  EXPECT_THAT(ClassHistogram(**test), Each(1000));
}

TEST(FashionMnistTest, NormalizationConstantsMatchTrainingPixels) {
  absl::StatusOr<std::unique_ptr<InMemoryDataset>> train = LoadFashionMnist(kFashionMnistDefaultDir, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  const int64_t n = (*train)->size() * (*train)->image_bytes();
  double sum = 0, sum_sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = (*train)->pixels()[i] / 255.0;
    sum += v;
    sum_sq += v * v;
  }
  const double mean = sum / n, stddev = std::sqrt(sum_sq / n - mean * mean);
  // The constants are rounded to 4 decimals.
  EXPECT_NEAR(mean, kFashionMnistMean, 5e-5);
  EXPECT_NEAR(stddev, kFashionMnistStd, 5e-5);
}

// Writes a valid small Fashion-MNIST-format pair; tests then break one thing.
class FashionMnistFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("fmnist");
    Rng rng(MixSeed(20261123, ::testing::UnitTest::GetInstance()->random_seed()));
    pixels_.resize(kCount * 28 * 28);
    for (uint8_t& p : pixels_) p = static_cast<uint8_t>(rng.UniformInt(256));
    for (int i = 0; i < kCount; ++i) labels_.push_back(static_cast<uint8_t>(i % 10));
    testing::WriteIdx(images_path(), {kCount, 28, 28}, pixels_);
    testing::WriteIdx(labels_path(), {kCount}, labels_);
  }
  std::string images_path() const { return dir_ + "/t10k-images-idx3-ubyte.gz"; }
  std::string labels_path() const { return dir_ + "/t10k-labels-idx1-ubyte.gz"; }
  absl::Status Load() const { return LoadFashionMnist(dir_, Split::kTest).status(); }

  static constexpr int kCount = 23;
  std::string dir_;
  std::vector<uint8_t> pixels_, labels_;
};

TEST_F(FashionMnistFilesTest, ReadsPixelsAndLabelsExactly) {
  absl::StatusOr<std::unique_ptr<InMemoryDataset>> ds = LoadFashionMnist(dir_, Split::kTest);
  ASSERT_TRUE(ds.ok()) << ds.status();
  ASSERT_EQ((*ds)->size(), kCount);
  Image image;
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE((*ds)->Read(i, &image).ok());
    EXPECT_EQ(image.pixels, std::vector<uint8_t>(pixels_.begin() + i * 784, pixels_.begin() + (i + 1) * 784));
    EXPECT_EQ((*ds)->label(i), labels_[i]);
  }
}

TEST_F(FashionMnistFilesTest, AcceptsUncompressedFiles) {
  std::filesystem::remove(images_path());
  testing::WriteIdx(dir_ + "/t10k-images-idx3-ubyte", {kCount, 28, 28}, pixels_);
  EXPECT_TRUE(Load().ok()) << Load();
}

TEST_F(FashionMnistFilesTest, MissingDirectoryNamesItAndThePackage) {
  const absl::Status s = LoadFashionMnist(dir_ + "/nope", Split::kTest).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), AllOf(HasSubstr(dir_ + "/nope"), HasSubstr("dataset-fashion-mnist")));
}

TEST_F(FashionMnistFilesTest, MissingLabelFileIsNamed) {
  std::filesystem::remove(labels_path());
  EXPECT_EQ(Load().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Load().message(), HasSubstr("t10k-labels-idx1-ubyte.gz"));
}

TEST_F(FashionMnistFilesTest, BadMagicIsReportedWithTheExpectedOne) {
  testing::WriteIdx(images_path(), {kCount, 28, 28}, pixels_, {0, 0, 0x0d, 3});  // float data
  EXPECT_EQ(Load().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Load().message(), AllOf(HasSubstr(images_path()), HasSubstr("bad IDX magic 00 00 0d 03"),
                                      HasSubstr("expected 00 00 08 03")));
}

TEST_F(FashionMnistFilesTest, TruncatedDataIsReported) {
  testing::WriteIdx(images_path(), {kCount, 28, 28}, std::vector<uint8_t>(pixels_.begin(), pixels_.end() - 100));
  EXPECT_EQ(Load().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Load().message(), AllOf(HasSubstr(images_path()), HasSubstr("truncated")));
}

TEST_F(FashionMnistFilesTest, TrailingDataIsReported) {
  std::vector<uint8_t> longer = labels_;
  longer.push_back(3);
  testing::WriteIdx(labels_path(), {kCount}, longer);
  EXPECT_THAT(Load().message(), AllOf(HasSubstr(labels_path()), HasSubstr("trailing data")));
}

TEST_F(FashionMnistFilesTest, CutGzipStreamIsReported) {
  std::vector<uint8_t> bytes = testing::ReadBytes(images_path());
  bytes.resize(bytes.size() / 2);
  testing::WriteBytes(images_path(), bytes);
  EXPECT_EQ(Load().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Load().message(), HasSubstr(images_path()));
}

TEST_F(FashionMnistFilesTest, CorruptGzipDataIsReported) {
  std::vector<uint8_t> bytes = testing::ReadBytes(images_path());
  for (size_t i = 20; i < bytes.size() - 10; i += 7) bytes[i] ^= 0x5a;
  testing::WriteBytes(images_path(), bytes);
  EXPECT_EQ(Load().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Load().message(), HasSubstr(images_path()));
}

TEST_F(FashionMnistFilesTest, EmptyFileIsReported) {
  testing::WriteBytes(labels_path(), {});
  EXPECT_EQ(Load().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Load().message(), HasSubstr(labels_path()));
}

TEST_F(FashionMnistFilesTest, CountMismatchNamesBothFiles) {
  testing::WriteIdx(labels_path(), {kCount - 1}, std::vector<uint8_t>(labels_.begin(), labels_.end() - 1));
  EXPECT_THAT(Load().message(), AllOf(HasSubstr(images_path()), HasSubstr(labels_path()), HasSubstr("23 images"),
                                      HasSubstr("22 labels")));
}

TEST_F(FashionMnistFilesTest, LabelOutOfRangeNamesExampleAndValue) {
  labels_[17] = 10;
  testing::WriteIdx(labels_path(), {kCount}, labels_);
  EXPECT_EQ(Load().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Load().message(),
              AllOf(HasSubstr(labels_path()), HasSubstr("label 10 of example 17"), HasSubstr("[0, 10)")));
}

TEST_F(FashionMnistFilesTest, WrongImageSizeIsReported) {
  testing::WriteIdx(images_path(), {kCount, 32, 24}, std::vector<uint8_t>(kCount * 32 * 24));
  EXPECT_THAT(Load().message(), AllOf(HasSubstr("32x24"), HasSubstr("28x28")));
}

TEST_F(FashionMnistFilesTest, EmptyDatasetIsAnErrorNotAnEmptySet) {
  testing::WriteIdx(images_path(), {0, 28, 28}, {});
  testing::WriteIdx(labels_path(), {0}, {});
  EXPECT_THAT(Load().message(), HasSubstr("no examples"));
}

}  // namespace
}  // namespace mpq::data
