// at::parallel_for in code built with mpq_copts() must run on LibTorch's intra-op threads.
// With LibTorch's OpenMP backend it silently runs on the calling thread unless the caller
// is compiled with -fopenmp (third_party/system_libs.bzl); every fused quantizer kernel
// (lib/quant/kernels_impl.h) depends on this.
#include <mutex>
#include <set>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

namespace {

TEST(ParallelTest, ParallelForInOurCodeUsesSeveralThreads) {
  at::set_num_threads(2);  // also on a 1-core machine: OpenMP starts the threads regardless
  ASSERT_EQ(at::get_num_threads(), 2);
  std::mutex mu;
  std::set<int> threads;
  int64_t covered = 0;
  at::parallel_for(0, 1 << 20, 1 << 10, [&](int64_t begin, int64_t end) {
    std::lock_guard<std::mutex> lock(mu);
    threads.insert(at::get_thread_num());
    covered += end - begin;
  });
  EXPECT_EQ(covered, 1 << 20);
  EXPECT_EQ(threads.size(), 2u) << "at::parallel_for ran its body on one thread: is -fopenmp missing from mpq_copts()?";
}

}  // namespace
