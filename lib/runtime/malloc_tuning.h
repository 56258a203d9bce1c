// malloc_tuning.h — makes large CPU tensors reuse freed memory instead of page-faulting.
//
// Two problems, both measured with //tests/quant:quantizer_benchmark on this project's VM:
//
// 1. glibc serves blocks above its mmap threshold (at most 32 MiB) with a fresh mmap and
//    unmaps them on free, so each large output pays a page fault per 4 KiB on first
//    touch: a 16M-element fake-quant forward was ~40x slower (257 ms vs 6.5 ms).
//    Fix: M_MMAP_MAX = 0 (everything from the heap) and M_TRIM_THRESHOLD = 2 GiB (the
//    most mallopt accepts: keep the heap top).
//
// 2. LibTorch's default CPU allocator uses posix_memalign(64, n). glibc's memalign asks
//    its heap for n + 64 + 32 bytes and gives the slack back, so a freed n-byte block can
//    never serve the next request of the same size unless it happens to merge with a free
//    neighbour: a loop allocating the same 64 MiB output every step (with a few small
//    allocations made while it lives, as autograd does) grew the heap by 64 MiB of fresh,
//    page-faulting memory per step for 8 steps (16M uhlich_uniform_w forward run alone:
//    ~80 ms per call instead of ~4 ms). Fix: a CPU allocator that calls malloc(n + 64)
//    and aligns inside the block (the raw pointer is stored just below the aligned one),
//    so a freed block is an exact fit for the next request of the same size.
//
// Training loops allocate the same sizes every step, so retaining and reusing memory is
// the right trade.
//
//   int main(int argc, char** argv) {
//     mpq::runtime::TuneMallocForRepeatedLargeAllocations();
//     ...
//
// Call it first thing in main, before threads start and before tensors are allocated
// (tensors allocated earlier keep their own deleter and are freed correctly either way).
// Returns false if glibc rejected a setting.
#pragma once

#include <cstddef>

namespace mpq::runtime {

bool TuneMallocForRepeatedLargeAllocations();

// The allocator installed above, exposed for tests: 64-byte aligned blocks of n bytes,
// each freed by FreeAligned (or by the DataPtr's deleter).
void* AllocateAligned(std::size_t n);
void FreeAligned(void* p);

}  // namespace mpq::runtime
