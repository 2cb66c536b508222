// The host allocator's cache of freed large blocks (src/tensor/storage.cpp): a freed block
// comes back for the next request of the same size, never to two live owners at once, and
// alignment and contents rules hold for cached blocks as for fresh ones.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>

#include "tensor/storage.h"
#include "tensor/tensor.h"

namespace sllm {
namespace {

constexpr size_t kBig = size_t(3) << 20;  // 3 MiB: far above the cache threshold and glibc's mmap threshold

TEST(HostCache, FreedBlockIsReusedForTheSameSize) {
  Allocator& a = allocator_for(Device::CPU);
  void* first = a.allocate(kBig);
  std::memset(first, 1, kBig);
  a.deallocate(first, kBig);
  void* again = a.allocate(kBig);
  EXPECT_EQ(again, first);
  a.deallocate(again, kBig);
}

TEST(HostCache, ACachedBlockHasOneOwnerAtATime) {
  Allocator& a = allocator_for(Device::CPU);
  void* p = a.allocate(kBig);
  a.deallocate(p, kBig);
  void* x = a.allocate(kBig);
  void* y = a.allocate(kBig);  // the only cached block is taken: y must be a new one
  EXPECT_NE(x, y);
  std::memset(x, 0xAB, kBig);
  std::memset(y, 0xCD, kBig);
  EXPECT_EQ(static_cast<unsigned char*>(x)[kBig - 1], 0xAB);
  a.deallocate(x, kBig);
  a.deallocate(y, kBig);
}

TEST(HostCache, OtherSizesGetOtherBlocks) {
  Allocator& a = allocator_for(Device::CPU);
  void* p = a.allocate(kBig);
  a.deallocate(p, kBig);
  void* q = a.allocate(kBig + 4096);  // a larger request must not get the smaller cached block
  EXPECT_NE(q, p);
  a.deallocate(q, kBig + 4096);
}

TEST(HostCache, CachedBlocksStayAlignedAndZerosAreZero) {
  std::set<const void*> seen;
  for (int round = 0; round < 3; ++round) {
    Tensor t = Tensor::empty({int64_t(kBig / 4)});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);
    t.fill_(7.0f);  // dirty it, so a cached reuse below would show through a missing memset
    seen.insert(t.raw());
  }
  EXPECT_EQ(seen.size(), 1u) << "three same-size tensors in turn should share one cached block";
  Tensor z = Tensor::zeros({int64_t(kBig / 4)});
  const float* zp = z.f32();
  for (int64_t i = 0; i < z.numel(); ++i) ASSERT_EQ(zp[i], 0.0f) << "at " << i;
}

}  // namespace
}  // namespace sllm
