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

// How a model computes (a --precision flag): FP32, the reference; TF32, fp32 activations
// with the GEMMs on TF32 tensor cores (10-bit mantissa inputs, fp32 accumulation; CUDA only);
// BF16, mixed precision (ops/mixed_precision.h; CUDA only).
enum class Precision { FP32, TF32, BF16 };
// "fp32", "tf32", "bf16" or "auto" (BF16 on CUDA, FP32 on the CPU); a sllm::Error with a
// hint for anything else, or for tf32/bf16 on the CPU.
Precision parse_precision(const std::string& name, Device device);
const char* precision_name(Precision precision);  // the flag spelling, for logs and JSON
// Puts the process's GEMMs in the mode `precision` asks for (TF32 on or off) and returns
// the compute dtype for nn::Transformer::set_compute_dtype.
DType apply_precision(Precision precision);

// Waits until all work queued on `device` has finished (GPU kernels return before they
// run); nothing to do for the CPU. For timing: call before reading the clock.
void synchronize(Device device);

}  // namespace sllm::ops
