// AVX2 + FMA SGEMM micro-kernel (gemm_internal.h explains the blocking scheme); packing is
// the portable routine. Dimension legend: MR x NR register tile, kc the packed K slice,
// mr/nr the valid part of an edge tile. Compiled with target attributes so it builds
// without -march=native; the driver only calls it when the CPU reports avx2 and fma.
//
// Register tile 6 x 16: 6 rows times two ymm vectors = 12 accumulators + 2 for the B row
// + 1 broadcast = 15 of the 16 ymm registers (the classic Haswell tile, as in BLIS).
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/gemm_internal.h"

namespace sllm::kernels::gemm_detail {
namespace {

constexpr int kMR = 6;
constexpr int kNR = 16;

__attribute__((target("avx2,fma"))) void kernel_6x16(int64_t kc, const float* __restrict Ap,
                                                      const float* __restrict Bp, float* C, int64_t ldc, int mr,
                                                      int nr, float alpha, float beta) {
  __m256 acc[kMR][2];
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(Bp + k * kNR);
    const __m256 b1 = _mm256_load_ps(Bp + k * kNR + 8);
    const float* a = Ap + k * kMR;
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) {
      const __m256 ar = _mm256_broadcast_ss(a + r);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  if (nr == kNR) {
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) {
      if (r >= mr) break;
      float* c = C + r * ldc;
      __m256 x0 = _mm256_mul_ps(va, acc[r][0]);
      __m256 x1 = _mm256_mul_ps(va, acc[r][1]);
      if (beta != 0.0f) {
        x0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), x0);
        x1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), x1);
      }
      _mm256_storeu_ps(c, x0);
      _mm256_storeu_ps(c + 8, x1);
    }
    return;
  }
  // Edge tile: spill the accumulators and update only the nr valid columns.
  alignas(32) float tile[kMR][kNR];  // (MR, NR)
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) {
    _mm256_store_ps(tile[r], acc[r][0]);
    _mm256_store_ps(tile[r] + 8, acc[r][1]);
  }
  for (int r = 0; r < mr; ++r) {
    for (int c = 0; c < nr; ++c) {
      float* out = C + r * ldc + c;
      *out = beta == 0.0f ? alpha * tile[r][c] : alpha * tile[r][c] + beta * *out;
    }
  }
}

}  // namespace

const Isa kIsaAvx2 = {"avx2", kMR, kNR, /*KC=*/256, /*MC=*/1024, /*NC=*/1536, pack_generic, kernel_6x16};

}  // namespace sllm::kernels::gemm_detail
