#include "lib/models/registry.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/models/alexnet.h"
#include "lib/models/googlenet.h"
#include "lib/models/inception_v3.h"
#include "lib/models/mobilenet_v1.h"
#include "lib/models/mobilenet_v2.h"
#include "lib/models/resnet.h"
#include "lib/models/vgg_small.h"

namespace mpq::models {
namespace {

const ModelEntry kModels[] = {
    {"resnet20", 32, 1, 1, 10, MakeResNet20, 0.27, 40.8,
     "He et al., CVPR 2016, Table 6 (0.27M); MACs as commonly reported for option A (40.8M)", true},
    {"vgg_small", 32, 8, 8, 10, MakeVggSmall, 4.66, 608.0,
     "LQ-Net (Zhang et al., ECCV 2018) architecture; counts computed from it (no table gives them)", true},
    {"mobilenet_v1", 224, 1, 1, 1000, MakeMobileNetV1, 4.2, 569.0, "Howard et al., 2017 (1.0 MobileNet-224: 4.2M parameters, 569M mult-adds)", true},
    {"mobilenet_v2", 224, 1, 1, 1000, MakeMobileNetV2, 3.50, 300.0,
     "Sandler et al., CVPR 2018, Table 4 (300M mult-adds; 3.4M parameters there, 3.50M in the torchvision model card)"},
    {"resnet18", 224, 1, 1, 1000, MakeResNet18, 11.7, 1820.0, "torchvision model card (11.69M, 1.81 GFLOPS); He et al. 1.8G", true},
    {"resnet50", 224, 1, 1, 1000, MakeResNet50, 25.6, 4090.0, "torchvision model card (25.56M, 4.09 GFLOPS)", true},
    {"alexnet", 224, 63, 1, 1000, MakeAlexNet, 61.1, 714.0, "torchvision model card (61.1M, 0.71 GFLOPS)"},
    {"googlenet", 224, 15, 1, 1000, MakeGoogLeNet, 6.6, 1500.0, "torchvision model card (6.62M, 1.5 GFLOPS), no aux heads"},
    {"inception_v3", 299, 75, 1, 1000, MakeInceptionV3, 23.8, 5710.0,
     "torchvision model card (27.16M with the aux head, 3.3M of it; 5.71 GFLOPS)"},
};

}  // namespace

absl::Span<const ModelEntry> Models() { return kModels; }

absl::StatusOr<const ModelEntry*> FindModel(absl::string_view name) {
  std::vector<std::string> names;
  for (const ModelEntry& e : kModels) {
    if (name == e.name) return &e;
    names.push_back(e.name);
  }
  return absl::NotFoundError(absl::StrCat("unknown model '", name, "'; valid: ", absl::StrJoin(names, ", ")));
}

}  // namespace mpq::models
