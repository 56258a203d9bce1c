#include "lib/runtime/malloc_tuning.h"

#include <malloc.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

namespace mpq::runtime {
namespace {

// LibTorch's own CPU alignment (c10::gAlignment); AVX-512 loads want 64.
constexpr std::uintptr_t kAlignment = 64;

// Written for both LibTorch 1.13 and 2.x (checked against 2.11 by tools/check_libtorch.sh):
// 2.x made allocate() non-const and added a pure copy_data(). Each of the two allocate()
// overrides the base's one of its LibTorch and is a plain overload in the other, and
// copy_data is a plain method in 1.13, hence no `override` on them.
class ExactFitCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(std::size_t n) const { return Allocate(n); }
  c10::DataPtr allocate(std::size_t n) { return Allocate(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }
  c10::DeleterFnPtr raw_deleter() const override { return &FreeAligned; }

 private:
  static c10::DataPtr Allocate(std::size_t n) {
    void* data = AllocateAligned(n);
    return {data, data, &FreeAligned, c10::Device(c10::DeviceType::CPU)};
  }
};

}  // namespace

void* AllocateAligned(std::size_t n) {
  if (n == 0) return nullptr;  // as c10's alloc_cpu
  TORCH_CHECK(n <= SIZE_MAX - kAlignment, "AllocateAligned: ", n, " bytes is too large");
  // malloc returns 16-byte aligned blocks, so the aligned pointer is 16..64 bytes in and
  // there are always 8 bytes below it for the raw pointer.
  void* raw = std::malloc(n + kAlignment);
  TORCH_CHECK(raw != nullptr, "AllocateAligned: out of memory allocating ", n, " bytes");
  const std::uintptr_t aligned = (reinterpret_cast<std::uintptr_t>(raw) + kAlignment) & ~(kAlignment - 1);
  std::memcpy(reinterpret_cast<void*>(aligned - sizeof(void*)), &raw, sizeof(void*));
  return reinterpret_cast<void*>(aligned);
}

void FreeAligned(void* p) {
  if (p == nullptr) return;
  void* raw;
  std::memcpy(&raw, static_cast<char*>(p) - sizeof(void*), sizeof(void*));
  std::free(raw);
}

bool TuneMallocForRepeatedLargeAllocations() {
  const bool no_mmap = mallopt(M_MMAP_MAX, 0) == 1;
  // mallopt takes an int: INT_MAX (2 GiB) is the largest trim threshold it accepts.
  const bool no_trim = mallopt(M_TRIM_THRESHOLD, 0x7fffffff) == 1;
  // Priority 1 wins over LibTorch's default allocator (registered with 0).
  static ExactFitCpuAllocator allocator;
  c10::SetCPUAllocator(&allocator, /*priority=*/1);
  return no_mmap && no_trim;
}

}  // namespace mpq::runtime
