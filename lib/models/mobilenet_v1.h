// mobilenet_v1.h — MobileNet-V1 (Howard et al., 2017, Table 1), width 1.0: 3x3/2 conv 32,
// 13 depthwise-separable blocks (3x3 depthwise + 1x1 pointwise, each with BN and ReLU),
// global average pool, FC. 224x224: 4.2M parameters, 569M MACs.
#pragma once

#include <memory>

#include "lib/models/model.h"

namespace mpq::models {
std::shared_ptr<Model> MakeMobileNetV1(const ModelOptions& options);
}
