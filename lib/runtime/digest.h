// digest.h — FNV-1a 64, the one stable (platform- and run-independent) hash used for
// identities: the spec hash and the dataset fingerprint. Not cryptographic: it names
// things, it does not defend against a forger. Damage detection uses CRC-32
// (atomic_file.h), which guarantees to catch every burst of up to 32 flipped bits.
//
//   Fnv1a64 h;  h.Add("text");  h.Add(bytes);  std::string id = h.Hex();  // 16 hex digits
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace mpq::runtime {

class Fnv1a64 {
 public:
  Fnv1a64& Add(std::string_view bytes) {
    for (unsigned char c : bytes) {
      h_ ^= c;
      h_ *= 0x100000001b3ULL;
    }
    return *this;
  }
  uint64_t value() const { return h_; }
  std::string Hex() const {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h_));
    return hex;
  }

 private:
  uint64_t h_ = 0xcbf29ce484222325ULL;
};

}  // namespace mpq::runtime
