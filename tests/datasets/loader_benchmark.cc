// Loader throughput (images/s) for CIFAR-format files and JPEG folders.
//
//   bazel run -c opt //tests/datasets:loader_benchmark
//
// Each family runs its baseline first and the other rows report `x_vs_baseline` =
// their images/s divided by the baseline's, measured in the same run:
// - Cifar/JpegFolder families: baseline `workers:0` (decode and augment on the
//   consumer's thread, as a naive training loop does) vs 1 and 2 worker threads.
// - LargeJpegEval: baseline full-resolution decoding (torchvision's behaviour) vs
//   DCT-scaled decoding (the default) on 1600x1200 photos.
#include <benchmark/benchmark.h>

#include <ATen/Parallel.h>

#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "datasets/cifar10.h"
#include "datasets/imagenet.h"
#include "datasets/loader.h"
#include "datasets/random.h"
#include "tests/datasets/format_writers.h"

namespace mpq::data {
namespace {

// Rates of each family's baseline row, keyed by family name.
std::map<std::string, double>& BaselineRates() {
  static std::map<std::string, double> rates;
  return rates;
}

const Dataset& CifarFormatData() {
  static const std::unique_ptr<Dataset> ds = [] {
    const std::string dir = testing::MakeTempDir("bench_cifar");
    Rng rng(1);
    for (int b = 0; b <= 5; ++b) {
      std::vector<uint8_t> labels(2000), pixels(2000 * 3072);
      for (uint8_t& l : labels) l = static_cast<uint8_t>(rng.UniformInt(10));
      for (uint8_t& p : pixels) p = static_cast<uint8_t>(rng.Next());
      testing::WriteCifarBatch(b == 0 ? dir + "/test_batch.bin" : absl::StrCat(dir, "/data_batch_", b, ".bin"),
                               labels, pixels);
    }
    return std::unique_ptr<Dataset>(std::move(*LoadCifar10(dir, Split::kTrain)));
  }();
  return *ds;
}

// 4 classes x 64 photos of 500x375, the typical ImageNet size.
const Dataset& JpegFolderData() {
  static const std::unique_ptr<Dataset> ds = [] {
    const std::string dir = testing::MakeTempDir("bench_jpeg");
    testing::WriteJpegFolder(dir + "/train", {"n0", "n1", "n2", "n3"}, 64, 500, 375, 2);
    testing::WriteJpegFolder(dir + "/val", {"n0"}, 1, 500, 375, 3);
    return std::unique_ptr<Dataset>(std::move(*LoadImageNet(dir, Split::kTrain)));
  }();
  return *ds;
}

// Large photos (1600x1200), where DCT-scaled decoding applies (1/4 for shorter side 256).
const Dataset& LargeJpegData() {
  static const std::unique_ptr<Dataset> ds = [] {
    const std::string dir = testing::MakeTempDir("bench_jpeg_large");
    testing::WriteJpegFolder(dir + "/train", {"n0", "n1"}, 12, 1600, 1200, 4);
    testing::WriteJpegFolder(dir + "/val", {"n0"}, 1, 1600, 1200, 5);
    return std::unique_ptr<Dataset>(std::move(*LoadImageNet(dir, Split::kTrain)));
  }();
  return *ds;
}

// Runs whole epochs; the family's baseline row stores its rate, later rows of the same
// family report x_vs_<baseline> = their rate / the baseline's.
void RunEpochs(benchmark::State& state, const std::string& family, bool is_baseline, const Dataset& ds,
               const Pipeline& pipeline, int64_t batch_size) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.shuffle = true;
  o.num_workers = static_cast<int>(state.range(0));
  std::vector<int64_t> indices(ds.size());
  for (int64_t i = 0; i < ds.size(); ++i) indices[i] = i;
  absl::StatusOr<std::unique_ptr<DataLoader>> loader = DataLoader::Create(ds, indices, pipeline, o);
  if (!loader.ok()) return state.SkipWithError(std::string(loader.status().message()).c_str());
  int64_t images = 0, epoch = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    (*loader)->StartEpoch(epoch++);
    Batch batch;
    while (true) {
      absl::StatusOr<bool> more = (*loader)->Next(&batch);
      if (!more.ok()) return state.SkipWithError(std::string(more.status().message()).c_str());
      if (!*more) break;
      images += batch.labels.size(0);
      benchmark::DoNotOptimize(batch.images.data_ptr());
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rate = images / seconds;
  state.SetItemsProcessed(images);
  if (is_baseline) BaselineRates()[family] = rate;
  const auto baseline = BaselineRates().find(family);
  if (baseline != BaselineRates().end()) state.counters["x_vs_baseline"] = rate / baseline->second;
}

void BM_CifarFormatTrain(benchmark::State& state) {
  RunEpochs(state, "cifar_train", state.range(0) == 0, CifarFormatData(), Cifar10Pipelines().train, 128);
}
BENCHMARK(BM_CifarFormatTrain)->ArgName("workers")->Arg(0)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_JpegFolderTrain(benchmark::State& state) {
  RunEpochs(state, "jpeg_train", state.range(0) == 0, JpegFolderData(), ImageNetPipelines().train, 32);
}
BENCHMARK(BM_JpegFolderTrain)->ArgName("workers")->Arg(0)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_JpegFolderEval(benchmark::State& state) {
  RunEpochs(state, "jpeg_eval", state.range(0) == 0, JpegFolderData(), ImageNetPipelines().eval, 32);
}
BENCHMARK(BM_JpegFolderEval)->ArgName("workers")->Arg(0)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

// Large photos, eval pipeline, one thread: full decoding (torchvision's behaviour, the
// baseline) against DCT-scaled decoding (the default).
void BM_LargeJpegEval(benchmark::State& state) {
  Pipeline p = ImageNetPipelines().eval;
  p.reduced_decode = state.range(0) == 1;
  RunEpochs(state, "jpeg_large_eval", !p.reduced_decode, LargeJpegData(), p, 8);
}
BENCHMARK(BM_LargeJpegEval)->ArgName("reduced_decode")->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace mpq::data

int main(int argc, char** argv) {
  at::set_num_threads(1);  // the loader's threads are the parallelism measured here
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
