// alexnet.h — AlexNet in torchvision's single-tower layout (Krizhevsky 2014 "one weird
// trick"), as EdMIPS evaluates it, with BatchNorm after each conv: conv 11x11/4 64 - max
// pool - 5x5 192 - max pool - 3x3 384, 256, 256 - max pool - adaptive avg pool 6x6 - FC
// 4096 - FC 4096 - FC. 224x224: 61.1M parameters, 0.71G MACs. Dropout 0.5 before the FCs.
#pragma once

#include <memory>

#include "lib/models/model.h"

namespace mpq::models {
std::shared_ptr<Model> MakeAlexNet(const ModelOptions& options);
}
