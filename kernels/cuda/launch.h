// How every kernel in kernels/cuda/ is launched: the one stream all work goes to, the grid
// size of elementwise loops, and the check that turns a CUDA error into sllm::Error.
// Internal to kernels/cuda/ (it includes CUDA headers; kernels/cuda_kernels.h does not).
#pragma once
#include <cuda_runtime.h>  // under SLLM_CUDA=SIM: kernels/cuda_sim/include/cuda_runtime.h

#include <algorithm>
#include <cstdint>

#include "core/error.h"

namespace sllm::kernels::cuda {

// Throws sllm::Error naming the failed call, the CUDA error string and a hint chosen by the
// error (out of memory, no device, driver too old, no kernel image for this GPU, ...).
[[noreturn]] void fail_cuda(cudaError_t err, const char* call, const char* file, int line);

// All work is issued to the legacy default stream of the current device, in order: a
// kernel may read what the previous one wrote, and a block freed to the caching allocator
// can be handed to the next op without waiting (the stream orders the two uses).
inline cudaStream_t stream() { return nullptr; }

// Threads per block of the elementwise and row kernels: 8 warps.
constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n items: enough to fill any current GPU several times
// over, capped so huge n needs no 64-bit grid arithmetic (the loops stride by the grid).
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return unsigned(std::clamp<int64_t>(blocks, 1, int64_t(1) << 16));
}

}  // namespace sllm::kernels::cuda

#define SLLM_CUDA_CHECK(call)                                                        \
  do {                                                                               \
    const cudaError_t sllm_cuda_err_ = (call);                                       \
    if (sllm_cuda_err_ != cudaSuccess)                                               \
      ::sllm::kernels::cuda::fail_cuda(sllm_cuda_err_, #call, __FILE__, __LINE__);   \
  } while (0)

// After every <<<...>>>: a bad launch configuration shows up here, not at the next call.
#define SLLM_CUDA_CHECK_LAUNCH() SLLM_CUDA_CHECK(cudaGetLastError())

// Every kernel launch and every dynamically sized shared array goes through these two
// macros, so the same .cu file also compiles as plain C++ for the CPU simulator
// (kernels/cuda_sim/, `cmake -DSLLM_CUDA=SIM`), where a block's threads run as fibers:
//   SLLM_LAUNCH(grid, block, shared_bytes, kernel)(args...);
//   SLLM_DYNAMIC_SHARED(float, smem);   // extern __shared__ float smem[];
// The kernel comes last so a template with commas needs no extra parentheses.
#if SLLM_CUDA_SIM
#define SLLM_LAUNCH(grid, block, shared_bytes, ...) \
  (::sllm::cudasim::Launch((grid), (block), (shared_bytes)) + [](auto... sllm_sim_args) { __VA_ARGS__(sllm_sim_args...); })
#define SLLM_DYNAMIC_SHARED(type, name) type* name = static_cast<type*>(::sllm::cudasim::dynamic_shared())
#else
#define SLLM_LAUNCH(grid, block, shared_bytes, ...) __VA_ARGS__<<<(grid), (block), (shared_bytes), ::sllm::kernels::cuda::stream()>>>
#define SLLM_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif
