#include "datasets/loader.h"

#include <ATen/Context.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "datasets/random.h"

namespace mpq::data {

absl::StatusOr<std::unique_ptr<DataLoader>> DataLoader::Create(const Dataset& dataset, std::vector<int64_t> indices,
                                                               Pipeline pipeline, LoaderOptions options) {
  const std::string& name = dataset.info().name;
  if (options.batch_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, " loader: batch_size ", options.batch_size, " must be > 0"));
  }
  if (options.num_workers < 0 || options.prefetch_batches <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, " loader: num_workers ", options.num_workers,
                                                   " must be >= 0 and prefetch_batches ", options.prefetch_batches,
                                                   " > 0"));
  }
  if (options.shard_count < 1 || options.shard_index < 0 || options.shard_index >= options.shard_count) {
    return absl::InvalidArgumentError(absl::StrCat(name, " loader: shard_index ", options.shard_index,
                                                   " must be in [0, shard_count ", options.shard_count, ")"));
  }
  for (int64_t i : indices) {
    if (i < 0 || i >= dataset.size()) {
      return absl::OutOfRangeError(
          absl::StrCat(name, " loader: index ", i, " out of range [0, ", dataset.size(), ")"));
    }
  }
  if (indices.empty()) return absl::InvalidArgumentError(absl::StrCat(name, " loader: no examples to load"));
  if ((options.pin_memory || options.device.is_cuda()) && !at::globalContext().hasCUDA()) {
    return absl::FailedPreconditionError(absl::StrCat(
        name, " loader: ", options.pin_memory ? "pin_memory" : options.device.str(),
        " needs CUDA, and this LibTorch has none (or no GPU is visible); use the CPU"));
  }
  const DatasetInfo& info = dataset.info();
  const int64_t in_h = std::max(info.height, pipeline.pad_to), in_w = std::max(info.width, pipeline.pad_to);
  int64_t height = 0, width = 0;
  if (absl::Status s = pipeline.OutputSize(in_h, in_w, &height, &width); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(name, " loader: ", s.message()));
  }
  return std::unique_ptr<DataLoader>(new DataLoader(dataset, std::move(indices), std::move(pipeline), options,
                                                    info.channels, height, width));
}

DataLoader::DataLoader(const Dataset& dataset, std::vector<int64_t> indices, Pipeline pipeline,
                       LoaderOptions options, int64_t channels, int64_t height, int64_t width)
    : dataset_(dataset),
      indices_(std::move(indices)),
      pipeline_(std::move(pipeline)),
      options_(options),
      channels_(channels),
      height_(height),
      width_(width) {
  for (int i = 0; i < options_.num_workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

DataLoader::~DataLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

int64_t DataLoader::num_batches() const {
  const int64_t n = num_examples(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::string DataLoader::first_skip_error() const {
  std::lock_guard<std::mutex> lock(skip_mutex_);
  return first_skip_error_;
}

void DataLoader::StartEpoch(int64_t epoch) {
  std::unique_lock<std::mutex> lock(mutex_);
  ++generation_;  // batches still being built for the old epoch are discarded
  ready_cv_.wait(lock, [this] { return busy_ == 0; });
  ready_.clear();
  order_ = indices_;
  if (options_.shuffle) Rng(MixSeed(options_.seed, static_cast<uint64_t>(epoch), 0x6f72646572ULL)).Shuffle(order_);
  epoch_ = epoch;
  next_to_make_ = 0;
  next_to_consume_ = 0;
  lock.unlock();
  work_cv_.notify_all();
}

absl::StatusOr<Batch> DataLoader::MakeBatch(int64_t batch_index, int64_t epoch) const {
  const int64_t global_begin = batch_index * options_.batch_size;
  const int64_t global_end = std::min<int64_t>(global_begin + options_.batch_size, static_cast<int64_t>(order_.size()));
  const int64_t global_n = global_end - global_begin;
  const int64_t begin = global_begin + global_n * options_.shard_index / options_.shard_count;
  const int64_t end = global_begin + global_n * (options_.shard_index + 1) / options_.shard_count;
  const int64_t n = end - begin;
  const int64_t example_floats = channels_ * height_ * width_;
  Batch batch;
  batch.images = at::empty({n, channels_, height_, width_}, at::TensorOptions(at::kFloat).pinned_memory(options_.pin_memory));
  batch.labels = at::empty({n}, at::kLong);
  float* images = batch.images.data_ptr<float>();
  int64_t* labels = batch.labels.data_ptr<int64_t>();
  thread_local Image image;  // reused: decoding buffers are the loader's hot allocation
  const int64_t min_shorter_side = pipeline_.MinShorterSide();
  int64_t filled = 0;
  for (int64_t k = begin; k < end; ++k) {
    const int64_t index = order_[k];
    absl::Status status = dataset_.Read(index, &image, min_shorter_side);
    if (status.ok()) {
      Rng rng(MixSeed(options_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index)));
      status = pipeline_.Apply(image, dataset_.info().normalization, rng, images + filled * example_floats);
    }
    if (!status.ok()) {
      if (options_.on_bad_example == BadExamplePolicy::kFail) return status;
      if (skipped_.fetch_add(1) == 0) {
        std::lock_guard<std::mutex> lock(skip_mutex_);
        first_skip_error_ = std::string(status.message());
      }
      continue;
    }
    labels[filled] = dataset_.label(index);
    batch.indices.push_back(index);
    ++filled;
  }
  if (filled < n) {
    batch.images = batch.images.narrow(0, 0, filled);
    batch.labels = batch.labels.narrow(0, 0, filled);
  }
  return batch;
}

void DataLoader::WorkerLoop() {
  while (true) {
    std::unique_lock<std::mutex> lock(mutex_);
    work_cv_.wait(lock, [this] {
      return stop_ || (epoch_ >= 0 && next_to_make_ < num_batches() &&
                       next_to_make_ < next_to_consume_ + options_.prefetch_batches);
    });
    if (stop_) return;
    const int64_t batch_index = next_to_make_++;
    const int64_t generation = generation_;
    const int64_t epoch = epoch_;
    ++busy_;
    lock.unlock();

    absl::StatusOr<Batch> batch = MakeBatch(batch_index, epoch);

    lock.lock();
    --busy_;
    if (generation == generation_) ready_.emplace(batch_index, std::move(batch));
    lock.unlock();
    ready_cv_.notify_all();
  }
}

absl::StatusOr<bool> DataLoader::Next(Batch* batch) {
  while (true) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (epoch_ < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(dataset_.info().name, " loader: call StartEpoch() before Next()"));
    }
    if (next_to_consume_ >= num_batches()) return false;
    const int64_t batch_index = next_to_consume_;
    absl::StatusOr<Batch> result;
    if (workers_.empty()) {
      result = MakeBatch(batch_index, epoch_);
    } else {
      ready_cv_.wait(lock, [&] { return ready_.count(batch_index) > 0; });
      auto it = ready_.find(batch_index);
      result = std::move(it->second);
      ready_.erase(it);
    }
    ++next_to_consume_;
    lock.unlock();
    work_cv_.notify_all();  // room for one more prefetched batch
    if (!result.ok()) return result.status();
    // Every example of this batch was skipped: the next one (one shard of several returns
    // it, empty, to keep in step with the others).
    if (result->labels.size(0) == 0 && options_.shard_count == 1) continue;
    *batch = std::move(*result);
    ToDevice(batch, options_.device);
    return true;
  }
}

void ToDevice(Batch* batch, const c10::Device& device) {
  if (batch->images.defined() && batch->images.device() != device) {
    batch->images = batch->images.to(device, /*non_blocking=*/true);
  }
  if (batch->labels.defined() && batch->labels.device() != device) {
    batch->labels = batch->labels.to(device, /*non_blocking=*/true);
  }
}

}  // namespace mpq::data
