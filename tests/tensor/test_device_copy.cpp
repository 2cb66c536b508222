// Copies of tensors on a non-CPU device, through the host-backed stand-in device (so this
// runs without a GPU): clone() must copy within the device (Allocator::copy_within, whose
// default goes through the host) and stay deep.
#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "tensor/storage.h"
#include "tensor/tensor.h"
#include "tests/tensor/stand_in_device.h"

using namespace sllm;
using sllm::testing::StandInDevice;

TEST(DeviceCopy, CloneOfADeviceTensorIsDeepAndStaysOnTheDevice) {
  StandInDevice guard;
  Tensor host = Tensor::from_floats({1.5f, -2.0f, 3.25f, 0.0f}, {2, 2});
  Tensor dev = host.to(Device::CUDA);
  EXPECT_EQ(guard.allocator.from_host, 1);
  Tensor copy = dev.clone();
  EXPECT_EQ(copy.device(), Device::CUDA);
  EXPECT_NE(copy.raw(), dev.raw());
  // The default copy_within goes device -> host -> device.
  EXPECT_EQ(guard.allocator.to_host, 1);
  EXPECT_EQ(guard.allocator.from_host, 2);
  EXPECT_EQ(copy.to_floats(), (std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f}));
  Tensor zeros = Tensor::zeros({2, 2}, DType::F32, Device::CUDA);
  zeros.copy_from(copy);  // device to the same device
  EXPECT_EQ(zeros.to_floats(), copy.to_floats());
}

TEST(DeviceCopy, WithoutTheBackendADeviceTensorIsAClearError) {
  register_allocator(Device::CUDA, nullptr);
  EXPECT_THROW(Tensor::empty({2}, DType::F32, Device::CUDA), Error);
}
