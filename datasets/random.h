// random.h — a small, platform-independent random number generator for data
// pipelines.
//
// std::uniform_*_distribution results differ between standard libraries, so a
// shuffle or an augmentation drawn with them is not reproducible across machines.
// `Rng` is SplitMix64 (Steele, Lea & Flood, OOPSLA 2014) with distributions written
// out here, so a (seed, epoch, example) triple gives the same crop everywhere.
//
//   mpq::data::Rng rng(mpq::data::MixSeed(seed, epoch, index));
//   const int64_t dx = rng.UniformInt(9);   // 0..8
//   const bool flip = rng.Bernoulli(0.5);
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

namespace mpq::data {

// Rng: SplitMix64; Next() returns 64 uniformly distributed bits.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, 1) with 53 bits of resolution.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }

  // Uniform integer in [0, n), n > 0, without modulo bias (Lemire's method, simplified
  // with rejection on the 64-bit product's low word).
  int64_t UniformInt(int64_t n) {
    const uint64_t range = static_cast<uint64_t>(n);
    const uint64_t threshold = (0 - range) % range;
    while (true) {
      const unsigned __int128 product = static_cast<unsigned __int128>(Next()) * range;
      if (static_cast<uint64_t>(product) >= threshold) return static_cast<int64_t>(product >> 64);
    }
  }

  bool Bernoulli(double p) { return Uniform() < p; }

  // Standard normal (Box-Muller; one value per call, the second is dropped for simplicity).
  double Normal() {
    const double u1 = 1.0 - Uniform();  // (0, 1]
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }

  // Fisher-Yates shuffle.
  template <typename T>
  void Shuffle(std::vector<T>& values) {
    for (int64_t i = static_cast<int64_t>(values.size()) - 1; i > 0; --i) {
      std::swap(values[i], values[UniformInt(i + 1)]);
    }
  }

 private:
  uint64_t state_;
};

// Combines several integers into one well-mixed seed (order matters): each step
// runs the running hash, xor-ed with the next value, through one SplitMix64 round.
inline uint64_t MixSeed(uint64_t a, uint64_t b, uint64_t c = 0) {
  uint64_t h = Rng(a).Next();
  h = Rng(h ^ b).Next();
  return Rng(h ^ c).Next();
}

}  // namespace mpq::data
