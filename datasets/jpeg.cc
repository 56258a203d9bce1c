#include "datasets/jpeg.h"

#include <turbojpeg.h>

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"

namespace mpq::data {
namespace {

// TurboJPEG handles are not thread-safe but are reusable: one per thread and purpose.
struct HandleDeleter {
  void operator()(void* h) const { tjDestroy(h); }
};
using Handle = std::unique_ptr<void, HandleDeleter>;

tjhandle DecompressHandle() {
  thread_local Handle handle(tjInitDecompress());
  return handle.get();
}

tjhandle CompressHandle() {
  thread_local Handle handle(tjInitCompress());
  return handle.get();
}

}  // namespace

absl::StatusOr<Image> DecodeJpeg(absl::Span<const uint8_t> bytes, const std::string& what,
                                 int64_t min_shorter_side) {
  tjhandle tj = DecompressHandle();
  if (tj == nullptr) return absl::InternalError("jpeg: tjInitDecompress failed");
  if (bytes.empty()) return absl::DataLossError(absl::StrCat(what, ": empty file, not a JPEG"));
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(tj, bytes.data(), bytes.size(), &width, &height, &subsampling, &colorspace) != 0) {
    return absl::DataLossError(absl::StrCat(what, ": not a readable JPEG (", tjGetErrorStr2(tj), ")"));
  }
  if (width <= 0 || height <= 0) {
    return absl::DataLossError(absl::StrCat(what, ": JPEG header gives size ", width, "x", height));
  }

  // The smallest DCT scaling factor whose output still has shorter side >= the hint.
  int out_w = width, out_h = height;
  if (min_shorter_side > 0) {
    int count = 0;
    const tjscalingfactor* factors = tjGetScalingFactors(&count);
    for (int i = 0; i < count; ++i) {
      const tjscalingfactor& f = factors[i];
      // Only 1/2, 1/4 and 1/8: libjpeg-turbo has SIMD IDCTs for those; the other
      // factors (3/4, 5/8, ...) run plain C and are slower than a full SIMD decode
      // (measured: 480 vs 790 images/s on 500x375 photos, loader_benchmark).
      if (f.num != 1 || (f.denom != 2 && f.denom != 4 && f.denom != 8)) continue;
      const int w = TJSCALED(width, f), h = TJSCALED(height, f);
      if (std::min(w, h) >= min_shorter_side && static_cast<int64_t>(w) * h < static_cast<int64_t>(out_w) * out_h) {
        out_w = w;
        out_h = h;
      }
    }
  }

  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  const int pixel_format = cmyk ? TJPF_CMYK : TJPF_RGB;
  const int pixel_size = tjPixelSize[pixel_format];
  std::vector<uint8_t> interleaved(static_cast<size_t>(out_w) * out_h * pixel_size);
  // Accurate (islow) IDCT, as PIL/torchvision use: TJFLAG_FASTDCT costs 2-3 levels
  // of error per pixel even at quality 100 (measured; see jpeg tests).
  if (tjDecompress2(tj, bytes.data(), bytes.size(), interleaved.data(), out_w, 0, out_h, pixel_format, 0) != 0) {
    const std::string message = tjGetErrorStr2(tj);
    // Warnings such as "extraneous bytes before marker" leave a complete image; a
    // premature end leaves a grey bottom: that is a truncated file, not an image.
    if (tjGetErrorCode(tj) != TJERR_WARNING || message.find("Premature end") != std::string::npos) {
      return absl::DataLossError(absl::StrCat(what, ": JPEG decoding failed (", message, ")"));
    }
  }

  Image image(3, out_h, out_w);
  const int64_t plane = static_cast<int64_t>(out_h) * out_w;
  uint8_t* r = image.plane(0);
  uint8_t* g = image.plane(1);
  uint8_t* b = image.plane(2);
  const uint8_t* src = interleaved.data();
  if (cmyk) {
    // libjpeg stores Adobe CMYK inverted: channel value = 255 - ink, so
    // R = C' * K' / 255 with C', K' the stored (inverted) values.
    for (int64_t i = 0; i < plane; ++i, src += 4) {
      const int k = src[3];
      r[i] = static_cast<uint8_t>(src[0] * k / 255);
      g[i] = static_cast<uint8_t>(src[1] * k / 255);
      b[i] = static_cast<uint8_t>(src[2] * k / 255);
    }
  } else {
    for (int64_t i = 0; i < plane; ++i, src += 3) {
      r[i] = src[0];
      g[i] = src[1];
      b[i] = src[2];
    }
  }
  return image;
}

absl::StatusOr<std::vector<uint8_t>> EncodeJpeg(const Image& image, int quality) {
  if (image.channels != 1 && image.channels != 3) {
    return absl::InvalidArgumentError(absl::StrCat("jpeg: cannot encode ", image.channels, " channels (1 or 3)"));
  }
  tjhandle tj = CompressHandle();
  if (tj == nullptr) return absl::InternalError("jpeg: tjInitCompress failed");
  const int64_t plane = image.height * image.width;
  std::vector<uint8_t> interleaved(static_cast<size_t>(plane * image.channels));
  for (int64_t i = 0; i < plane; ++i) {
    for (int64_t c = 0; c < image.channels; ++c) interleaved[i * image.channels + c] = image.plane(c)[i];
  }
  unsigned char* out = nullptr;
  unsigned long out_size = 0;  // NOLINT(runtime/int): TurboJPEG's type
  const int format = image.channels == 3 ? TJPF_RGB : TJPF_GRAY;
  const int subsampling = image.channels == 3 ? TJSAMP_420 : TJSAMP_GRAY;
  if (tjCompress2(tj, interleaved.data(), static_cast<int>(image.width), 0, static_cast<int>(image.height), format,
                  &out, &out_size, subsampling, quality, 0) != 0) {
    tjFree(out);
    return absl::InternalError(absl::StrCat("jpeg: encoding failed (", tjGetErrorStr2(tj), ")"));
  }
  std::vector<uint8_t> result(out, out + out_size);
  tjFree(out);
  return result;
}

}  // namespace mpq::data
