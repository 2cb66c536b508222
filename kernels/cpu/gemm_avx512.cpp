// AVX-512 SGEMM micro-kernel and packing (see gemm_internal.h for the blocking scheme).
// Dimension legend: MR x NR register tile, kc the packed K slice, mr/nr the valid part of
// an edge tile. Compiled with target attributes so it builds without -march=native; the
// driver only calls it when the CPU reports avx512f (gemm.cpp: isa_supported).
//
// Register tile 14 x 32: 14 rows of C times two zmm vectors of 16 columns = 28 accumulator
// registers, + 2 for the B row + 1 broadcast = 31 of the 32 zmm registers. Per k step it
// issues 28 FMAs against 2 vector loads and 14 broadcasts, so two FMA ports stay busy
// (14 cycles of FMA vs 8 cycles of loads) and each accumulator is reused only every 14
// cycles, well above the 4-cycle FMA latency. (BLIS uses the transposed 32 x 12 tile on
// Skylake-X for the same reasons: Van Zee & van de Geijn, BLIS, ACM TOMS 2015.)
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/gemm_internal.h"

// GCC 12's _mm512_undefined_ps (used inside _mm512_shuffle_f32x4) self-initializes on
// purpose and trips -Wmaybe-uninitialized; the warning is about the header, not this code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace sllm::kernels::gemm_detail {
namespace {

constexpr int kMR = 14;
constexpr int kNR = 32;

#define SLLM_AVX512 __attribute__((target("avx512f,fma")))

SLLM_AVX512 inline __mmask16 lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1u);
}

// In-register transpose of a 16x16 block: on return v[j][i] = old v[i][j].
// Three shuffle stages: pairs of rows (unpack), 4x4 blocks inside 128-bit lanes
// (shuffle_ps), then the 128-bit lanes themselves (shuffle_f32x4, twice).
SLLM_AVX512 inline void transpose16(__m512 v[16]) {
  __m512 t[16], u[16];
  for (int p = 0; p < 8; ++p) {
    t[2 * p] = _mm512_unpacklo_ps(v[2 * p], v[2 * p + 1]);
    t[2 * p + 1] = _mm512_unpackhi_ps(v[2 * p], v[2 * p + 1]);
  }
  // u[4q + c], 128-bit lane L = column 4L + c of rows 4q..4q+3.
  for (int q = 0; q < 4; ++q) {
    u[4 * q + 0] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0x44);
    u[4 * q + 1] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0xEE);
    u[4 * q + 2] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
    u[4 * q + 3] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xEE);
  }
  // Column 4L + c gathers lane L of u[c], u[4+c], u[8+c], u[12+c].
  for (int c = 0; c < 4; ++c) {
    __m512 v88 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);  // lanes 0,2 of each
    __m512 vdd = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);  // lanes 1,3 of each
    __m512 w88 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    __m512 wdd = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
    v[c] = _mm512_shuffle_f32x4(v88, w88, 0x88);
    v[8 + c] = _mm512_shuffle_f32x4(v88, w88, 0xDD);
    v[4 + c] = _mm512_shuffle_f32x4(vdd, wdd, 0x88);
    v[12 + c] = _mm512_shuffle_f32x4(vdd, wdd, 0xDD);
  }
}

// Packs rows [i0, i0+rows) of op(X) into consecutive micro-panels (gemm_internal.h, PackFn).
SLLM_AVX512 void pack(bool trans, const float* X, int64_t ld, int64_t i0, int64_t rows, int64_t p0, int64_t kc,
                      int width, float* dst) {
  if (trans) {
    // op(X)[i][k] = X[k*ld + i]: row k of X holds all our rows contiguously. Walk k outside
    // and the panels inside, so X is read sequentially; reading one panel at a time would
    // stride through X by ld (often a multiple of 4 KiB, which thrashes one L1 set).
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = X + (p0 + k) * ld + i0;  // (rows)
      for (int64_t r = 0; r < rows; r += width) {
        float* panel_k = dst + r * kc + k * width;  // (width)
        for (int c = 0; c < width; c += 16) {
          const __m512 x = _mm512_maskz_loadu_ps(lanes(rows - r - c), src + r + c);
          _mm512_mask_storeu_ps(panel_k + c, lanes(width - c), x);
        }
      }
    }
    return;
  }
  // op(X)[i][k] = X[i*ld + k]: rows are contiguous along k, so transpose 16x16 blocks.
  for (int64_t r = 0; r < rows; r += width) {
    float* panel = dst + r * kc;  // (kc, width)
    for (int c = 0; c < width; c += 16) {
      const __mmask16 store_mask = lanes(width - c);
      for (int64_t k0 = 0; k0 < kc; k0 += 16) {
        const __mmask16 k_mask = lanes(kc - k0);
        __m512 v[16];
        for (int q = 0; q < 16; ++q) {
          v[q] = r + c + q < rows ? _mm512_maskz_loadu_ps(k_mask, X + (i0 + r + c + q) * ld + p0 + k0)
                                  : _mm512_setzero_ps();
        }
        transpose16(v);
        const int kn = int(kc - k0 < 16 ? kc - k0 : 16);
        for (int k = 0; k < kn; ++k) _mm512_mask_storeu_ps(panel + (k0 + k) * width + c, store_mask, v[k]);
      }
    }
  }
}

// acc(14, 32) = Ap(kc, 14)ᵀ . Bp(kc, 32); C(mr, nr) = alpha * acc + beta * C.
SLLM_AVX512 void kernel_14x32(int64_t kc, const float* __restrict Ap, const float* __restrict Bp, float* C,
                              int64_t ldc, int mr, int nr, float alpha, float beta) {
  // C is only touched at the end: fetch its lines now so the stores do not stall.
  for (int r = 0; r < mr; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc + 16), _MM_HINT_T0);
  }
  __m512 acc[kMR][2];
#pragma GCC unroll 14
  for (int r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(Bp + k * kNR);
    const __m512 b1 = _mm512_load_ps(Bp + k * kNR + 16);
    const float* a = Ap + k * kMR;
#pragma GCC unroll 14
    for (int r = 0; r < kMR; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
    }
  }

  const __mmask16 m0 = lanes(nr), m1 = lanes(nr - 16);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
  for (int r = 0; r < kMR; ++r) {
    if (r >= mr) break;
    float* c = C + r * ldc;
    __m512 x0 = _mm512_mul_ps(va, acc[r][0]);
    __m512 x1 = _mm512_mul_ps(va, acc[r][1]);
    if (beta != 0.0f) {
      x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), x0);
      x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), x1);
    }
    _mm512_mask_storeu_ps(c, m0, x0);
    _mm512_mask_storeu_ps(c + 16, m1, x1);
  }
}

// ---- skinny path (M <= 4): no packing, B read once -------------------------------------

// op(A)[i][k] for the skinny path.
inline float a_at(bool trans_a, const float* A, int64_t lda, int64_t i, int64_t k) {
  return trans_a ? A[k * lda + i] : A[i * lda + k];
}

// B stored (K, N): C[i, j0:j1] = beta * C + sum_k (alpha * a(i, k)) * B[k, j0:j1] (axpy form,
// alpha folded into the a values: one extra rounding per term, inside the tolerance). Walks
// B row by row (sequential, prefetch-friendly) and keeps the partial sums in C itself,
// which stays in L1/L2; each element still adds its k terms in order 0..K-1.
template <int R>
SLLM_AVX512 void skinny_rows_of_b(bool trans_a, int64_t j0, int64_t j1, int64_t K, float alpha, const float* A,
                                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const __m512 vb = _mm512_set1_ps(beta);
  for (int i = 0; i < R; ++i) {
    for (int64_t j = j0; j < j1; j += 16) {
      const __mmask16 m = lanes(j1 - j);
      float* c = C + i * ldc + j;
      _mm512_mask_storeu_ps(c, m, beta == 0.0f ? _mm512_setzero_ps() : _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m, c)));
    }
  }
  constexpr int kStep = 4;  // k rows of B per pass over C
  for (int64_t k0 = 0; k0 < K; k0 += kStep) {
    const int kn = int(K - k0 < kStep ? K - k0 : kStep);
    __m512 a[R][kStep];
    for (int i = 0; i < R; ++i)
      for (int t = 0; t < kStep; ++t)
        a[i][t] = _mm512_set1_ps(t < kn ? alpha * a_at(trans_a, A, lda, i, k0 + t) : 0.0f);
    for (int64_t j = j0; j < j1; j += 16) {
      const __mmask16 m = lanes(j1 - j);
      __m512 c[R];
      for (int i = 0; i < R; ++i) c[i] = _mm512_maskz_loadu_ps(m, C + i * ldc + j);
      for (int t = 0; t < kn; ++t) {
        const __m512 b = _mm512_maskz_loadu_ps(m, B + (k0 + t) * ldb + j);
        for (int i = 0; i < R; ++i) c[i] = _mm512_fmadd_ps(a[i][t], b, c[i]);
      }
      for (int i = 0; i < R; ++i) _mm512_mask_storeu_ps(C + i * ldc + j, m, c[i]);
    }
  }
}

// B stored (N, K): C[i][j] = alpha * dot(op(A) row i, B row j) + beta * C[i][j], four B rows
// at a time, each dot as 16 lane partial sums over k, then a fixed-order lane reduction.
template <int R>
SLLM_AVX512 void skinny_dots(bool trans_a, int64_t j0, int64_t j1, int64_t K, float alpha, const float* A,
                             int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  constexpr int kRowsB = 4;
  for (int64_t j = j0; j < j1; j += kRowsB) {
    const int nb = int(j1 - j < kRowsB ? j1 - j : kRowsB);
    __m512 acc[R][kRowsB];
    for (int i = 0; i < R; ++i)
      for (int q = 0; q < kRowsB; ++q) acc[i][q] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 16) {
      const __mmask16 m = lanes(K - k);
      __m512 b[kRowsB];
      for (int q = 0; q < kRowsB; ++q)
        b[q] = q < nb ? _mm512_maskz_loadu_ps(m, B + (j + q) * ldb + k) : _mm512_setzero_ps();
      for (int i = 0; i < R; ++i) {
        __m512 a;
        if (!trans_a) {
          a = _mm512_maskz_loadu_ps(m, A + i * lda + k);
        } else {
          alignas(64) float col[16] = {};  // op(A)[i][k : k+16], strided in A
          for (int t = 0; t < 16 && k + t < K; ++t) col[t] = A[(k + t) * lda + i];
          a = _mm512_load_ps(col);
        }
        for (int q = 0; q < kRowsB; ++q) acc[i][q] = _mm512_fmadd_ps(a, b[q], acc[i][q]);
      }
    }
    for (int i = 0; i < R; ++i) {
      for (int q = 0; q < nb; ++q) {
        float* c = C + i * ldc + j + q;
        const float dot = _mm512_reduce_add_ps(acc[i][q]);
        *c = beta == 0.0f ? alpha * dot : alpha * dot + beta * *c;
      }
    }
  }
}

template <int R>
SLLM_AVX512 void skinny_rows(bool trans_a, bool trans_b, int64_t j0, int64_t j1, int64_t K, float alpha,
                             const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                             int64_t ldc) {
  if (trans_b) {
    skinny_dots<R>(trans_a, j0, j1, K, alpha, A, lda, B, ldb, beta, C, ldc);
  } else {
    skinny_rows_of_b<R>(trans_a, j0, j1, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}

SLLM_AVX512 void skinny(bool trans_a, bool trans_b, int64_t M, int64_t j0, int64_t j1, int64_t K, float alpha,
                        const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                        int64_t ldc) {
  switch (M) {
    case 1: return skinny_rows<1>(trans_a, trans_b, j0, j1, K, alpha, A, lda, B, ldb, beta, C, ldc);
    case 2: return skinny_rows<2>(trans_a, trans_b, j0, j1, K, alpha, A, lda, B, ldb, beta, C, ldc);
    case 3: return skinny_rows<3>(trans_a, trans_b, j0, j1, K, alpha, A, lda, B, ldb, beta, C, ldc);
    default: return skinny_rows<4>(trans_a, trans_b, j0, j1, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}

}  // namespace

// Cache blocks for a Sapphire Rapids class core (48 KiB L1d, 2 MiB L2): KC = 384 keeps an
// A micro-panel (14 x 384 floats = 21 KiB) in L1 next to the streaming B panel, and
// KC x NC = 384 x 640 floats = 960 KiB of packed B fills about half of L2. Measured with
// `sllm bench gemm`: KC 256..1024 with KC x NC fixed are within noise of each other; a
// larger B block (NC = 1280) loses ~15% on the N = 50257 shapes.
const Isa kIsaAvx512 = {"avx512", kMR, kNR, /*KC=*/384, /*MC=*/4096, /*NC=*/640, pack, kernel_14x32,
                        skinny, /*skinny_max_m=*/4, /*skinny_cols=*/64};

}  // namespace sllm::kernels::gemm_detail
