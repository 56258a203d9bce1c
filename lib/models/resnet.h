// resnet.h — ResNets built from QConvBn units.
//
// resnet20: He et al., CVPR 2016, sec. 4.2 (CIFAR): 3x3 conv 16, three stages of 3 basic
//   blocks (16, 32, 64 channels, strides 1, 2, 2), global average pool, FC. Shortcut per
//   ModelOptions::shortcut ("A": identity with zero-padded channels, 0.27M parameters;
//   "B": 1x1 projection). Input 32x32 (Fashion-MNIST is zero-padded from 28 to 32 by its
//   pipeline, datasets/transforms.h).
// resnet18 / resnet50: He et al. 2016, Table 1 (ImageNet): 7x7/2 conv 64, 3x3/2 max pool,
//   basic blocks [2, 2, 2, 2] or bottlenecks [3, 4, 6, 3] with 1x1 projection shortcuts,
//   global average pool, FC (torchvision's layout: stride in the 3x3 conv).
#pragma once

#include <memory>

#include "lib/models/model.h"

namespace mpq::models {

std::shared_ptr<Model> MakeResNet20(const ModelOptions& options);
std::shared_ptr<Model> MakeResNet18(const ModelOptions& options);
std::shared_ptr<Model> MakeResNet50(const ModelOptions& options);

}  // namespace mpq::models
