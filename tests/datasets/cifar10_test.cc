// CIFAR-10 binary reader on files written in the real record format.
#include "datasets/cifar10.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "datasets/random.h"
#include "tests/datasets/format_writers.h"

namespace mpq::data {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class Cifar10Test : public ::testing::Test {
 protected:
  // Five train batches of 3 + i records and a test batch of 4, random bytes.
  void WriteAll(const std::string& dir) {
    Rng rng(MixSeed(7, ::testing::UnitTest::GetInstance()->random_seed()));
    for (int b = 0; b <= 5; ++b) {
      const int n = b == 0 ? 4 : 2 + b;
      std::vector<uint8_t> labels(n), pixels(n * 3072);
      for (uint8_t& l : labels) l = static_cast<uint8_t>(rng.UniformInt(10));
      for (uint8_t& p : pixels) p = static_cast<uint8_t>(rng.UniformInt(256));
      const std::string name = b == 0 ? "test_batch.bin" : absl::StrCat("data_batch_", b, ".bin");
      testing::WriteCifarBatch(dir + "/" + name, labels, pixels);
      if (b > 0) {
        train_labels_.insert(train_labels_.end(), labels.begin(), labels.end());
        train_pixels_.insert(train_pixels_.end(), pixels.begin(), pixels.end());
      }
    }
  }
  std::vector<uint8_t> train_labels_, train_pixels_;
};

TEST_F(Cifar10Test, ConcatenatesTheFiveTrainBatchesInOrder) {
  const std::string dir = testing::MakeTempDir("cifar");
  WriteAll(dir);
  absl::StatusOr<std::unique_ptr<InMemoryDataset>> train = LoadCifar10(dir, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  ASSERT_EQ((*train)->size(), 3 + 4 + 5 + 6 + 7);
  Image image;
  for (int64_t i = 0; i < (*train)->size(); ++i) {
    ASSERT_TRUE((*train)->Read(i, &image).ok());
    EXPECT_EQ((*train)->label(i), train_labels_[i]);
    // Channel-planar: the record's bytes are the image's CHW bytes.
    EXPECT_EQ(image.pixels, std::vector<uint8_t>(train_pixels_.begin() + i * 3072,
                                                 train_pixels_.begin() + (i + 1) * 3072));
  }
  absl::StatusOr<std::unique_ptr<InMemoryDataset>> test = LoadCifar10(dir, Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ((*test)->size(), 4);
  EXPECT_EQ((*test)->info().channels, 3);
}

TEST_F(Cifar10Test, AcceptsTheTarballsParentDirectory) {
  const std::string parent = testing::MakeTempDir("cifar_parent");
  WriteAll(parent + "/cifar-10-batches-bin");
  absl::StatusOr<std::unique_ptr<InMemoryDataset>> test = LoadCifar10(parent, Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_THAT((*test)->info().source, HasSubstr("cifar-10-batches-bin"));
}

TEST_F(Cifar10Test, MissingDirectoryExplainsHowToGetTheData) {
  const absl::Status s = LoadCifar10("/nonexistent/cifar", Split::kTrain).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("/nonexistent/cifar"), HasSubstr("binary version")));
}

TEST_F(Cifar10Test, MissingBatchFileIsNamed) {
  const std::string dir = testing::MakeTempDir("cifar_missing");
  WriteAll(dir);
  std::filesystem::remove(dir + "/data_batch_4.bin");
  const absl::Status s = LoadCifar10(dir, Split::kTrain).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr(dir + "/data_batch_4.bin"));
}

TEST_F(Cifar10Test, SizeThatIsNotWholeRecordsIsReported) {
  const std::string dir = testing::MakeTempDir("cifar_size");
  WriteAll(dir);
  std::vector<uint8_t> bytes = testing::ReadBytes(dir + "/test_batch.bin");
  bytes.pop_back();
  testing::WriteBytes(dir + "/test_batch.bin", bytes);
  const absl::Status s = LoadCifar10(dir, Split::kTest).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("test_batch.bin"), HasSubstr(absl::StrCat(4 * 3073 - 1)),
                                 HasSubstr("3073-byte")));
}

TEST_F(Cifar10Test, EmptyFileIsReported) {
  const std::string dir = testing::MakeTempDir("cifar_empty");
  WriteAll(dir);
  testing::WriteBytes(dir + "/test_batch.bin", {});
  EXPECT_EQ(LoadCifar10(dir, Split::kTest).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(Cifar10Test, LabelOutOfRangeNamesFileRecordAndValue) {
  const std::string dir = testing::MakeTempDir("cifar_label");
  WriteAll(dir);
  std::vector<uint8_t> bytes = testing::ReadBytes(dir + "/test_batch.bin");
  bytes[2 * 3073] = 11;
  testing::WriteBytes(dir + "/test_batch.bin", bytes);
  const absl::Status s = LoadCifar10(dir, Split::kTest).status();
  EXPECT_THAT(s.message(), AllOf(HasSubstr("test_batch.bin"), HasSubstr("record 2 has label 11")));
}

}  // namespace
}  // namespace mpq::data
