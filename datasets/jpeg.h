// jpeg.h — JPEG decoding and encoding with libjpeg-turbo's TurboJPEG API.
//
// Decoding produces an RGB planar Image (grayscale is expanded to three equal
// channels; CMYK/YCCK files, which ImageNet contains a few of, are converted). With
// `min_shorter_side` > 0 the decoder uses DCT-domain scaling by 1/2, 1/4 or 1/8 (the
// factors libjpeg-turbo vectorizes) to the smallest size whose shorter side is still
// >= min_shorter_side: several times faster for large photos, and it keeps later
// bilinear downscaling below 2x. Typical 500x375 ImageNet photos at min 256 decode at
// full size.
// Recoverable libjpeg warnings (e.g. extraneous bytes) are accepted; a truncated file
// ("premature end") and anything libjpeg cannot decode are errors naming `what`.
//
//   absl::StatusOr<Image> img = DecodeJpeg(bytes, "val/n01440764/x.JPEG", 256);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "datasets/image.h"

namespace mpq::data {

absl::StatusOr<Image> DecodeJpeg(absl::Span<const uint8_t> bytes, const std::string& what,
                                 int64_t min_shorter_side = 0);

// Encodes a 1- or 3-channel planar image (tests and benchmarks write datasets with it).
absl::StatusOr<std::vector<uint8_t>> EncodeJpeg(const Image& image, int quality = 90);

}  // namespace mpq::data
