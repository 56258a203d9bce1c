#include "datasets/registry.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "datasets/cifar10.h"
#include "datasets/fashion_mnist.h"
#include "datasets/imagenet.h"
#include "datasets/synthetic.h"

namespace mpq::data {
namespace {

template <typename T>
absl::StatusOr<std::unique_ptr<Dataset>> Upcast(absl::StatusOr<std::unique_ptr<T>> ds) {
  if (!ds.ok()) return ds.status();
  return std::unique_ptr<Dataset>(std::move(*ds));
}

const DatasetEntry kDatasets[] = {
    {"fashion_mnist", kFashionMnistDefaultDir, "install Debian's dataset-fashion-mnist (tools/setup.sh does)",
     [](const std::string& dir, Split split) { return Upcast(LoadFashionMnist(dir, split)); },
     [](int64_t size) { return FashionMnistPipelines(size == 0 ? 28 : size); }, 28, 0},
    {"cifar10", "", kCifar10HowToGet,
     [](const std::string& dir, Split split) { return Upcast(LoadCifar10(dir, split)); },
     [](int64_t) { return Cifar10Pipelines(); }, 32, 32},
    {"imagenet", "", kImageNetHowToGet,
     [](const std::string& dir, Split split) { return Upcast(LoadImageNet(dir, split)); },
     [](int64_t size) { return size == 0 ? ImageNetPipelines() : ImageNetPipelines(size, size * 8 / 7); }, 1, 0},
    {"synthetic", "", "generated in memory (seed 0): 2048 train / 512 test 1x28x28 images, 10 classes",
     [](const std::string&, Split split) {
       SyntheticOptions o;
       o.num_examples = split == Split::kTrain ? 2048 : 512;
       o.stream = split == Split::kTrain ? 0 : 1;  // same classes, independent examples
       return Upcast(MakeSynthetic(o));
     },
     [](int64_t size) { return FashionMnistPipelines(size == 0 ? 28 : size); }, 28, 0},
};

}  // namespace

absl::Span<const DatasetEntry> Datasets() { return kDatasets; }

absl::StatusOr<const DatasetEntry*> FindDataset(absl::string_view name) {
  std::vector<std::string> names;
  for (const DatasetEntry& entry : kDatasets) {
    if (name == entry.name) return &entry;
    names.push_back(entry.name);
  }
  return absl::NotFoundError(absl::StrCat("unknown dataset '", name, "'; valid: ", absl::StrJoin(names, ", ")));
}

}  // namespace mpq::data
