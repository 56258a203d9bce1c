// inception_v3.h — Inception-V3 (Szegedy et al., CVPR 2016) in torchvision's layout,
// without the auxiliary head. 299x299: 23.8M parameters (27.2M with the aux head),
// 5.7G MACs.
#pragma once

#include <memory>

#include "lib/models/model.h"

namespace mpq::models {
std::shared_ptr<Model> MakeInceptionV3(const ModelOptions& options);
}
