// AVX2 + FMA SGEMM micro-kernel and packing (gemm_internal.h explains the blocking scheme).
// Dimension legend: MR x NR register tile, kc the packed K slice,
// mr/nr the valid part of an edge tile. Compiled with target attributes so it builds
// without -march=native; the driver only calls it when the CPU reports avx2 and fma.
//
// Register tile 6 x 16: 6 rows times two ymm vectors = 12 accumulators + 2 for the B row
// + 1 broadcast = 15 of the 16 ymm registers (the classic Haswell tile, as in BLIS).
// KC = 384 (two K slices for C = 768 instead of three, so C is read and written fewer
// times) measured 1-2% faster than 256 on Zen 3 (`sllm bench gemm`, 2026-12-05). NC = 3072
// lets the qkv and MLP-up products (N = 2304, 3072) take the threads' shared-B path
// (gemm.cpp); about 1% on them, the packed B block (4.5 MiB) living in L3.
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/gemm_internal.h"

namespace sllm::kernels::gemm_detail {
namespace {

constexpr int kMR = 6;
constexpr int kNR = 16;

#define SLLM_AVX2 __attribute__((target("avx2,fma")))

// The first n (0..8) lanes set, for maskload.
SLLM_AVX2 inline __m256i lanes(int64_t n) {
  const int k = n <= 0 ? 0 : n >= 8 ? 8 : int(n);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Stores the first N (1..8) lanes of v at dst. The widths packed are 16 (two full vectors)
// and 6, so the 6-lane store gets its own path (4 + 2 lanes): AMD's masked stores are slow.
template <int N>
SLLM_AVX2 inline void store_lanes(float* dst, __m256 v) {
  if constexpr (N == 8) {
    _mm256_storeu_ps(dst, v);
  } else if constexpr (N == 6) {
    _mm_storeu_ps(dst, _mm256_castps256_ps128(v));
    _mm_storel_pi(reinterpret_cast<__m64*>(dst + 4), _mm256_extractf128_ps(v, 1));
  } else {
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, v);
    for (int i = 0; i < N; ++i) dst[i] = tmp[i];
  }
}

// In-register transpose of an 8x8 block: on return v[j][i] = old v[i][j]. Pairs of rows
// (unpack), 2x2 blocks of pairs inside 128-bit lanes (shuffle_ps), then the lanes (permute2f128).
SLLM_AVX2 inline void transpose8(__m256 v[8]) {
  __m256 t[8], u[8];
  for (int p = 0; p < 4; ++p) {
    t[2 * p] = _mm256_unpacklo_ps(v[2 * p], v[2 * p + 1]);
    t[2 * p + 1] = _mm256_unpackhi_ps(v[2 * p], v[2 * p + 1]);
  }
  for (int q = 0; q < 2; ++q) {
    u[4 * q + 0] = _mm256_shuffle_ps(t[4 * q], t[4 * q + 2], 0x44);
    u[4 * q + 1] = _mm256_shuffle_ps(t[4 * q], t[4 * q + 2], 0xEE);
    u[4 * q + 2] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
    u[4 * q + 3] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    v[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
    v[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
  }
}

// One micro-panel of W rows (W = 6 or 16) from op(X)[i][k] = X[k*ld + i]: row k of X holds
// the panel's rows contiguously. `valid` < W rows are zero-padded (masked loads).
template <int W>
SLLM_AVX2 void pack_panel_trans(const float* X, int64_t ld, int64_t valid, int64_t kc, float* panel) {
  constexpr int kVecs = (W + 7) / 8, kLast = W - 8 * (kVecs - 1);  // lanes stored from the last vector
  if (valid >= W) {
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = X + k * ld;  // (W)
      for (int v = 0; v + 1 < kVecs; ++v) store_lanes<8>(panel + k * W + 8 * v, _mm256_loadu_ps(src + 8 * v));
      const float* last = src + 8 * (kVecs - 1);
      store_lanes<kLast>(panel + k * W + 8 * (kVecs - 1),
                         kLast == 8 ? _mm256_loadu_ps(last) : _mm256_maskload_ps(last, lanes(kLast)));
    }
    return;
  }
  for (int64_t k = 0; k < kc; ++k) {
    for (int v = 0; v < kVecs; ++v) {
      const __m256 x = _mm256_maskload_ps(X + k * ld + 8 * v, lanes(valid - 8 * v));
      if (v + 1 < kVecs) {
        store_lanes<8>(panel + k * W + 8 * v, x);
      } else {
        store_lanes<kLast>(panel + k * W + 8 * v, x);
      }
    }
  }
}

// One micro-panel of W rows from op(X)[i][k] = X[i*ld + k]: rows are contiguous along k,
// so 8 rows x 8 k at a time are loaded and transposed in registers.
template <int W>
SLLM_AVX2 void pack_panel_rows(const float* X, int64_t ld, int64_t valid, int64_t kc, float* panel) {
  for (int c = 0; c < W; c += 8) {
    const int n = W - c < 8 ? W - c : 8;  // rows of this group stored (lanes after the transpose)
    const int64_t group_valid = valid - c;
    for (int64_t k0 = 0; k0 < kc; k0 += 8) {
      const bool full_k = kc - k0 >= 8;
      const __m256i k_mask = lanes(kc - k0);
      __m256 v[8];
      for (int q = 0; q < 8; ++q) {
        if (q >= n || q >= group_valid) {  // zero padding past the last row
          v[q] = _mm256_setzero_ps();
          continue;
        }
        const float* src = X + (c + q) * ld + k0;  // (8) of row c + q
        v[q] = full_k ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, k_mask);
      }
      transpose8(v);
      const int kn = full_k ? 8 : int(kc - k0);
      float* out = panel + k0 * W + c;
      if (n == 8) {
        for (int k = 0; k < kn; ++k) store_lanes<8>(out + k * W, v[k]);
      } else {
        for (int k = 0; k < kn; ++k) store_lanes<W % 8>(out + k * W, v[k]);
      }
    }
  }
}

template <int W>
SLLM_AVX2 void pack_width(bool trans, const float* X, int64_t ld, int64_t i0, int64_t rows, int64_t p0, int64_t kc,
                          float* dst) {
  for (int64_t r = 0; r < rows; r += W) {
    if (trans) {
      pack_panel_trans<W>(X + p0 * ld + i0 + r, ld, rows - r, kc, dst + r * kc);
    } else {
      pack_panel_rows<W>(X + (i0 + r) * ld + p0, ld, rows - r, kc, dst + r * kc);
    }
  }
}

// Packs rows [i0, i0+rows) of op(X) into consecutive micro-panels (gemm_internal.h, PackFn):
// the A panels (MR = 6 rows) and the B panels (NR = 16 columns), with the widths known at
// compile time. pack_generic, which tests every element for padding and layout, ran at
// 1-3 floats/ns on Zen 3, this at 4-8; it lifted the whole GEMM by 3-5%.
SLLM_AVX2 void pack(bool trans, const float* X, int64_t ld, int64_t i0, int64_t rows, int64_t p0, int64_t kc,
                    int width, float* dst) {
  if (width == kMR) return pack_width<kMR>(trans, X, ld, i0, rows, p0, kc, dst);
  if (width == kNR) return pack_width<kNR>(trans, X, ld, i0, rows, p0, kc, dst);
  pack_generic(trans, X, ld, i0, rows, p0, kc, width, dst);
}

SLLM_AVX2 void kernel_6x16(int64_t kc, const float* __restrict Ap,
                                                      const float* __restrict Bp, float* C, int64_t ldc, int mr,
                                                      int nr, float alpha, float beta) {
  // C is only touched at the end: fetch its lines now so the stores do not stall.
  for (int r = 0; r < mr; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc + 15), _MM_HINT_T0);
  }
  __m256 acc[kMR][2];
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    // B streams from L2/L3 (one 64-byte line per k step): ask for it 12 steps ahead. Worth
    // 1-2% of the whole GEMM on Zen 3, where the hardware prefetcher alone falls behind.
    _mm_prefetch(reinterpret_cast<const char*>(Bp + (k + 12) * kNR), _MM_HINT_T0);
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

const Isa kIsaAvx2 = {"avx2", kMR, kNR, /*KC=*/384, /*MC=*/1024, /*NC=*/3072, pack, kernel_6x16};

}  // namespace sllm::kernels::gemm_detail
