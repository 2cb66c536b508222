// Device setup of the ops layer: what must happen once before tensors can live on a GPU.
#pragma once
#include <string>

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

// Waits until all work queued on `device` has finished (GPU kernels return before they
// run); nothing to do for the CPU. For timing: call before reading the clock.
void synchronize(Device device);

}  // namespace sllm::ops
