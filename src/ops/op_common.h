// Shared plumbing of the op files: input checks and gradient buffers.
#pragma once
#include <initializer_list>
#include <string>

#include "autograd/autograd.h"
#include "core/error.h"
#include "tensor/tensor.h"

namespace sllm::ops::detail {

// Every float input of an op must be a defined f32 tensor on the CPU (the CUDA backend
// adds its own dispatch in front of these checks).
inline void check_f32_cpu(const Tensor& t, const std::string& what) {
  check_dtype(t, DType::F32, what);
  SLLM_CHECK(t.device() == Device::CPU, str(what, ": tensor is on ", device_name(t.device()), ", this op runs on the CPU"),
             "move it with .to(Device::CPU) or run the model with --device cuda");
}

inline void check_ids(const Tensor& ids, const std::string& what) {
  check_dtype(ids, DType::I32, what);
  SLLM_CHECK(ids.device() == Device::CPU, str(what, ": ids must be on the CPU"), "move them with .to(Device::CPU)");
}

// A zeroed gradient buffer for `input` when it requires grad, else an undefined tensor.
// Backward kernels accumulate into it, and get nullptr (skip the work) when undefined.
inline Tensor grad_for(const Tensor& input) {
  if (!input.defined() || !input.requires_grad()) return Tensor();
  return Tensor::zeros(input.shape());
}

// Like grad_for but uninitialized, for a backward that writes every element itself
// (GEMM with beta = 0, a copy) instead of accumulating into it.
inline Tensor grad_buffer_for(const Tensor& input) {
  if (!input.defined() || !input.requires_grad()) return Tensor();
  return Tensor::empty(input.shape());
}

inline float* ptr(Tensor& t) { return t.defined() ? t.mutable_f32() : nullptr; }

// The product of all dims but the last (the number of rows an op treats independently).
inline int64_t rows_of(const Tensor& t) { return t.ndim() == 0 ? 1 : t.numel() / t.dim(-1); }

}  // namespace sllm::ops::detail
