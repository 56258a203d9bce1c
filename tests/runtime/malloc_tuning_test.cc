// Tests for lib/runtime/malloc_tuning: the exact-fit CPU allocator and its installation.
#include "lib/runtime/malloc_tuning.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include <ATen/ATen.h>
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>

namespace mpq::runtime {
namespace {

class MallocTuningTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(TuneMallocForRepeatedLargeAllocations()); }
};

TEST_F(MallocTuningTest, BlocksAre64ByteAlignedAndWritable) {
  for (std::size_t n : {1u, 7u, 16u, 63u, 64u, 65u, 1000u, 4096u, 1u << 20}) {
    void* p = AllocateAligned(n);
    ASSERT_NE(p, nullptr) << n;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u) << n;
    std::memset(p, 0xab, n);  // the whole block is ours (ASan-free check: no crash, no corruption)
    EXPECT_EQ(static_cast<unsigned char*>(p)[n - 1], 0xab);
    FreeAligned(p);
  }
  EXPECT_EQ(AllocateAligned(0), nullptr);
  FreeAligned(nullptr);  // no-op, like free(nullptr)
}

// The property the allocator exists for: a freed large block is reused by the next request of
// the same size, even when a small allocation was made while it lived. posix_memalign (LibTorch's
// default) fails this: it returns fresh heap memory every time until free blocks happen to merge.
TEST_F(MallocTuningTest, FreedLargeBlockServesTheNextSameSizeRequest) {
  const std::size_t n = 8u << 20;
  std::vector<void*> smalls;
  void* first = AllocateAligned(n);
  std::memset(first, 1, n);
  for (int step = 0; step < 4; ++step) {
    smalls.push_back(AllocateAligned(200));
    FreeAligned(first);
    void* again = AllocateAligned(n);
    EXPECT_EQ(again, first) << "step " << step;
    first = again;
  }
  FreeAligned(first);
  for (void* s : smalls) FreeAligned(s);
}

TEST_F(MallocTuningTest, LibTorchUsesItForCpuTensors) {
  ASSERT_EQ(c10::GetCPUAllocator()->raw_deleter(), &FreeAligned);
  const at::Tensor a = at::arange(1000, at::kFloat);
  EXPECT_EQ(a.storage().data_ptr().get_deleter(), &FreeAligned);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data_ptr()) % 64, 0u);
  EXPECT_EQ((a * 2).sum().item<double>(), 999.0 * 1000.0);
  at::Tensor b = at::empty({3});
  b.resize_({1 << 20}).fill_(1.5f);  // growing goes through the storage's allocator
  EXPECT_EQ(b.sum().item<double>(), 1.5 * (1 << 20));
  // raw_allocate/raw_deallocate (used by some LibTorch kernels for scratch space).
  void* raw = c10::GetCPUAllocator()->raw_allocate(100);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(raw) % 64, 0u);
  c10::GetCPUAllocator()->raw_deallocate(raw);
}

}  // namespace
}  // namespace mpq::runtime
