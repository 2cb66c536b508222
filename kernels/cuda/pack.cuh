// 16-byte packs for the pointwise kernels: a thread moves P consecutive elements of each
// buffer with one vector load or store (8 bf16, or 4 floats; a pack of narrower elements
// beside wider ones is 8 bytes) instead of P 2- or 4-byte accesses. The memory system moves
// the same bytes either way; what packs save is instructions and load/store slots, which
// is what bounded the one-element-per-iteration kernels on an H200 (a bf16 GELU ran at
// ~1 TB/s of its 4.8). The arithmetic per element is unchanged, so a packed kernel gives
// the same bits as the one-element kernel.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "kernels/cuda/element.cuh"

namespace sllm::kernels::cuda {

template <class T, int P>
struct alignas(sizeof(T) * P) Pack {
  T v[P];
};

// Pack i (elements [i P, i P + P)) of p.
template <int P, class T>
__device__ inline Pack<T, P> load_pack(const T* p, int64_t i) {
  return *reinterpret_cast<const Pack<T, P>*>(p + i * P);
}
template <int P, class T>
__device__ inline void store_pack(T* p, int64_t i, const Pack<T, P>& v) {
  *reinterpret_cast<Pack<T, P>*>(p + i * P) = v;
}

// Grid-stride over packs 0 .. packs - 1.
#define SLLM_FOR_EACH_PACK(i, packs) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (packs); i += int64_t(gridDim.x) * blockDim.x)

inline bool aligned16(std::initializer_list<const void*> ptrs) {
  for (const void* p : ptrs)
    if (p && reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

// Runs launch(std::integral_constant<int, P'>, offset, count) over n elements: packs of P
// from offset 0 when every (non-null) pointer is 16-byte aligned, then the remaining
// elements one by one (P' = 1) from the offset where the packs stopped. The kernels offset
// their pointers by `offset` and treat `count` as their pack count.
template <int P, class Launch>
void over_packs(int64_t n, std::initializer_list<const void*> ptrs, Launch launch) {
  const int64_t vec = aligned16(ptrs) ? n / P * P : 0;
  if (vec > 0) launch(std::integral_constant<int, P>{}, int64_t(0), vec / P);
  if (n > vec) launch(std::integral_constant<int, 1>{}, vec, n - vec);
}

}  // namespace sllm::kernels::cuda
