// The keep decision of dropout, shared by the CPU kernel (kernels/cpu/dropout.cpp) and the
// CUDA kernel (kernels/cuda/dropout.cu) so both draw the same mask, bit for bit, for the
// same (seed, offset): a mask made on one device can be checked or replayed on the other.
//
// Counter-based RNG (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3"):
// element i's draw is a pure function of (seed, offset + i), here the splitmix64 finalizer
// (Steele, Lea & Flood 2014) applied to the counter's state. No state is carried between
// elements, so the mask does not depend on the thread count, the launch shape or how a
// tensor is split into calls, and it is cheap to regenerate.
#pragma once
#include <cstdint>

// Functions below are compiled for the host and, under nvcc, for the device too. (The CUDA
// simulator compiles .cu files as plain C++, where device code is host code: empty.)
#if defined(__CUDACC__)
#define SLLM_HOST_DEVICE __host__ __device__
#else
#define SLLM_HOST_DEVICE
#endif

namespace sllm::kernels {

// splitmix64: the state after `counter` steps from `seed`, then its output mix.
SLLM_HOST_DEVICE inline uint64_t splitmix64_at(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + (counter + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Element `counter` is kept iff the top 32 random bits u satisfy u >= p * 2^32, which
// happens with probability 1 - p (to 2^-32). The threshold is computed once per call, on
// the host, in double (exact for every float p in [0, 1)).
inline uint64_t dropout_threshold(float p) { return uint64_t(double(p) * 4294967296.0); }

SLLM_HOST_DEVICE inline bool dropout_keep(uint64_t seed, uint64_t counter, uint64_t threshold) {
  return (splitmix64_at(seed, counter) >> 32) >= threshold;
}

// Survivors are scaled by 1 / (1 - p); p == 1 drops everything (scale unused).
inline float dropout_scale(float p) { return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; }

}  // namespace sllm::kernels
