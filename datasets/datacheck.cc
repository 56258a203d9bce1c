// datacheck: loads a dataset through the same readers, split and loader that training
// uses, and prints what a researcher should see before trusting a run: example counts
// per split, the class histogram, pixel statistics against the normalization constants,
// and one epoch of loader throughput.
//
//   bazel run //datasets:datacheck                                  # Fashion-MNIST (default)
//   bazel run //datasets:datacheck -- --dataset=cifar10 --data_dir=/data/cifar10
//
// Exit status 0 when the data loads and passes the checks, 1 with a message naming
// the path and the problem otherwise.
#include <ATen/Parallel.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "datasets/loader.h"
#include "datasets/registry.h"

ABSL_FLAG(std::string, dataset, "fashion_mnist", "Dataset name (fashion_mnist, cifar10, imagenet, synthetic).");
ABSL_FLAG(std::string, data_dir, "", "Dataset directory; empty = the dataset's default location.");
ABSL_FLAG(double, validation_fraction, 0.1, "Fraction of each class held out from train for validation.");
ABSL_FLAG(uint64_t, seed, 0, "Split, shuffle and augmentation seed.");
ABSL_FLAG(int, workers, 1, "Loader worker threads (0 = decode on the main thread).");
ABSL_FLAG(int, batch_size, 128, "Loader batch size.");
ABSL_FLAG(int64_t, max_batches, 0, "Stop the throughput epoch after this many batches (0 = whole epoch).");

namespace mpq::data {
namespace {

absl::Status Run() {
  absl::StatusOr<const DatasetEntry*> entry = FindDataset(absl::GetFlag(FLAGS_dataset));
  if (!entry.ok()) return entry.status();
  std::string dir = absl::GetFlag(FLAGS_data_dir);
  if (dir.empty()) dir = (*entry)->default_dir;
  if (dir.empty() && std::string((*entry)->name) != "synthetic") {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s needs --data_dir: %s", (*entry)->name, (*entry)->how_to_get));
  }

  auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<Dataset>> train = (*entry)->load(dir, Split::kTrain);
  if (!train.ok()) return train.status();
  absl::StatusOr<std::unique_ptr<Dataset>> test = (*entry)->load(dir, Split::kTest);
  if (!test.ok()) return test.status();
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const DatasetInfo& info = (*train)->info();

  absl::StatusOr<TrainValidationSplit> split =
      SplitTrainValidation(**train, absl::GetFlag(FLAGS_validation_fraction), absl::GetFlag(FLAGS_seed));
  if (!split.ok()) return split.status();

  absl::PrintF("dataset      %s from %s (read in %.2f s)\n", info.name, info.source, load_s);
  absl::PrintF("classes      %d; stored images %dx%dx%d%s\n", info.num_classes, info.channels, info.height,
               info.width, info.height == 0 ? " (variable size)" : "");
  absl::PrintF("examples     train %d = %d train + %d validation (fraction %.2f, seed %d); test %d\n",
               (*train)->size(), split->train.size(), split->validation.size(),
               absl::GetFlag(FLAGS_validation_fraction), absl::GetFlag(FLAGS_seed), (*test)->size());
  absl::PrintF("per class    train      %s\n", absl::StrJoin(ClassHistogram(**train), " "));
  absl::PrintF("             validation %s\n", absl::StrJoin(ClassHistogram(**train, split->validation), " "));
  absl::PrintF("             test       %s\n", absl::StrJoin(ClassHistogram(**test), " "));

  // Pixel statistics of the raw training images against the normalization constants.
  if (const auto* in_memory = dynamic_cast<const InMemoryDataset*>(train->get())) {
    const int64_t plane = info.height * info.width;
    for (int64_t c = 0; c < info.channels; ++c) {
      double sum = 0, sum_sq = 0;
      for (int64_t i = 0; i < in_memory->size(); ++i) {
        const uint8_t* p = in_memory->pixels() + i * in_memory->image_bytes() + c * plane;
        for (int64_t k = 0; k < plane; ++k) {
          const double v = p[k] / 255.0;
          sum += v;
          sum_sq += v * v;
        }
      }
      const double n = static_cast<double>(in_memory->size()) * plane;
      const double mean = sum / n, stddev = std::sqrt(sum_sq / n - mean * mean);
      absl::PrintF("channel %d    pixel mean %.4f std %.4f (normalization constants %.4f / %.4f)\n", c, mean,
                   stddev, info.normalization.mean[c], info.normalization.std[c]);
    }
  }

  // One epoch of the training pipeline, as the trainer would see it.
  LoaderOptions options;
  options.batch_size = absl::GetFlag(FLAGS_batch_size);
  options.shuffle = true;
  options.seed = absl::GetFlag(FLAGS_seed);
  options.num_workers = absl::GetFlag(FLAGS_workers);
  absl::StatusOr<std::unique_ptr<DataLoader>> loader =
      DataLoader::Create(**train, split->train, (*entry)->pipelines(0).train, options);
  if (!loader.ok()) return loader.status();
  (*loader)->StartEpoch(0);
  Batch batch;
  int64_t images = 0, batches = 0;
  double sum = 0, sum_sq = 0;
  const int64_t max_batches = absl::GetFlag(FLAGS_max_batches);
  t0 = std::chrono::steady_clock::now();
  while (max_batches == 0 || batches < max_batches) {
    absl::StatusOr<bool> more = (*loader)->Next(&batch);
    if (!more.ok()) return more.status();
    if (!*more) break;
    images += batch.labels.size(0);
    ++batches;
    sum += batch.images.sum().item<double>();
    sum_sq += batch.images.square().sum().item<double>();
  }
  const double epoch_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double n = static_cast<double>(images) * batch.images[0].numel();
  const double mean = sum / n;
  absl::PrintF("loader       %d images in %d batches of [%s] in %.2f s: %.0f images/s (%d workers)\n", images,
               batches, absl::StrJoin((*loader)->example_shape(), "x"), epoch_s, images / epoch_s,
               options.num_workers);
  absl::PrintF("normalized   train-pipeline tensor mean %.3f std %.3f (expect near 0 and 1; padding shifts them)\n",
               mean, std::sqrt(sum_sq / n - mean * mean));
  if ((*loader)->skipped() > 0) {
    absl::PrintF("skipped      %d examples; first: %s\n", (*loader)->skipped(), (*loader)->first_skip_error());
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace mpq::data

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Loads a dataset as training would and prints its statistics.");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    absl::FPrintF(stderr, "datacheck: unexpected argument '%s' (flags only; see --help)\n", positional[1]);
    return 2;
  }
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  const absl::Status status = mpq::data::Run();
  if (!status.ok()) {
    absl::FPrintF(stderr, "datacheck: %s\n", status.message());
    return 1;
  }
  absl::PrintF("datacheck: OK\n");
  return 0;
}
