// The sm_80+ tensor-core primitives the attention kernels are built from, each a thin
// wrapper around one PTX instruction (PTX ISA, "Warp Level Matrix Multiply-Accumulate
// Instructions"), so a kernel reads as the algorithm and this file holds the bit layouts:
//
//   mma_m16n8k16   mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: D (16x8) = A (16x16) B (16x8) + C
//   ldmatrix_x4    ldmatrix.sync.aligned.m8n8.x4.shared.b16: four 8x8 bf16 tiles from shared memory
//   ldmatrix_x4_trans  the same, each tile transposed on the way
//   cp_async16     cp.async.cg.shared.global: 16 bytes global -> shared without registers
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type";
// g = lane / 4 is the "groupID", c = lane % 4 the "threadID_in_group"). Every register
// holds two bf16 (the lower address in the low half) or one fp32:
//   A (16 x 16, row-major): a[0] = A[g][2c, 2c+1],   a[1] = A[g+8][2c, 2c+1],
//                           a[2] = A[g][2c+8, 2c+9], a[3] = A[g+8][2c+8, 2c+9]
//   B (16 x 8, "col": k runs along a register): b[0] = B[2c, 2c+1][g], b[1] = B[2c+8, 2c+9][g]
//   C, D (16 x 8, fp32):    d[0], d[1] = D[g][2c, 2c+1],  d[2], d[3] = D[g+8][2c, 2c+1]
// So the accumulator of two neighbouring n-tiles (columns 0-7 and 8-15), rounded to bf16
// and packed in pairs, IS the A fragment of a 16x16 tile: FlashAttention-2 keeps S = QKᵀ in
// registers and feeds it, as P, straight into P V (pack_bf16x2 below).
//
// ldmatrix (PTX ISA, "Warp-level matrix load instruction: ldmatrix"): lanes 8i .. 8i+7 give
// the addresses of rows 0-7 of tile i (16 contiguous bytes each); every lane then receives,
// for tile i, register r[i] = tile_i[g][2c, 2c+1] -- exactly an A or B fragment piece when
// the tile's rows are the fragment's rows (A) or its n-columns (B = a row-major Kᵀ). With
// .trans it receives tile_i[2c][g], tile_i[2c+1][g]: the B fragment of a row-major (k, n)
// matrix such as V in P V.
//
// Under the simulator (SLLM_CUDA_SIM) the same functions compute the same registers with
// warp-collective exchanges (kernels/cuda_sim/warp_gather.h): every lane publishes its
// operands, and each lane computes its own outputs from the whole warp's, by the formulas
// above. tests/cuda/test_cuda_mma.cpp checks them against plain matrix products, so a
// layout mistake here shows on a machine without a GPU. All 32 lanes must call each one.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>
#include <cstring>

#if SLLM_CUDA_SIM
#include "kernels/cuda_sim/warp_gather.h"
#endif

namespace sllm::kernels::cuda::mma {

// Two floats rounded to bf16 (round to nearest even) in one register: lo in bits 0-15.
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat16 l = __float2bfloat16(lo), h = __float2bfloat16(hi);
  uint16_t lb, hb;
  memcpy(&lb, &l, 2);
  memcpy(&hb, &h, 2);
  return uint32_t(lb) | (uint32_t(hb) << 16);
}

// The low and high bf16 of a register as floats (exact: bf16 is fp32's upper half).
__device__ __forceinline__ float bf16_lo(uint32_t r) {
  const uint32_t bits = r << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}
__device__ __forceinline__ float bf16_hi(uint32_t r) {
  const uint32_t bits = r & 0xffff0000u;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

#if !SLLM_CUDA_SIM

// d = A B + d (fp32 accumulate).
__device__ __forceinline__ void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// row: this lane's row address (lanes 8i..8i+7: rows 0-7 of tile i), in shared memory.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  const unsigned addr = unsigned(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  const unsigned addr = unsigned(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// 16 bytes from global src to shared dst (both 16-byte aligned), asynchronously; with
// valid == false nothing is read and dst is zero-filled (the src-size operand is 0:
// PTX ISA, "cp.async"), so a partial tile multiplies like a full one.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  const unsigned addr = unsigned(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(src), "r"(valid ? 16 : 0));
}
// Closes the group of cp.async issued so far; waits until at most N groups are in flight.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

#else  // SLLM_CUDA_SIM: the same registers, computed from the whole warp's operands

__device__ inline void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  struct Operands {
    uint32_t a[4], b[2];
  };
  const Operands mine{{a[0], a[1], a[2], a[3]}, {b[0], b[1]}};
  Operands all[32];
  sllm::cudasim::warp_all_gather(&mine, sizeof mine, all);
  // Rebuild A (16x16) and B (16x8) from the layouts at the top of this file.
  float A[16][16], Bm[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, c = lane % 4;
    const uint32_t* ra = all[lane].a;
    const int rows[4] = {g, g + 8, g, g + 8}, cols[4] = {2 * c, 2 * c, 2 * c + 8, 2 * c + 8};
    for (int i = 0; i < 4; ++i) {
      A[rows[i]][cols[i]] = bf16_lo(ra[i]);
      A[rows[i]][cols[i] + 1] = bf16_hi(ra[i]);
    }
    Bm[2 * c][g] = bf16_lo(all[lane].b[0]);
    Bm[2 * c + 1][g] = bf16_hi(all[lane].b[0]);
    Bm[2 * c + 8][g] = bf16_lo(all[lane].b[1]);
    Bm[2 * c + 9][g] = bf16_hi(all[lane].b[1]);
  }
  const int lane = sllm::cudasim::lane_id(), g = lane / 4, c = lane % 4;
  const int out_row[4] = {g, g, g + 8, g + 8}, out_col[4] = {2 * c, 2 * c + 1, 2 * c, 2 * c + 1};
  for (int i = 0; i < 4; ++i) {
    float acc = d[i];  // products of bf16 are exact in fp32; sums in k order
    for (int k = 0; k < 16; ++k) acc += A[out_row[i]][k] * Bm[k][out_col[i]];
    d[i] = acc;
  }
}

namespace detail {
// Row addresses of the four tiles, as every lane passed them.
inline void row_addresses(const void* row, const unsigned char* (&rows)[32]) {
  sllm::cudasim::warp_all_gather(&row, sizeof row, rows);
}
inline uint16_t half_at(const unsigned char* p, int i) {
  uint16_t h;
  std::memcpy(&h, p + 2 * i, 2);
  return h;
}
}  // namespace detail

__device__ inline void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  const unsigned char* rows[32];
  detail::row_addresses(row, rows);
  const int lane = sllm::cudasim::lane_id(), g = lane / 4, c = lane % 4;
  for (int i = 0; i < 4; ++i) {
    const unsigned char* p = rows[8 * i + g];
    r[i] = uint32_t(detail::half_at(p, 2 * c)) | (uint32_t(detail::half_at(p, 2 * c + 1)) << 16);
  }
}
__device__ inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  const unsigned char* rows[32];
  detail::row_addresses(row, rows);
  const int lane = sllm::cudasim::lane_id(), g = lane / 4, c = lane % 4;
  for (int i = 0; i < 4; ++i)
    r[i] = uint32_t(detail::half_at(rows[8 * i + 2 * c], g)) | (uint32_t(detail::half_at(rows[8 * i + 2 * c + 1], g)) << 16);
}

// Copies at once (the simulator has no asynchronous engine); commit and wait are no-ops.
__device__ inline void cp_async16(void* dst, const void* src, bool valid) {
  if (valid)
    std::memcpy(dst, src, 16);
  else
    std::memset(dst, 0, 16);
}
__device__ inline void cp_async_commit() {}
template <int N>
__device__ inline void cp_async_wait() {}

#endif

}  // namespace sllm::kernels::cuda::mma
