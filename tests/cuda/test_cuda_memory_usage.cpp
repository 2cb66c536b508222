// The caching allocator's peak of bytes in use (CacheStats::peak_bytes_in_use), read and
// reset through ops/memory_usage.h as every training run's peak_mem_bytes on a GPU: it
// counts rounded live blocks, remembers a freed block until reset, and ignores the cache.
#include <gtest/gtest.h>

#include "ops/memory_usage.h"
#include "tensor/storage.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

using CudaPeakMemory = CudaTest;

TEST_F(CudaPeakMemory, PeakFollowsLiveBlocksAndResets) {
  Allocator& a = caching_allocator();
  constexpr size_t kMiB = size_t(1) << 20;
  ops::reset_peak_memory(Device::CUDA);
  const size_t base = cache_stats().bytes_in_use;
  EXPECT_EQ(cache_stats().peak_bytes_in_use, base) << "a reset sets the peak to what is in use";
  EXPECT_EQ(ops::current_memory_bytes(Device::CUDA), int64_t(base));

  void* big = a.allocate(3 * kMiB);  // rounds up to 4 MiB (2 MiB granularity)
  void* small = a.allocate(1000);    // rounds up to 1024 bytes
  EXPECT_EQ(cache_stats().bytes_in_use, base + 4 * kMiB + 1024);
  a.deallocate(big, 3 * kMiB);
  EXPECT_EQ(cache_stats().bytes_in_use, base + 1024);
  EXPECT_EQ(ops::peak_memory_bytes(Device::CUDA), int64_t(base + 4 * kMiB + 1024)) << "the peak remembers the freed block";

  // Taking the cached block back is use again, but not above the old peak.
  void* again = a.allocate(4 * kMiB);
  EXPECT_EQ(ops::peak_memory_bytes(Device::CUDA), int64_t(base + 4 * kMiB + 1024));
  a.deallocate(again, 4 * kMiB);

  ops::reset_peak_memory(Device::CUDA);
  EXPECT_EQ(ops::peak_memory_bytes(Device::CUDA), int64_t(base + 1024)) << "cached blocks are not in use";
  a.deallocate(small, 1000);
  EXPECT_EQ(ops::peak_memory_bytes(Device::CUDA), int64_t(base + 1024)) << "a free never raises the peak";
  empty_cache();
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
