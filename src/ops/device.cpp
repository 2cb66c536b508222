#include "ops/device.h"

#include "autograd/autograd.h"
#include "core/error.h"
#if SLLM_HAVE_CUDA
#include "kernels/cuda_kernels.h"
#endif

namespace sllm::ops {

#if SLLM_HAVE_CUDA
namespace {

// dst += src on the GPU: an in-place elementwise add (each element read before written).
void cuda_accumulate(float* dst, const float* src, int64_t n) {
  kernels::cuda::binary_forward(kernels::BinaryOp::Add, dst, dst, src, n, n);
}

}  // namespace
#endif

bool cuda_available() {
#if SLLM_HAVE_CUDA
  return kernels::cuda::device_count() > 0;
#else
  return false;
#endif
}

void init_device(Device device) {
  if (device == Device::CPU) return;
#if SLLM_HAVE_CUDA
  SLLM_CHECK(kernels::cuda::device_count() > 0, "no CUDA device",
             "run on a machine with an NVIDIA GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES) or use --device cpu");
  kernels::cuda::register_cuda_allocator();
  autograd::register_device_accumulate(Device::CUDA, cuda_accumulate);
#else
  SLLM_CHECK(false, str("device '", device_name(device), "' is not available: this build has no CUDA backend"),
             "rebuild with CUDA (cmake -DSLLM_CUDA=ON, needs nvcc) and run on a GPU machine, or use --device cpu");
#endif
}

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::CPU;
  SLLM_CHECK(name == "cuda", str("unknown device '", name, "'"), "use --device cpu or --device cuda");
  return Device::CUDA;
}

void synchronize(Device device) {
#if SLLM_HAVE_CUDA
  if (device == Device::CUDA) kernels::cuda::synchronize();
#endif
}

}  // namespace sllm::ops
