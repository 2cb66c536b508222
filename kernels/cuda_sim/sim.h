// The CUDA simulator's execution model, for kernels/cuda/*.cu compiled as plain C++
// (`cmake -DSLLM_CUDA=SIM`): a grid runs block after block on the calling CPU thread, and
// a block's threads run as fibers in thread-index order, each until it reaches a barrier
// (__syncthreads, a warp shuffle, __syncwarp, a wmma operation) or returns. A barrier
// releases when every live thread of its scope (block or warp) waits at it.
//
// What this catches on a machine without a GPU: wrong indexing and tile arithmetic, a
// missing __syncthreads (a thread reads shared memory its neighbours have not written yet,
// because they run after it), reads of dynamic shared memory never written (filled with
// NaN bytes), barriers some threads of a block or warp never reach (reported, then abort),
// launch configurations a GPU would reject (cudaGetLastError reports them), and, under
// AddressSanitizer, out-of-bounds device accesses. What it cannot catch: timing, real data
// races between concurrently running blocks, and anything architecture-specific.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};

// The built-in index variables, set by the scheduler before it resumes each fiber.
extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;
constexpr int warpSize = 32;

namespace sllm::cudasim {

// Runs body() once per thread of every block of the grid (see the top of this file).
// A configuration a GPU would reject sets the error cudaGetLastError returns and runs nothing.
void run_grid(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()>& body);

// The current block's dynamic shared memory (shared_bytes of the launch, NaN-filled).
void* dynamic_shared();

// Block-wide and warp-wide barriers of the calling fiber.
void sync_block();
void sync_warp();

// A full-warp exchange: every lane offers 8 bytes and receives lane src's offer. All 32
// lanes must take part (the project uses only full-mask shuffles).
uint64_t warp_exchange(uint64_t mine, int src_lane, unsigned mask);

// Lane of the calling fiber within its warp.
int lane_id();

template <class F>
struct Launcher {
  dim3 grid, block;
  size_t shared_bytes;
  F kernel;
  template <class... Args>
  void operator()(Args... args) const {
    run_grid(grid, block, shared_bytes, [&] { kernel(args...); });
  }
};

// SLLM_LAUNCH (kernels/cuda/launch.h) builds `Launch(grid, block, shared) + [](auto... a) { kernel(a...); }`,
// wrapped in launch.h's ProfiledLaunch, which times the Launcher's call for the profile
// (kernels/cuda/profile.cpp) exactly as it times a <<<...>>> launch on a GPU.
struct Launch {
  dim3 grid, block;
  size_t shared_bytes;
  Launch(dim3 g, dim3 b, size_t s) : grid(g), block(b), shared_bytes(s) {}
  template <class F>
  Launcher<F> operator+(F kernel) const {
    return {grid, block, shared_bytes, kernel};
  }
};

template <class T>
T shuffle(unsigned mask, T v, int src_lane) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffles move at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = warp_exchange(bits, src_lane, mask);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

}  // namespace sllm::cudasim

inline void __syncthreads() { sllm::cudasim::sync_block(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  (void)mask;
  sllm::cudasim::sync_warp();
}
template <class T>
T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
  (void)width;
  return sllm::cudasim::shuffle(mask, v, src_lane & 31);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  (void)width;
  return sllm::cudasim::shuffle(mask, v, (sllm::cudasim::lane_id() ^ lane_mask) & 31);
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  (void)width;
  const int lane = sllm::cudasim::lane_id(), src = lane + int(delta);
  return sllm::cudasim::shuffle(mask, v, src < 32 ? src : lane);
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  (void)width;
  const int lane = sllm::cudasim::lane_id(), src = lane - int(delta);
  return sllm::cudasim::shuffle(mask, v, src >= 0 ? src : lane);
}
