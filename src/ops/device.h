// Device setup of the ops layer: what must happen once before tensors can live on a GPU.
#pragma once
#include "tensor/storage.h"

namespace sllm::ops {

// True when this build has the CUDA backend and a CUDA GPU is visible. Never throws.
bool cuda_available();

// Makes `device` usable by tensors and ops; idempotent, nothing to do for the CPU. For
// Device::CUDA: registers the caching allocator (tensor/storage.h) and the device gradient
// accumulation of autograd. A sllm::Error with a hint when the build has no CUDA backend
// or no GPU is visible.
void init_device(Device device);

}  // namespace sllm::ops
