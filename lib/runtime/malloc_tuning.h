// malloc_tuning.h — makes glibc keep freed memory for reuse instead of returning it.
//
// LibTorch allocates every op's output with posix_memalign. glibc serves blocks above
// its mmap threshold (at most 32 MiB) with a fresh mmap and unmaps them on free, so
// each large output pays a page fault per 4 KiB on first touch. On this project's VM
// that made a 16M-element fake-quant forward ~40x slower (257 ms vs 6.5 ms, measured
// by //tests/quant:quantizer_benchmark with and without this tuning). Training loops
// allocate the same sizes every step, so retaining the memory is the right trade.
//
//   int main(int argc, char** argv) {
//     mpq::runtime::TuneMallocForRepeatedLargeAllocations();
//     ...
//
// It sets M_MMAP_MAX = 0 (no mmap-backed blocks: everything comes from the heap) and
// M_TRIM_THRESHOLD = 2 GiB, the most mallopt accepts (keep the heap top). Call it first thing in
// main, before threads start. Returns false if glibc rejected a setting.
#pragma once

namespace mpq::runtime {

bool TuneMallocForRepeatedLargeAllocations();

}  // namespace mpq::runtime
