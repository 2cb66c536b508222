// Multi-tensor launches: one kernel for a whole list of tensors (the idea of apex's
// multi_tensor_apply and of PyTorch's foreach kernels behind torch.optim's
// _multi_tensor_adamw; written here from the idea, not from their code). Every tensor is cut
// into chunks of kChunk elements and each block of the grid takes one (tensor, chunk) pair:
// block b belongs to the tensor t with first_block[t] <= b < first_block[t + 1], found by a
// binary search over a descriptor table in device memory (a DeviceTable upload). A tensor of
// n elements gets ceil(n / kChunk) blocks, an empty one none.
//
// The partition depends only on the sizes and kChunk, never on the GPU, so a reduction over
// it (multi_tensor_norm.cu) gives the same result on every run and every device.
// Legend: count tensors, total_blocks = the sum of their chunk counts.
#pragma once
#include <cuda_runtime.h>  // under SLLM_CUDA=SIM: kernels/cuda_sim/include/cuda_runtime.h

#include <cstdint>
#include <vector>

#include "core/error.h"

namespace sllm::kernels::cuda {

// Elements per block: 128 per thread of a 256-thread block, enough work per block to hide
// the descriptor lookup; GPT-2 124M's 148 tensors make about 3900 blocks.
constexpr int64_t kMultiTensorChunk = int64_t(1) << 15;

// Fills each entry's first_block from the entries' n (in list order) and returns the total
// number of blocks. Entry is a descriptor struct with int64_t fields n and first_block.
template <class Entry>
int64_t assign_blocks(std::vector<Entry>& entries, const char* who) {
  int64_t blocks = 0;
  for (Entry& e : entries) {
    SLLM_CHECK(e.n >= 0, str(who, ": negative element count ", e.n), "sizes must be >= 0");
    e.first_block = blocks;
    blocks += (e.n + kMultiTensorChunk - 1) / kMultiTensorChunk;
  }
  // gridDim.x is at most 2^31 - 1 (CUDA C Programming Guide, "Compute Capabilities").
  SLLM_CHECK(blocks < (int64_t(1) << 31), str(who, ": ", blocks, " chunks exceed one grid"),
             "split the tensor list into several calls");
  return blocks;
}

// The index of the entry that block `block` works on: the last one whose first_block is
// <= block (an empty tensor shares its first_block with the next one and is skipped).
template <class Entry>
__device__ inline int64_t entry_of_block(const Entry* entries, int64_t count, int64_t block) {
  int64_t lo = 0, hi = count;  // invariant: entries[lo].first_block <= block < entries[hi].first_block
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (entries[mid].first_block <= block) lo = mid;
    else hi = mid;
  }
  return lo;
}

}  // namespace sllm::kernels::cuda
