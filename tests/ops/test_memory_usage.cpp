// ops/memory_usage.h on the CPU: the resident set (VmRSS) and its peak (VmHWM) follow a
// 64 MiB block that is allocated and touched, and reset_peak_memory starts a new window
// where /proc/self/clear_refs may be written (the test says so and skips otherwise).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "ops/device.h"
#include "ops/memory_usage.h"

using namespace sllm;

namespace {

constexpr int64_t kMiB = int64_t(1) << 20;
constexpr int64_t kBlock = 64 * kMiB;

// A 64 MiB block written page by page, so every page is resident (malloc alone only
// reserves address space). glibc serves a block this large with its own mmap, so free()
// returns it to the system and the RSS falls back.
struct TouchedBlock {
  char* p;
  TouchedBlock() : p(static_cast<char*>(std::malloc(size_t(kBlock)))) {
    for (int64_t i = 0; i < kBlock; i += 4096) p[i] = char(i >> 12);
  }
  ~TouchedBlock() { std::free(p); }
};

}  // namespace

TEST(MemoryUsage, CpuResidentSetFollowsATouchedBlock) {
  const int64_t before = ops::current_memory_bytes(Device::CPU);
  ASSERT_GT(before, 0) << "VmRSS not readable from /proc/self/status";
  int64_t held = 0;
  {
    TouchedBlock block;
    held = ops::current_memory_bytes(Device::CPU);
    EXPECT_GE(ops::peak_memory_bytes(Device::CPU), held) << "the peak is at least the current RSS";
  }
  const int64_t after = ops::current_memory_bytes(Device::CPU);
  EXPECT_GE(held - before, kBlock - 4 * kMiB);
  EXPECT_LE(held - before, kBlock + 8 * kMiB);
  EXPECT_LE(after, before + 8 * kMiB) << "the block's pages were returned";
}

TEST(MemoryUsage, CpuPeakRisesByTheBlockAndResets) {
  if (!ops::reset_peak_memory(Device::CPU)) GTEST_SKIP() << "/proc/self/clear_refs is not writable here";
  const int64_t base = ops::current_memory_bytes(Device::CPU);
  const int64_t reset_peak = ops::peak_memory_bytes(Device::CPU);
  EXPECT_LE(reset_peak, base + 4 * kMiB) << "after a reset the peak is the current RSS";
  { TouchedBlock block; }  // allocated, touched and freed: only the peak remembers it
  const int64_t peak = ops::peak_memory_bytes(Device::CPU);
  EXPECT_GE(peak - reset_peak, kBlock - 4 * kMiB);
  EXPECT_LE(peak - reset_peak, kBlock + 8 * kMiB);
  EXPECT_LE(ops::current_memory_bytes(Device::CPU), base + 8 * kMiB);
  ASSERT_TRUE(ops::reset_peak_memory(Device::CPU));
  EXPECT_LT(ops::peak_memory_bytes(Device::CPU), peak - kBlock / 2) << "the reset forgot the freed block";
}

// CUDA's numbers come from the caching allocator (tested in tests/cuda/test_cuda_device.cpp);
// with no GPU (or no backend) nothing was ever allocated there and they read zero.
TEST(MemoryUsage, CudaReadsZeroWithoutAGpu) {
  if (ops::cuda_available()) GTEST_SKIP() << "a GPU is present";
  EXPECT_EQ(ops::current_memory_bytes(Device::CUDA), 0);
  EXPECT_EQ(ops::peak_memory_bytes(Device::CUDA), 0);
  EXPECT_TRUE(ops::reset_peak_memory(Device::CUDA));
}
