// transforms.h — the augmentation and normalization pipeline from a decoded 8-bit
// image to the float CHW tensor a model reads.
//
// One Pipeline value describes the whole chain; Apply() samples the output directly
// (no intermediate images), so a crop of a padded, flipped image costs one pass.
// Randomness comes from the caller's Rng, which the loader seeds from
// (seed, epoch, example index): the same example gets the same augmentation in every
// run, whatever the batch size or number of worker threads.
//
//   Pipelines p = Cifar10Pipelines();
//   Rng rng(MixSeed(seed, epoch, index));
//   RETURN_IF_ERROR(p.train.Apply(image, info.normalization, rng, out));  // 3x32x32 floats
//
// Conventions follow torchvision: zero padding before normalization, horizontal flip
// with p = 0.5, RandomResizedCrop(scale [0.08, 1], ratio [3/4, 4/3], 10 tries then a
// center crop), bilinear resampling with pixel centres at +0.5 (align_corners=False).
// Unlike torchvision's PIL path there is no antialiasing filter: ImageNet readers
// decode with JPEG DCT scaling so that downscaling stays below 2x (see imagenet.h).
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "datasets/dataset.h"
#include "datasets/image.h"
#include "datasets/random.h"

namespace mpq::data {

// Pipeline: geometry, then flip, then (v / 255 - mean[c]) / std[c].
struct Pipeline {
  enum class Geometry {
    kIdentity,           // keep the (padded) image as it is
    kPadRandomCrop,      // zero-pad by `pad` on every side, random out_height x out_width crop
    kRandomResizedCrop,  // torchvision RandomResizedCrop to out_height x out_width
    kResizeCenterCrop,   // shorter side to `resize`, then centre out_height x out_width crop
  };

  Geometry geometry = Geometry::kIdentity;
  // Centred zero padding applied first, to this square size (e.g. Fashion-MNIST's
  // 28x28 into 32x32 CIFAR networks); 0 = none.
  int64_t pad_to = 0;
  int64_t pad = 0;       // kPadRandomCrop: padding per side; default 0
  int64_t resize = 0;    // kResizeCenterCrop: target shorter side; default 0
  int64_t out_height = 0;  // output size; 0 with kIdentity = the input's (padded) size
  int64_t out_width = 0;
  bool random_flip = false;  // horizontal flip with probability 0.5; default off
  double min_scale = 0.08;   // kRandomResizedCrop area range [min_scale, max_scale]
  double max_scale = 1.0;
  // Let the decoder reduce resolution (JPEG DCT scaling) down to what the geometry
  // needs; default on. Off = always decode at full size, as torchvision does.
  bool reduced_decode = true;

  // Output height/width for inputs of the given stored size (0 = variable size).
  // Errors when the size cannot be known (kIdentity on variable-size data).
  absl::Status OutputSize(int64_t in_height, int64_t in_width, int64_t* height, int64_t* width) const;

  // The shorter side this pipeline needs from the decoder for full output quality;
  // 0 = full resolution. Passed to Dataset::Read as a decoding hint.
  int64_t MinShorterSide() const;

  // Writes image.channels x height x width normalized floats to `out` (sizes as
  // OutputSize reports for this image). Errors on a bad configuration or an image
  // smaller than a fixed crop.
  absl::Status Apply(const Image& image, const Normalization& normalization, Rng& rng, float* out) const;
};

// The train (augmenting) and eval (deterministic) pipelines of a dataset.
struct Pipelines {
  Pipeline train;
  Pipeline eval;
};

// Fashion-MNIST at `size` x `size`: 28 is native; 32 pads by 2 on each side so the
// CIFAR networks take it unchanged. Train: 4-pixel pad + random crop + flip.
Pipelines FashionMnistPipelines(int64_t size = 28);
// CIFAR-10: train 4-pixel pad + random 32x32 crop + flip; eval identity.
Pipelines Cifar10Pipelines();
// ImageNet: train RandomResizedCrop(crop) + flip; eval resize(resize) + centre crop(crop).
Pipelines ImageNetPipelines(int64_t crop = 224, int64_t resize = 256);

}  // namespace mpq::data
