// In-memory datasets, the stratified validation split and the synthetic dataset.
#include "datasets/dataset.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "datasets/synthetic.h"

namespace mpq::data {
namespace {

using ::testing::Each;
using ::testing::HasSubstr;

std::unique_ptr<InMemoryDataset> Synthetic(int64_t n, uint64_t seed = 0, uint64_t stream = 0) {
  SyntheticOptions o;
  o.num_examples = n;
  o.seed = seed;
  o.stream = stream;
  absl::StatusOr<std::unique_ptr<InMemoryDataset>> ds = MakeSynthetic(o);
  EXPECT_TRUE(ds.ok()) << ds.status();
  return std::move(*ds);
}

TEST(InMemoryDatasetTest, CreateRejectsInconsistentInput) {
  DatasetInfo info{"x", "here", 10, 1, 2, 2, {{0.5f}, {0.5f}}, {}, false};
  EXPECT_THAT(InMemoryDataset::Create(info, std::vector<uint8_t>(7), {1, 2}).status().message(),
              HasSubstr("7 pixel bytes for 2 labels; expected 8"));
  EXPECT_THAT(InMemoryDataset::Create(info, std::vector<uint8_t>(8), {1, 10}).status().message(),
              HasSubstr("label 10 of example 1"));
  EXPECT_THAT(InMemoryDataset::Create(info, {}, {}).status().message(), HasSubstr("no examples"));
  Image image;
  absl::StatusOr<std::unique_ptr<InMemoryDataset>> ok = InMemoryDataset::Create(info, std::vector<uint8_t>(8), {1, 2});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)->Read(2, &image).code(), absl::StatusCode::kOutOfRange);
}

TEST(SplitTrainValidationTest, IsStratifiedDisjointAndComplete) {
  std::unique_ptr<InMemoryDataset> ds = Synthetic(1000);
  absl::StatusOr<TrainValidationSplit> split = SplitTrainValidation(*ds, 0.1, 3);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_THAT(ClassHistogram(*ds, split->validation), Each(10));
  EXPECT_THAT(ClassHistogram(*ds, split->train), Each(90));
  std::set<int64_t> all(split->train.begin(), split->train.end());
  for (int64_t i : split->validation) EXPECT_TRUE(all.insert(i).second) << "index " << i << " in both";
  EXPECT_EQ(all.size(), 1000u);
  EXPECT_TRUE(std::is_sorted(split->validation.begin(), split->validation.end()));
}

TEST(SplitTrainValidationTest, IsDeterministicPerSeed) {
  std::unique_ptr<InMemoryDataset> ds = Synthetic(500);
  EXPECT_EQ(SplitTrainValidation(*ds, 0.2, 1)->validation, SplitTrainValidation(*ds, 0.2, 1)->validation);
  EXPECT_NE(SplitTrainValidation(*ds, 0.2, 1)->validation, SplitTrainValidation(*ds, 0.2, 2)->validation);
  EXPECT_TRUE(SplitTrainValidation(*ds, 0.0, 1)->validation.empty());
}

TEST(SplitTrainValidationTest, RejectsFractionsOutsideZeroOne) {
  std::unique_ptr<InMemoryDataset> ds = Synthetic(100);
  for (double bad : {-0.1, 1.0, 1.5, std::nan("")}) {
    EXPECT_THAT(SplitTrainValidation(*ds, bad, 0).status().message(), HasSubstr("must be in [0, 1)")) << bad;
  }
}

TEST(SyntheticTest, IsDeterministicAndBalanced) {
  std::unique_ptr<InMemoryDataset> a = Synthetic(300, 5), b = Synthetic(300, 5), c = Synthetic(300, 6);
  EXPECT_TRUE(std::equal(a->pixels(), a->pixels() + 300 * 784, b->pixels()));
  EXPECT_FALSE(std::equal(a->pixels(), a->pixels() + 300 * 784, c->pixels()));
  EXPECT_THAT(ClassHistogram(*a), Each(30));
}

// The classes are separable: a nearest-class-mean classifier fitted on one stream
// classifies an independent stream of the same seed almost perfectly.
TEST(SyntheticTest, ClassesAreLearnableAcrossStreams) {
  std::unique_ptr<InMemoryDataset> train = Synthetic(500, 9, 0), test = Synthetic(200, 9, 1);
  const int64_t d = train->image_bytes();
  std::vector<double> means(10 * d, 0.0);
  for (int64_t i = 0; i < train->size(); ++i) {
    for (int64_t p = 0; p < d; ++p) means[train->label(i) * d + p] += train->pixels()[i * d + p] / 50.0;
  }
  int correct = 0;
  for (int64_t i = 0; i < test->size(); ++i) {
    int64_t best = -1;
    double best_dist = 1e300;
    for (int64_t k = 0; k < 10; ++k) {
      double dist = 0;
      for (int64_t p = 0; p < d; ++p) dist += std::pow(test->pixels()[i * d + p] - means[k * d + p], 2);
      if (dist < best_dist) best_dist = dist, best = k;
    }
    correct += best == test->label(i);
  }
  EXPECT_GT(correct, 190);
}

TEST(SyntheticTest, RejectsBadOptions) {
  SyntheticOptions o;
  o.num_classes = 0;
  EXPECT_THAT(MakeSynthetic(o).status().message(), HasSubstr("num_classes 0"));
}

}  // namespace
}  // namespace mpq::data
