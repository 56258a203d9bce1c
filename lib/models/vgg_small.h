// vgg_small.h — VGG-Small as used by LQ-Net (Zhang et al., ECCV 2018) and IMPQ for
// CIFAR-10: conv 3x3 (128, 128) - max pool - (256, 256) - max pool - (512, 512) - max pool
// - FC, every conv followed by BN and ReLU. 32x32 input: 4.66M parameters, 0.61G MACs.
#pragma once

#include <memory>

#include "lib/models/model.h"

namespace mpq::models {
std::shared_ptr<Model> MakeVggSmall(const ModelOptions& options);
}
