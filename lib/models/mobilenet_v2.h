// mobilenet_v2.h — MobileNet-V2 (Sandler et al., CVPR 2018, Table 2), width 1.0: 3x3/2
// conv 32, 17 inverted residual blocks (1x1 expansion by t, 3x3 depthwise, linear 1x1
// projection; identity shortcut where stride 1 and channels match), 1x1 conv 1280,
// global average pool, dropout 0.2, FC. 224x224: 3.5M parameters, 300M MACs. The
// network of Uhlich et al.'s and BitPruning's ImageNet rows.
//
// ReLU instead of the paper's ReLU6 (as our other networks: bounding the range is the
// activation quantizer's job). With QuantConfig::act_placement = kConvInput every conv
// but the first quantizes its input; kReluOutput is not offered (ModelEntry::
// relu_placement false): a block's output is linear, so ReLU-output quantization would
// leave the projections' outputs, which the next block reads, in float.
#pragma once

#include <memory>

#include "lib/models/model.h"

namespace mpq::models {
std::shared_ptr<Model> MakeMobileNetV2(const ModelOptions& options);
}
