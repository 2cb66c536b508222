// How much memory the process uses on a device, now and at its peak: what every training
// run logs as peak_mem_bytes (train/train_loop.cpp), what `sllm bench train` reports, and
// what train/memory_estimate.h's prediction is checked against.
//
//  - CPU: the resident set of the whole process from /proc/self/status (Linux, proc(5)):
//    VmRSS now, VmHWM ("high water mark") the peak. It counts everything the process
//    holds (the binary, libraries, OpenMP stacks, the host allocator's cache), not only
//    tensors. reset_peak_memory writes "5" to /proc/self/clear_refs, which sets VmHWM back
//    to the current RSS (Linux >= 4.0); where that is not permitted, the peak stays the
//    peak since the process started.
//  - CUDA: the caching allocator's bytes held by live tensors (rounded block sizes) and its
//    peak since the last reset (kernels/cuda_kernels.h CacheStats). The cache itself, the
//    CUDA context and cuBLAS workspaces are not counted: they are not the run's tensors.
// Returns 0 where the number cannot be read (no /proc, or a build without CUDA); never throws.
#pragma once
#include <cstdint>

#include "tensor/storage.h"

namespace sllm::ops {

int64_t current_memory_bytes(Device device);
int64_t peak_memory_bytes(Device device);
// Starts a new peak window; returns false when the device's peak could not be reset (the
// CPU's clear_refs not writable), true otherwise.
bool reset_peak_memory(Device device);

}  // namespace sllm::ops
