#include "ops/device.h"

#include "autograd/autograd.h"
#include "core/error.h"
#include "tensor/bf16_shadow.h"
#if SLLM_HAVE_CUDA
#include "kernels/cuda_kernels.h"
#endif

namespace sllm::ops {

#if SLLM_HAVE_CUDA
namespace {

// dst += src on the GPU: an in-place elementwise add (each element read before written),
// f32 or bf16 (summed in fp32, rounded once). autograd::accumulate checked shapes and dtypes.
void cuda_accumulate(Tensor& dst, const Tensor& src) {
  const int64_t n = dst.numel();
  if (dst.dtype() == DType::BF16) {
    bf16* d = dst.mutable_data<bf16>();
    kernels::cuda::binary_forward(kernels::BinaryOp::Add, d, d, src.data<bf16>(), n, n);
  } else {
    kernels::cuda::binary_forward(kernels::BinaryOp::Add, dst.mutable_f32(), dst.f32(), src.f32(), n, n);
  }
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
  // bf16 weight shadows (tensor/bf16_shadow.h) cast on the device with the same kernel.
  register_bf16_cast(Device::CUDA, [](bf16* out, const float* inp, int64_t n) { kernels::cuda::cast_forward(out, inp, n); });
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

Precision parse_precision(const std::string& name, Device device) {
  if (name == "auto") return device == Device::CUDA ? Precision::BF16 : Precision::FP32;
  if (name == "fp32") return Precision::FP32;
  SLLM_CHECK(name == "bf16" || name == "tf32", str("unknown precision '", name, "'"),
             "use --precision auto, fp32, tf32 or bf16");
  SLLM_CHECK(device == Device::CUDA, str("--precision ", name, " needs --device cuda"),
             "tf32 and bf16 use GPU tensor cores; on the CPU train in fp32 (--precision fp32 or auto)");
  return name == "bf16" ? Precision::BF16 : Precision::TF32;
}

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::FP32: return "fp32";
    case Precision::TF32: return "tf32";
    case Precision::BF16: return "bf16";
  }
  return "?";
}

DType apply_precision(Precision precision) {
#if SLLM_HAVE_CUDA
  kernels::cuda::set_tf32(precision == Precision::TF32);
#endif
  return precision == Precision::BF16 ? DType::BF16 : DType::F32;
}

void synchronize(Device device) {
#if SLLM_HAVE_CUDA
  if (device == Device::CUDA) kernels::cuda::synchronize();
#endif
}

}  // namespace sllm::ops
