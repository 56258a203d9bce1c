// image.h — the decoded image every reader produces: 8-bit, planar (CHW).
//
//   mpq::data::Image img(3, 32, 32);
//   img.at(c, y, x) = 255;
#pragma once

#include <cstdint>
#include <vector>

namespace mpq::data {

// Image: channels x height x width bytes, channel-planar, row-major.
struct Image {
  Image() = default;
  Image(int64_t channels_, int64_t height_, int64_t width_)
      : channels(channels_), height(height_), width(width_),
        pixels(static_cast<size_t>(channels_ * height_ * width_), 0) {}

  uint8_t& at(int64_t c, int64_t y, int64_t x) { return pixels[(c * height + y) * width + x]; }
  uint8_t at(int64_t c, int64_t y, int64_t x) const { return pixels[(c * height + y) * width + x]; }
  const uint8_t* plane(int64_t c) const { return pixels.data() + c * height * width; }
  uint8_t* plane(int64_t c) { return pixels.data() + c * height * width; }

  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
  std::vector<uint8_t> pixels;
};

}  // namespace mpq::data
