// DataLoader: ordering, determinism across worker counts, epochs, option errors.
#include "datasets/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>

#include "datasets/synthetic.h"

namespace mpq::data {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<InMemoryDataset> Synthetic(int64_t n) {
  SyntheticOptions o;
  o.num_examples = n;
  o.seed = 4;
  return std::move(*MakeSynthetic(o));
}

std::vector<Batch> Epoch(DataLoader& loader, int64_t epoch) {
  loader.StartEpoch(epoch);
  std::vector<Batch> batches;
  Batch batch;
  while (true) {
    absl::StatusOr<bool> more = loader.Next(&batch);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    batches.push_back(batch);
  }
  return batches;
}

std::unique_ptr<DataLoader> MakeLoader(const Dataset& ds, std::vector<int64_t> indices, LoaderOptions o,
                                       Pipeline p = FashionMnistPipelines(32).train) {
  absl::StatusOr<std::unique_ptr<DataLoader>> loader = DataLoader::Create(ds, std::move(indices), p, o);
  EXPECT_TRUE(loader.ok()) << loader.status();
  return std::move(*loader);
}

std::vector<int64_t> Iota(int64_t n) {
  std::vector<int64_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

TEST(DataLoaderTest, EveryIndexOnceWithItsLabelAndShape) {
  std::unique_ptr<InMemoryDataset> ds = Synthetic(103);
  LoaderOptions o;
  o.batch_size = 10;
  o.shuffle = true;
  o.num_workers = 2;
  std::unique_ptr<DataLoader> loader = MakeLoader(*ds, Iota(103), o);
  EXPECT_EQ(loader->num_batches(), 11);
  std::vector<int64_t> seen;
  for (const Batch& b : Epoch(*loader, 0)) {
    ASSERT_EQ(b.images.dim(), 4);
    EXPECT_EQ(b.images.size(1), 1);
    EXPECT_EQ(b.images.size(2), 32);
    EXPECT_EQ(b.images.scalar_type(), at::kFloat);
    EXPECT_EQ(b.labels.scalar_type(), at::kLong);
    for (int64_t k = 0; k < b.labels.size(0); ++k) {
      EXPECT_EQ(b.labels[k].item<int64_t>(), ds->label(b.indices[k]));
      seen.push_back(b.indices[k]);
    }
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, Iota(103));
}

TEST(DataLoaderTest, BatchesAreBitIdenticalForAnyWorkerCount) {
  std::unique_ptr<InMemoryDataset> ds = Synthetic(90);
  LoaderOptions o;
  o.batch_size = 16;
  o.shuffle = true;
  o.seed = 77;
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 3}) {
    o.num_workers = workers;
    o.prefetch_batches = workers == 3 ? 2 : 4;
    runs.push_back(Epoch(*MakeLoader(*ds, Iota(90), o), 5));
  }
  for (size_t r = 1; r < runs.size(); ++r) {
    ASSERT_EQ(runs[r].size(), runs[0].size());
    for (size_t b = 0; b < runs[0].size(); ++b) {
      EXPECT_EQ(runs[r][b].indices, runs[0][b].indices);
      EXPECT_TRUE(runs[r][b].images.equal(runs[0][b].images)) << "run " << r << " batch " << b;
    }
  }
}

// Data-parallel shards: together, each global batch exactly, bit for bit (the same
// augmentation per example); every shard the same number of batches, empty ones kept.
TEST(DataLoaderTest, ShardsPartitionEveryBatchBitIdentically) {
  std::unique_ptr<InMemoryDataset> ds = Synthetic(37);
  LoaderOptions o;
  o.batch_size = 8;  // the last global batch has 5 examples: 1, 1, 1, 2 per shard of 4
  o.shuffle = true;
  o.seed = 9;
  const std::vector<Batch> whole = Epoch(*MakeLoader(*ds, Iota(37), o), 3);
  for (int count : {2, 3, 4, 6}) {
    std::vector<std::vector<Batch>> shards;
    for (int s = 0; s < count; ++s) {
      LoaderOptions so = o;
      so.shard_index = s;
      so.shard_count = count;
      so.num_workers = s % 2;  // threaded or not: the same batches
      shards.push_back(Epoch(*MakeLoader(*ds, Iota(37), so), 3));
      ASSERT_EQ(shards.back().size(), whole.size()) << "shard " << s << " of " << count;
    }
    for (size_t b = 0; b < whole.size(); ++b) {
      std::vector<int64_t> indices;
      std::vector<at::Tensor> images, labels;
      for (int s = 0; s < count; ++s) {
        const Batch& part = shards[s][b];
        indices.insert(indices.end(), part.indices.begin(), part.indices.end());
        images.push_back(part.images);
        labels.push_back(part.labels);
      }
      EXPECT_EQ(indices, whole[b].indices) << count << " shards, batch " << b;
      EXPECT_TRUE(at::cat(images).equal(whole[b].images)) << count << " shards, batch " << b;
      EXPECT_TRUE(at::cat(labels).equal(whole[b].labels)) << count << " shards, batch " << b;
    }
  }
  // 6 shards of the last batch of 5: one of them is empty, and is returned as such.
  LoaderOptions so = o;
  so.shard_count = 6;
  so.shard_index = 0;
  EXPECT_EQ(Epoch(*MakeLoader(*ds, Iota(37), so), 3).back().labels.size(0), 0);
  // Bad shard options name the problem.
  so.shard_index = 6;
  absl::StatusOr<std::unique_ptr<DataLoader>> bad = DataLoader::Create(*ds, Iota(37), FashionMnistPipelines(32).train, so);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("shard_index 6"));
}

TEST(DataLoaderTest, EpochsReshuffleAndRepeatAnEpochExactly) {
  std::unique_ptr<InMemoryDataset> ds = Synthetic(64);
  LoaderOptions o;
  o.batch_size = 64;
  o.shuffle = true;
  std::unique_ptr<DataLoader> loader = MakeLoader(*ds, Iota(64), o);
  const std::vector<Batch> e0 = Epoch(*loader, 0), e1 = Epoch(*loader, 1), e0_again = Epoch(*loader, 0);
  EXPECT_NE(e0[0].indices, e1[0].indices);
  EXPECT_EQ(e0[0].indices, e0_again[0].indices);
  EXPECT_TRUE(e0[0].images.equal(e0_again[0].images));
}

TEST(DataLoaderTest, RestartingMidEpochDiscardsPrefetchedBatches) {
  std::unique_ptr<InMemoryDataset> ds = Synthetic(200);
  LoaderOptions o;
  o.batch_size = 8;
  o.num_workers = 2;
  std::unique_ptr<DataLoader> loader = MakeLoader(*ds, Iota(200), o);
  loader->StartEpoch(0);
  Batch batch;
  ASSERT_TRUE(*loader->Next(&batch));
  ASSERT_TRUE(*loader->Next(&batch));
  const std::vector<Batch> fresh = Epoch(*loader, 0);
  EXPECT_EQ(fresh.size(), 25u);
  EXPECT_EQ(fresh[0].indices[0], 0);  // unshuffled: starts from the first index again
}

TEST(DataLoaderTest, DropLastAndSubsetsOfIndices) {
  std::unique_ptr<InMemoryDataset> ds = Synthetic(50);
  LoaderOptions o;
  o.batch_size = 8;
  o.drop_last = true;
  std::unique_ptr<DataLoader> loader = MakeLoader(*ds, {3, 5, 7, 9, 11, 13, 15, 17, 19, 21}, o);
  const std::vector<Batch> batches = Epoch(*loader, 0);
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].indices, (std::vector<int64_t>{3, 5, 7, 9, 11, 13, 15, 17}));
}

TEST(DataLoaderTest, BadOptionsAreErrors) {
  std::unique_ptr<InMemoryDataset> ds = Synthetic(10);
  LoaderOptions o;
  const Pipeline p = FashionMnistPipelines(28).eval;
  o.batch_size = 0;
  EXPECT_THAT(DataLoader::Create(*ds, Iota(10), p, o).status().message(), HasSubstr("batch_size 0"));
  o.batch_size = 4;
  EXPECT_THAT(DataLoader::Create(*ds, {0, 10}, p, o).status().message(), HasSubstr("index 10 out of range"));
  EXPECT_THAT(DataLoader::Create(*ds, {}, p, o).status().message(), HasSubstr("no examples"));
  absl::StatusOr<std::unique_ptr<DataLoader>> loader = DataLoader::Create(*ds, Iota(10), p, o);
  ASSERT_TRUE(loader.ok());
  Batch batch;
  EXPECT_THAT((*loader)->Next(&batch).status().message(), HasSubstr("StartEpoch"));
}

// Batches come out on the loader's device, decoded on the CPU: "meta" is the device a
// CPU-only LibTorch has besides the CPU. Pinning and CUDA need a CUDA LibTorch.
TEST(DataLoaderTest, BatchesComeOnTheLoadersDevice) {
  std::unique_ptr<InMemoryDataset> ds = Synthetic(10);
  LoaderOptions o;
  o.batch_size = 4;
  const std::vector<Batch> on_cpu = Epoch(*MakeLoader(*ds, Iota(10), o), 0);
  o.device = c10::Device(c10::kMeta);
  const std::vector<Batch> on_meta = Epoch(*MakeLoader(*ds, Iota(10), o), 0);
  ASSERT_EQ(on_meta.size(), on_cpu.size());
  for (size_t i = 0; i < on_meta.size(); ++i) {
    EXPECT_EQ(on_meta[i].images.device(), c10::Device(c10::kMeta));
    EXPECT_EQ(on_meta[i].labels.device(), c10::Device(c10::kMeta));
    EXPECT_EQ(on_meta[i].images.sizes(), on_cpu[i].images.sizes());
    EXPECT_EQ(on_meta[i].indices, on_cpu[i].indices);
    EXPECT_EQ(on_cpu[i].images.device(), c10::Device(c10::kCPU));
  }
  Batch same = on_cpu[0];
  const void* data = same.images.data_ptr();
  ToDevice(&same, c10::Device(c10::kCPU));
  EXPECT_EQ(same.images.data_ptr(), data);  // already there: no copy

  if (at::globalContext().hasCUDA()) GTEST_SKIP() << "a CUDA LibTorch can pin and place on CUDA";
  LoaderOptions pinned;
  pinned.pin_memory = true;
  const absl::Status p = DataLoader::Create(*ds, Iota(10), FashionMnistPipelines(28).eval, pinned).status();
  EXPECT_EQ(p.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(p.message()), HasSubstr("pin_memory needs CUDA, and this LibTorch has none"));
  LoaderOptions cuda;
  cuda.device = c10::Device(c10::kCUDA, 0);
  EXPECT_THAT(std::string(DataLoader::Create(*ds, Iota(10), FashionMnistPipelines(28).eval, cuda).status().message()),
              HasSubstr("cuda:0 needs CUDA, and this LibTorch has none"));
}

}  // namespace
}  // namespace mpq::data
