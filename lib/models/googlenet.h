// googlenet.h — GoogLeNet (Szegedy et al., CVPR 2015) in torchvision's layout, without
// the auxiliary heads: BN after every conv, and (as torchvision) a 3x3 conv in the
// "5x5" branch. 224x224: 6.6M parameters, 1.5G MACs. Max pools use ceil mode.
#pragma once

#include <memory>

#include "lib/models/model.h"

namespace mpq::models {
std::shared_ptr<Model> MakeGoogLeNet(const ModelOptions& options);
}
