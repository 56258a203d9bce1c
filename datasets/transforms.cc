#include "datasets/transforms.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"

namespace mpq::data {
namespace {

// A rectangle of the (virtually padded) source in source-pixel coordinates.
struct Region {
  double top, left, height, width;
};

// Writes one normalized channel plane by integer crop: out(y, x) = canvas(top + y,
// left + x') with x' mirrored when flipping; the canvas is the image placed at
// (pad_y, pad_x) on a zero background.
void CropPlane(const Image& image, int64_t c, int64_t pad_y, int64_t pad_x, int64_t top, int64_t left,
               int64_t out_h, int64_t out_w, bool flip, float scale, float shift, float* out) {
  const uint8_t* plane = image.plane(c);
  const float zero = shift;  // a zero byte normalizes to (0 - mean) / std
  for (int64_t y = 0; y < out_h; ++y) {
    float* row = out + y * out_w;
    const int64_t sy = top + y - pad_y;
    if (sy < 0 || sy >= image.height) {
      std::fill(row, row + out_w, zero);
      continue;
    }
    const uint8_t* src = plane + sy * image.width;
    for (int64_t x = 0; x < out_w; ++x) {
      const int64_t sx = left + (flip ? out_w - 1 - x : x) - pad_x;
      row[x] = (sx < 0 || sx >= image.width) ? zero : src[sx] * scale + shift;
    }
  }
}

// Bilinear resampling of `region` of the image to out_h x out_w (align_corners=False),
// mirrored when flipping, normalized on the fly.
void ResamplePlanes(const Image& image, const Region& region, int64_t out_h, int64_t out_w, bool flip,
                    const Normalization& normalization, float* out) {
  struct Tap {
    int64_t lo, hi;
    float frac;
  };
  auto taps = [](double start, double extent, int64_t out_size, int64_t in_size) {
    std::vector<Tap> result(out_size);
    const double step = extent / static_cast<double>(out_size);
    for (int64_t i = 0; i < out_size; ++i) {
      double s = start + (i + 0.5) * step - 0.5;
      s = std::clamp(s, 0.0, static_cast<double>(in_size - 1));
      const auto lo = static_cast<int64_t>(std::floor(s));
      result[i] = {lo, std::min(lo + 1, in_size - 1), static_cast<float>(s - lo)};
    }
    return result;
  };
  const std::vector<Tap> ys = taps(region.top, region.height, out_h, image.height);
  std::vector<Tap> xs = taps(region.left, region.width, out_w, image.width);
  if (flip) std::reverse(xs.begin(), xs.end());

  for (int64_t c = 0; c < image.channels; ++c) {
    const uint8_t* plane = image.plane(c);
    const float scale = 1.0f / (255.0f * normalization.std[c]);
    const float shift = -normalization.mean[c] / normalization.std[c];
    float* dst = out + c * out_h * out_w;
    for (int64_t y = 0; y < out_h; ++y) {
      const uint8_t* r0 = plane + ys[y].lo * image.width;
      const uint8_t* r1 = plane + ys[y].hi * image.width;
      const float fy = ys[y].frac;
      for (int64_t x = 0; x < out_w; ++x) {
        const Tap& t = xs[x];
        const float top = r0[t.lo] + (r0[t.hi] - r0[t.lo]) * t.frac;
        const float bottom = r1[t.lo] + (r1[t.hi] - r1[t.lo]) * t.frac;
        dst[y * out_w + x] = (top + (bottom - top) * fy) * scale + shift;
      }
    }
  }
}

// torchvision.transforms.RandomResizedCrop.get_params.
Region RandomResizedRegion(int64_t height, int64_t width, double min_scale, double max_scale, Rng& rng) {
  const double area = static_cast<double>(height) * width;
  const double log_lo = std::log(3.0 / 4.0), log_hi = std::log(4.0 / 3.0);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * rng.Uniform(min_scale, max_scale);
    const double ratio = std::exp(rng.Uniform(log_lo, log_hi));
    const auto w = static_cast<int64_t>(std::llround(std::sqrt(target_area * ratio)));
    const auto h = static_cast<int64_t>(std::llround(std::sqrt(target_area / ratio)));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      const int64_t top = rng.UniformInt(height - h + 1);
      const int64_t left = rng.UniformInt(width - w + 1);
      return {static_cast<double>(top), static_cast<double>(left), static_cast<double>(h),
              static_cast<double>(w)};
    }
  }
  // Fallback: the largest centred crop whose aspect ratio is within [3/4, 4/3].
  const double in_ratio = static_cast<double>(width) / height;
  double w = width, h = height;
  if (in_ratio < 3.0 / 4.0) {
    h = std::round(w / (3.0 / 4.0));
  } else if (in_ratio > 4.0 / 3.0) {
    w = std::round(h * (4.0 / 3.0));
  }
  return {std::floor((height - h) / 2), std::floor((width - w) / 2), h, w};
}

}  // namespace

absl::Status Pipeline::OutputSize(int64_t in_height, int64_t in_width, int64_t* height,
                                  int64_t* width) const {
  if (geometry == Geometry::kIdentity && out_height == 0 && out_width == 0) {
    if (pad_to > 0) {
      *height = *width = pad_to;
      return absl::OkStatus();
    }
    if (in_height <= 0 || in_width <= 0) {
      return absl::InvalidArgumentError(
          "pipeline: identity geometry on variable-size images needs out_height/out_width or pad_to");
    }
    *height = in_height;
    *width = in_width;
    return absl::OkStatus();
  }
  if (out_height <= 0 || out_width <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("pipeline: output size ", out_height, "x", out_width,
                                                   " must be positive"));
  }
  *height = out_height;
  *width = out_width;
  return absl::OkStatus();
}

int64_t Pipeline::MinShorterSide() const {
  if (!reduced_decode) return 0;
  switch (geometry) {
    case Geometry::kResizeCenterCrop:
      return resize;
    case Geometry::kRandomResizedCrop:
      return 0;  // a small crop is upsampled: it needs every source pixel
    default:
      return 0;
  }
}

absl::Status Pipeline::Apply(const Image& image, const Normalization& normalization, Rng& rng,
                             float* out) const {
  if (normalization.mean.size() != static_cast<size_t>(image.channels) ||
      normalization.std.size() != static_cast<size_t>(image.channels)) {
    return absl::InvalidArgumentError(absl::StrCat("pipeline: normalization has ", normalization.mean.size(),
                                                   " channels, image has ", image.channels));
  }
  // The canvas: the image centred on a pad_to x pad_to zero background.
  const int64_t canvas_h = std::max(image.height, pad_to), canvas_w = std::max(image.width, pad_to);
  const int64_t pad_y = (canvas_h - image.height) / 2, pad_x = (canvas_w - image.width) / 2;
  int64_t out_h = 0, out_w = 0;
  if (absl::Status s = OutputSize(canvas_h, canvas_w, &out_h, &out_w); !s.ok()) return s;

  if (geometry == Geometry::kIdentity || geometry == Geometry::kPadRandomCrop) {
    const int64_t padded_h = canvas_h + 2 * pad, padded_w = canvas_w + 2 * pad;
    if (out_h > padded_h || out_w > padded_w) {
      return absl::InvalidArgumentError(absl::StrCat("pipeline: crop ", out_h, "x", out_w,
                                                     " is larger than the padded image ", padded_h, "x",
                                                     padded_w));
    }
    int64_t top = (padded_h - out_h) / 2, left = (padded_w - out_w) / 2;
    if (geometry == Geometry::kPadRandomCrop) {
      top = rng.UniformInt(padded_h - out_h + 1);
      left = rng.UniformInt(padded_w - out_w + 1);
    }
    const bool flip = random_flip && rng.Bernoulli(0.5);
    for (int64_t c = 0; c < image.channels; ++c) {
      const float scale = 1.0f / (255.0f * normalization.std[c]);
      const float shift = -normalization.mean[c] / normalization.std[c];
      CropPlane(image, c, pad_y + pad, pad_x + pad, top, left, out_h, out_w, flip, scale, shift,
                out + c * out_h * out_w);
    }
    return absl::OkStatus();
  }
  if (pad_to > 0) {
    return absl::InvalidArgumentError("pipeline: pad_to applies to identity and pad-random-crop geometry only");
  }
  Region region{};
  if (geometry == Geometry::kRandomResizedCrop) {
    region = RandomResizedRegion(image.height, image.width, min_scale, max_scale, rng);
  } else {  // kResizeCenterCrop: crop in resized coordinates, mapped back to the source.
    if (resize <= 0) return absl::InvalidArgumentError("pipeline: resize must be positive");
    const double s = static_cast<double>(resize) / std::min(image.height, image.width);
    const auto resized_h = static_cast<int64_t>(std::llround(image.height * s));
    const auto resized_w = static_cast<int64_t>(std::llround(image.width * s));
    if (out_h > resized_h || out_w > resized_w) {
      return absl::InvalidArgumentError(absl::StrCat("pipeline: centre crop ", out_h, "x", out_w,
                                                     " is larger than the resized image ", resized_h, "x",
                                                     resized_w));
    }
    const double top = std::round((resized_h - out_h) / 2.0), left = std::round((resized_w - out_w) / 2.0);
    const double sy = static_cast<double>(image.height) / resized_h, sx = static_cast<double>(image.width) / resized_w;
    region = {top * sy, left * sx, out_h * sy, out_w * sx};
  }
  const bool flip = random_flip && rng.Bernoulli(0.5);
  ResamplePlanes(image, region, out_h, out_w, flip, normalization, out);
  return absl::OkStatus();
}

Pipelines FashionMnistPipelines(int64_t size) {
  Pipelines p;
  const int64_t pad_to = size > 28 ? size : 0;
  p.train.geometry = Pipeline::Geometry::kPadRandomCrop;
  p.train.pad_to = pad_to;
  p.train.pad = 4;
  p.train.out_height = p.train.out_width = size;
  p.train.random_flip = true;
  p.eval.pad_to = pad_to;
  return p;
}

Pipelines Cifar10Pipelines() {
  Pipelines p;
  p.train.geometry = Pipeline::Geometry::kPadRandomCrop;
  p.train.pad = 4;
  p.train.out_height = p.train.out_width = 32;
  p.train.random_flip = true;
  return p;
}

Pipelines ImageNetPipelines(int64_t crop, int64_t resize) {
  Pipelines p;
  p.train.geometry = Pipeline::Geometry::kRandomResizedCrop;
  p.train.out_height = p.train.out_width = crop;
  p.train.random_flip = true;
  p.eval.geometry = Pipeline::Geometry::kResizeCenterCrop;
  p.eval.resize = resize;
  p.eval.out_height = p.eval.out_width = crop;
  return p;
}

}  // namespace mpq::data
