// Device setup of the ops layer: what must happen once before tensors can live on a GPU.
#pragma once
#include <string>

#include "tensor/dtype.h"
#include "tensor/storage.h"

namespace sllm::ops {

// True when this build has the CUDA backend and a CUDA GPU is visible. Never throws.
bool cuda_available();

// Makes `device` usable by tensors and ops; idempotent, nothing to do for the CPU. For
// Device::CUDA: registers the caching allocator (tensor/storage.h) and the device gradient
// accumulation of autograd. A sllm::Error with a hint when the build has no CUDA backend
// or no GPU is visible.
void init_device(Device device);

// "cpu" or "cuda" (a --device flag's value) as a Device; a sllm::Error with a hint otherwise.
Device parse_device(const std::string& name);

// A --precision flag's value as the model's compute dtype (nn::Transformer::set_compute_dtype):
// "fp32" -> F32, "bf16" -> BF16 (mixed precision, CUDA only), "auto" -> BF16 on CUDA and
// F32 on the CPU. A sllm::Error with a hint otherwise.
DType parse_precision(const std::string& name, Device device);
// "fp32" or "bf16", the flag spelling of a compute dtype (for logs and JSON).
const char* precision_name(DType dtype);

// Waits until all work queued on `device` has finished (GPU kernels return before they
// run); nothing to do for the CPU. For timing: call before reading the clock.
void synchronize(Device device);

}  // namespace sllm::ops
