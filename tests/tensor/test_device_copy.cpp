// Copies of tensors on a non-CPU device, through a host-backed stand-in allocator
// registered for Device::CUDA (so this runs without a GPU): clone() must copy within the
// device (Allocator::copy_within, whose default goes through the host) and stay deep.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "tensor/storage.h"
#include "tensor/tensor.h"

using namespace sllm;

namespace {

// Host memory pretending to be a device; counts its copies to tell which path ran.
class StandInDevice : public Allocator {
 public:
  int to_host = 0, from_host = 0;
  void* allocate(size_t nbytes) override { return std::malloc(nbytes ? nbytes : 1); }
  void deallocate(void* ptr, size_t) override { std::free(ptr); }
  void copy_to_host(void* dst, const void* src, size_t n) override { ++to_host, std::memcpy(dst, src, n); }
  void copy_from_host(void* dst, const void* src, size_t n) override { ++from_host, std::memcpy(dst, src, n); }
  void fill_zero(void* ptr, size_t n) override { std::memset(ptr, 0, n); }
};

struct StandInGuard {
  StandInDevice device;
  StandInGuard() { register_allocator(Device::CUDA, &device); }
  ~StandInGuard() { register_allocator(Device::CUDA, nullptr); }
};

}  // namespace

TEST(DeviceCopy, CloneOfADeviceTensorIsDeepAndStaysOnTheDevice) {
  StandInGuard guard;
  Tensor host = Tensor::from_floats({1.5f, -2.0f, 3.25f, 0.0f}, {2, 2});
  Tensor dev = host.to(Device::CUDA);
  EXPECT_EQ(guard.device.from_host, 1);
  Tensor copy = dev.clone();
  EXPECT_EQ(copy.device(), Device::CUDA);
  EXPECT_NE(copy.raw(), dev.raw());
  // The default copy_within goes device -> host -> device.
  EXPECT_EQ(guard.device.to_host, 1);
  EXPECT_EQ(guard.device.from_host, 2);
  EXPECT_EQ(copy.to_floats(), (std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f}));
  Tensor zeros = Tensor::zeros({2, 2}, DType::F32, Device::CUDA);
  zeros.copy_from(copy);  // device to the same device
  EXPECT_EQ(zeros.to_floats(), copy.to_floats());
}

TEST(DeviceCopy, WithoutTheBackendADeviceTensorIsAClearError) {
  register_allocator(Device::CUDA, nullptr);
  EXPECT_THROW(Tensor::empty({2}, DType::F32, Device::CUDA), Error);
}
