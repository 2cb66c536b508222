// The CUDA backend's device layer: discovery that never throws, CUDA errors as sllm::Error
// with a hint (these run on GPU-less machines too), the caching allocator's reuse of freed
// blocks, and Storage on Device::CUDA through register_cuda_allocator().
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "tensor/storage.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

TEST(CudaDevice, DeviceCountNeverThrows) {
  int n = -1;
  EXPECT_NO_THROW(n = device_count());
  EXPECT_GE(n, 0);
  EXPECT_EQ(device_count(), n) << "a second call must agree (no sticky error state)";
}

TEST(CudaDevice, WithoutAGpuMemoryCallsRaiseErrorsWithAHint) {
  if (device_count() > 0) GTEST_SKIP() << "a GPU is visible: this test covers GPU-less machines";
  try {
    device_alloc(1024);
    FAIL() << "device_alloc succeeded without a device";
  } catch (const sllm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA error"), std::string::npos) << e.what();
    EXPECT_FALSE(e.hint().empty());
  }
}

TEST(CudaDevice, BadGemmArgumentsAreRejectedBeforeTheGpuIsTouched) {
  // Argument checks run first, so these are sllm::Errors with or without a GPU.
  EXPECT_THROW(sgemm(false, false, -1, 2, 2, 1.0f, nullptr, 2, nullptr, 2, 0.0f, nullptr, 2), sllm::Error);
  EXPECT_THROW(sgemm(false, false, 2, 3, 4, 1.0f, nullptr, 3, nullptr, 3, 0.0f, nullptr, 3), sllm::Error);  // lda < K
  float* no_f32 = nullptr;  // typed: attention_forward and binary_forward have bf16 overloads too
  EXPECT_THROW(attention_forward(no_f32, no_f32, no_f32, no_f32, no_f32, 1, 4, 4, 2, 2, 256, 0, 1.0f),
               sllm::Error);  // HD above the kernel's limit
  EXPECT_THROW(cuda::binary_forward(BinaryOp::Add, no_f32, no_f32, no_f32, 10, 3), sllm::Error);  // 3 ∤ 10
}

class CudaMemory : public CudaTest {};

TEST_F(CudaMemory, NameAndRoundTrip) {
  EXPECT_FALSE(std::string(device_name()).empty());
  const std::vector<float> x = uniform(1000, 1);
  DeviceArray<float> d(x);
  expect_bitwise(d.host(), x, "h2d then d2h");
  DeviceArray<float> e{x.size()};
  copy_d2d(e.get(), d.get(), x.size() * sizeof(float));
  expect_bitwise(e.host(), x, "d2d");
  memset_zero(e.get(), 10 * sizeof(float));
  const std::vector<float> z = e.host();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(z[i], 0.0f);
  EXPECT_EQ(z[10], x[10]);
}

TEST_F(CudaMemory, OutOfMemoryIsAnErrorWithAHint) {
  try {
    device_alloc(size_t(1) << 50);  // 1 PiB
    FAIL() << "a 1 PiB cudaMalloc succeeded";
  } catch (const sllm::Error& e) {
    EXPECT_NE(e.hint().find("out of memory"), std::string::npos) << e.hint();
  }
  // The failure must not poison later calls, including the error check after a kernel.
  DeviceArray<float> ok{16};
  scale_forward(ok.get(), ok.get(), 2.0f, 16);
  synchronize();
  EXPECT_EQ(ok.host().size(), 16u);
}

TEST_F(CudaMemory, CachingAllocatorReusesFreedBlocks) {
  Allocator& a = caching_allocator();
  empty_cache();
  void* p = a.allocate(1000);
  const CacheStats after_first = cache_stats();
  a.deallocate(p, 1000);
  EXPECT_EQ(cache_stats().bytes_cached, after_first.bytes_cached + 1024) << "1000 bytes round up to 1024";
  // Same bucket (900 also rounds to 1024): the freed block comes back, no new cudaMalloc.
  void* q = a.allocate(900);
  EXPECT_EQ(q, p);
  EXPECT_EQ(cache_stats().cuda_mallocs, after_first.cuda_mallocs);
  // A different bucket needs a fresh block.
  void* r = a.allocate(5000);
  EXPECT_NE(r, q);
  EXPECT_EQ(cache_stats().cuda_mallocs, after_first.cuda_mallocs + 1);
  a.deallocate(q, 900);
  a.deallocate(r, 5000);
  empty_cache();
  EXPECT_EQ(cache_stats().bytes_cached, 0u);
  EXPECT_EQ(cache_stats().bytes_in_use, after_first.bytes_in_use - 1024);
}

TEST_F(CudaMemory, StorageOnCudaUsesTheCachingAllocator) {
  register_cuda_allocator();
  EXPECT_EQ(&allocator_for(Device::CUDA), &caching_allocator());
  const std::vector<float> x = uniform(300, 2);
  std::vector<float> back(300, -1.0f);
  {
    Storage s(x.size() * sizeof(float), Device::CUDA);
    allocator_for(Device::CUDA).copy_from_host(s.data(), x.data(), s.nbytes());
    allocator_for(Device::CUDA).copy_to_host(back.data(), s.data(), s.nbytes());
    expect_bitwise(back, x, "Storage round trip");
    allocator_for(Device::CUDA).fill_zero(s.data(), s.nbytes());
    allocator_for(Device::CUDA).copy_to_host(back.data(), s.data(), s.nbytes());
    for (float v : back) EXPECT_EQ(v, 0.0f);
  }
  EXPECT_GE(cache_stats().bytes_cached, x.size() * sizeof(float)) << "the freed Storage block is cached";
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
