// A warp-collective all-gather for the simulator's tensor-core emulation
// (kernels/cuda/mma_sm80.cuh): mma.sync and ldmatrix combine operands the whole warp holds,
// which one 8-byte shuffle per call would make slow. All 32 lanes must call it.
#pragma once
#include <cstddef>

namespace sllm::cudasim {

// Every lane offers `bytes` (at most 64) at `mine`; afterwards `all` holds the 32 offers of
// the calling warp in lane order (32 * bytes).
void warp_all_gather(const void* mine, size_t bytes, void* all);

}  // namespace sllm::cudasim
