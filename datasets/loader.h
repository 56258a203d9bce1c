// loader.h — DataLoader: turns a Dataset and a list of example indices into
// normalized float32 NCHW batches with int64 labels, decoded on worker threads.
//
//   LoaderOptions options;  options.batch_size = 128;  options.shuffle = true;  options.seed = 1;
//   absl::StatusOr<std::unique_ptr<DataLoader>> loader =
//       DataLoader::Create(*train, split.train, FashionMnistPipelines(32).train, options);
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     (*loader)->StartEpoch(epoch);
//     Batch batch;
//     while (true) {
//       absl::StatusOr<bool> more = (*loader)->Next(&batch);
//       if (!more.ok()) return more.status();     // names the bad file (kFail)
//       if (!*more) break;
//       Train(batch.images, batch.labels);
//     }
//   }
//
// Determinism: the example order of an epoch is a seeded shuffle of (seed, epoch), and
// each example's augmentation is drawn from Rng(MixSeed(seed, epoch, index)). Batches
// come out in order whatever the number of workers, so a run is reproducible
// bit-for-bit for a given seed, batch size and pipeline.
//
// Prefetch: `num_workers` threads each build whole batches, up to `prefetch_batches`
// ahead of the consumer, so decoding overlaps training. num_workers = 0 builds each
// batch on the calling thread (the baseline the loader benchmark compares against).
#pragma once

#include <ATen/core/Tensor.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "datasets/dataset.h"
#include "datasets/transforms.h"

namespace mpq::data {

struct Batch {
  at::Tensor images;              // float32 [n, C, H, W], normalized
  at::Tensor labels;              // int64 [n]
  std::vector<int64_t> indices;   // dataset index of each example, in batch order
};

// What to do with an example whose file cannot be decoded.
enum class BadExamplePolicy {
  kFail,  // Next() returns the error, naming the file (default)
  kSkip,  // drop it from its batch, count it (skipped()), keep the first error message
};

struct LoaderOptions {
  int64_t batch_size = 128;     // default 128
  bool shuffle = false;         // reshuffle every epoch; default off (evaluation)
  bool drop_last = false;       // drop a final partial batch; default off
  uint64_t seed = 0;            // shuffling and augmentation seed; default 0
  int num_workers = 1;          // decoding threads; 0 = on the caller's thread; default 1
  int prefetch_batches = 4;     // batches prepared ahead of the consumer; default 4
  BadExamplePolicy on_bad_example = BadExamplePolicy::kFail;
  // Data-parallel sharding (lib/dist): every shard walks the same global batches (same
  // order, same per-example augmentation seeds) and keeps its contiguous share of each:
  // examples [begin + n s / S, begin + n (s + 1) / S) of a global batch of n. The shards'
  // batches together are exactly the one-process batch. A shard's batch may then be
  // empty (n < S, or every example of its share skipped): it is returned, not skipped,
  // so that every shard takes the same number of steps. Default: one shard.
  int shard_index = 0;
  int shard_count = 1;
  // Where Next() delivers batches (ToDevice on the consumer's thread; the workers decode
  // on the CPU). Default the CPU.
  c10::Device device = c10::Device(c10::kCPU);
  // Batches decoded into page-locked host memory, so that their copy to a GPU does not
  // block. Only with a CUDA LibTorch (a CPU-only one cannot pin); default off.
  bool pin_memory = false;
};

// Moves a batch's images and labels to `device` (no-op where they are); from pinned
// memory the copy is asynchronous on the current CUDA stream, so it overlaps the step
// before it. The decoding stays on the loader's CPU workers.
void ToDevice(Batch* batch, const c10::Device& device);

class DataLoader {
 public:
  // Checks the options and that the pipeline's output size is known; `indices` must
  // be valid indices of `dataset` (e.g. TrainValidationSplit::train). The dataset
  // must outlive the loader.
  static absl::StatusOr<std::unique_ptr<DataLoader>> Create(const Dataset& dataset, std::vector<int64_t> indices,
                                                            Pipeline pipeline, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Begins epoch `epoch` (any order; the same epoch number gives the same batches).
  void StartEpoch(int64_t epoch);
  // Fills `batch` with the next batch and returns true; false at the end of the epoch.
  absl::StatusOr<bool> Next(Batch* batch);

  int64_t num_examples() const { return static_cast<int64_t>(indices_.size()); }
  int64_t num_batches() const;
  // Output shape of one example: {C, H, W}.
  std::vector<int64_t> example_shape() const { return {channels_, height_, width_}; }
  // Examples dropped under BadExamplePolicy::kSkip since construction, and why the first was.
  int64_t skipped() const { return skipped_.load(); }
  std::string first_skip_error() const;

 private:
  DataLoader(const Dataset& dataset, std::vector<int64_t> indices, Pipeline pipeline, LoaderOptions options,
             int64_t channels, int64_t height, int64_t width);
  absl::StatusOr<Batch> MakeBatch(int64_t batch_index, int64_t epoch) const;
  void WorkerLoop();

  const Dataset& dataset_;
  const std::vector<int64_t> indices_;
  const Pipeline pipeline_;
  const LoaderOptions options_;
  const int64_t channels_, height_, width_;

  mutable std::atomic<int64_t> skipped_{0};
  mutable std::mutex skip_mutex_;
  mutable std::string first_skip_error_;

  // Epoch state, guarded by mutex_. Workers read order_ and epoch_ only while busy_ > 0
  // counts them; StartEpoch waits for busy_ == 0 before replacing them.
  std::mutex mutex_;
  std::condition_variable work_cv_;   // workers wait for batches to build
  std::condition_variable ready_cv_;  // the consumer waits for a batch; StartEpoch for idle workers
  std::vector<int64_t> order_;
  int64_t epoch_ = -1;
  int64_t generation_ = 0;
  int64_t next_to_make_ = 0;
  int64_t next_to_consume_ = 0;
  int busy_ = 0;
  bool stop_ = false;
  std::map<int64_t, absl::StatusOr<Batch>> ready_;
  std::vector<std::thread> workers_;
};

}  // namespace mpq::data
