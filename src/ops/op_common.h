// Shared plumbing of the op files: device dispatch, input checks and gradient buffers.
#pragma once
#include <initializer_list>
#include <string>

#include "autograd/autograd.h"
#include "kernels/kernels.h"
#if SLLM_HAVE_CUDA
#include "kernels/cuda_kernels.h"
#endif
#include "core/error.h"
#include "tensor/tensor.h"

namespace sllm::ops::detail {

// The kernel entry for `device`: kernels::fn on the CPU, kernels::cuda::fn (same name,
// signature and contract, on device pointers) on a GPU. An expression, so it also carries
// sum_forward's return value. Without the CUDA backend only the CPU call is compiled.
#if SLLM_HAVE_CUDA
#define SLLM_KERNEL(device, fn, ...) \
  ((device) == ::sllm::Device::CUDA ? ::sllm::kernels::cuda::fn(__VA_ARGS__) : ::sllm::kernels::fn(__VA_ARGS__))
#else
#define SLLM_KERNEL(device, fn, ...) ::sllm::kernels::fn(__VA_ARGS__)
#endif

// The bf16 overload of kernels::cuda::fn, for an op's mixed-precision branch. Without the
// CUDA backend no tensor can be bf16 on a GPU (check_bf16 rejects it first), so the call is
// unreachable there and is not compiled.
#if SLLM_HAVE_CUDA
#define SLLM_KERNEL_BF16(fn, ...) ::sllm::kernels::cuda::fn(__VA_ARGS__)
#else
#define SLLM_KERNEL_BF16(fn, ...) SLLM_ASSERT(!"kernels::cuda::" #fn " (bf16) without the CUDA backend")
#endif

// Every float input of an op must be a defined f32 tensor, and all of them on one device:
// `device`, the device of the op's first input (pass t.device() for that one). CUDA is
// accepted only when the backend is built in.
inline void check_f32(const Tensor& t, const std::string& what, Device device) {
  check_dtype(t, DType::F32, what);
#if SLLM_HAVE_CUDA
  const bool supported = t.device() == Device::CPU || t.device() == Device::CUDA;
#else
  const bool supported = t.device() == Device::CPU;
#endif
  SLLM_CHECK(supported, str(what, ": tensor is on ", device_name(t.device()), ", which this build cannot run"),
             "move it with .to(Device::CPU), or build with CUDA (cmake -DSLLM_CUDA=ON) to run on a GPU");
  SLLM_CHECK(t.device() == device,
             str(what, ": tensor is on ", device_name(t.device()), " but the op's other inputs are on ", device_name(device)),
             "move every input of an op to one device (.to(Device::CUDA) or .to(Device::CPU)); model.to(device) moves all parameters");
}

// Ops that index by ids validate them on the host, so ids stay on the CPU whatever the
// device of the floats; device_ids() uploads the validated copy the kernels read.
inline void check_ids(const Tensor& ids, const std::string& what) {
  check_dtype(ids, DType::I32, what);
  SLLM_CHECK(ids.device() == Device::CPU, str(what, ": ids must be on the CPU"),
             "keep token ids on the host (ops validate them there and upload them themselves)");
}

// A private copy of host ids on `device` (a copy: the caller may change its ids afterwards).
inline Tensor device_ids(const Tensor& ids, Device device) {
  return device == Device::CPU ? ids.clone() : ids.to(device);
}

// A zeroed gradient buffer for `input` (its shape, dtype and device) when it requires
// grad, else an undefined tensor. Backward kernels accumulate into it, and get nullptr
// (skip the work) when undefined.
inline Tensor grad_for(const Tensor& input) {
  if (!input.defined() || !input.requires_grad()) return Tensor();
  return Tensor::zeros(input.shape(), input.dtype(), input.device());
}

// Like grad_for but uninitialized, for a backward that writes every element itself
// (GEMM with beta = 0, a copy) instead of accumulating into it.
inline Tensor grad_buffer_for(const Tensor& input) {
  if (!input.defined() || !input.requires_grad()) return Tensor();
  return Tensor::empty(input.shape(), input.dtype(), input.device());
}

inline float* ptr(Tensor& t) { return t.defined() ? t.mutable_f32() : nullptr; }

// ---- bf16 (mixed precision, src/ops/mixed_precision.cpp) ---------------------------------
// bf16 activations are a CUDA feature: the CPU kernels are the fp32 reference.
inline void check_bf16(const Tensor& t, const std::string& what, Device device) {
  check_dtype(t, DType::BF16, what);
  SLLM_CHECK(t.device() == Device::CUDA,
             str(what, ": bf16 compute runs on the CUDA backend, but the tensor is on ", device_name(t.device())),
             "on the CPU keep activations in f32 (train with --precision fp32, or ops::cast(x, DType::F32))");
  SLLM_CHECK(device == Device::CUDA, str(what, ": the op's other inputs are on ", device_name(device)),
             "move every input of an op to one device");
}
// f32 on any device, or bf16 on CUDA: the inputs of ops that have a mixed-precision path.
inline void check_float(const Tensor& t, const std::string& what, Device device) {
  if (t.defined() && t.dtype() == DType::BF16) check_bf16(t, what, device);
  else check_f32(t, what, device);
}
inline bool is_bf16(const Tensor& t) { return t.defined() && t.dtype() == DType::BF16; }
inline const bf16* bf(const Tensor& t) { return t.data<bf16>(); }
inline bf16* mutable_bf(Tensor& t) { return t.defined() ? t.mutable_data<bf16>() : nullptr; }

// The product of all dims but the last (the number of rows an op treats independently).
inline int64_t rows_of(const Tensor& t) { return t.ndim() == 0 ? 1 : t.numel() / t.dim(-1); }

}  // namespace sllm::ops::detail
