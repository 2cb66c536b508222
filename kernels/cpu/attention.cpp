// Causal self-attention with grouped-query heads: the fused CPU kernel (forward, backward)
// and its naive reference (at the end of the file).
//
// Dimension legend: B batch, T query rows, Tk key rows, NH query heads, NKV key/value heads,
// HD head dim, G = NH / NKV query heads per kv head. A tile is Br query rows x Bc keys.
//
// Algorithm: FlashAttention (Dao et al. 2022, "FlashAttention: Fast and Memory-Efficient
// Exact Attention with IO-Awareness"). Forward (Alg. 1): for a tile of query rows, walk the
// visible keys Bc at a time, keeping the running row max m, row sum l and unnormalized
// output O (the online softmax of Milakov & Gimelshein 2018); only lse = m + log(l) is
// saved. Backward (Alg. 2): recompute P = exp(scale * q kᵀ - lse) tile by tile, with
// D = rowsum(dout ∘ out), dS = P ∘ (dP - D), dP = dout vᵀ.
//
// Every product inside a tile is a small matrix product C (M, N) += A (M, K) · Bm (K, N)
// whose N (Bc, or HD when it is a common head dim) is a compile-time constant: a tile of C
// then lives in registers and the loop over N vectorizes (see small_matmul). For that the
// forward transposes each kv head's keys once per call; with only a few query rows per kv
// head (KV-cache decoding) it takes dot products against the key rows instead.
//
// Parallelism and determinism: forward runs one task per (b, h, tile of query rows); no
// value is shared between tasks, so each output has one writer. Backward runs one task per (b, kv head): a kv head's dk, dv
// rows get contributions from all G query heads of its group and from every query row, and
// dq rows of those G heads only from this kv head, so every gradient element has exactly
// one writer and a fixed summation order, whatever the thread count.
//
// Backward ACCUMULATES (+=) into dq, dk, dv; a nullptr gradient is skipped.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "core/error.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/kernels.h"

// GCC's x86 tuning prefers 256-bit vectors even where AVX-512 exists; the tile loops below
// are long and regular, so full-width registers pay off (no effect on other ISAs).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#pragma GCC target("prefer-vector-width=512")
#endif

namespace sllm::kernels {
namespace {

constexpr int64_t kBr = 32;  // query rows per tile
constexpr int64_t kBc = 64;  // keys per tile

struct Shape {
  int64_t B, T, Tk, NH, NKV, HD, q_offset;
  float scale;
  int64_t ldq() const { return NH * HD; }    // row stride of q, out, dout, dq
  int64_t ldkv() const { return NKV * HD; }  // row stride of k, v, dk, dv
};

// C rows [0, R) (N wide, row stride ldc) = [diag(c_scale) C +] A · Bm with A's element (r, k)
// at A[r * a_rs + k * a_cs] (so A or Aᵀ of a stored matrix) and Bm (K, N) row-major, ldb
// apart. c_scale (R) rescales the old rows (the online softmax's correction) for free while
// they are loaded; nullptr means 1. NC = N when known at compile time (then the R x N
// accumulators stay in registers), else 0.
#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
// rows_times_matrix for R rows x 16 columns with AVX2 intrinsics: the plain loops below keep
// an AVX2-sized tile on the stack (GCC does not promote acc[R][16] to registers), which made
// the attention products 2x slower than the 4 x 64 tile's spills. The arithmetic is the
// loops' own, operation for operation: acc = cs * C (or 0), then acc = fma(a, b, acc) over k
// in order (GCC contracts the loops' acc += a * b the same way), so the bits are the same.
template <int R>
inline void rows_times_16_avx2(float* C, int64_t ldc, const float* A, int64_t a_rs, int64_t a_cs, const float* Bm,
                               int64_t ldb, int64_t K, bool accumulate, const float* c_scale) {
  __m256 acc[R][2];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if (accumulate) {
      const __m256 cs = _mm256_set1_ps(c_scale ? c_scale[r] : 1.0f);
      acc[r][0] = _mm256_mul_ps(cs, _mm256_loadu_ps(C + r * ldc));
      acc[r][1] = _mm256_mul_ps(cs, _mm256_loadu_ps(C + r * ldc + 8));
    } else {
      acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    }
  }
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_loadu_ps(Bm + k * ldb), b1 = _mm256_loadu_ps(Bm + k * ldb + 8);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_set1_ps(A[r * a_rs + k * a_cs]);
      acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(C + r * ldc, acc[r][0]);
    _mm256_storeu_ps(C + r * ldc + 8, acc[r][1]);
  }
}
#define SLLM_ATTENTION_AVX2_TILE 1
#endif

template <int R, int64_t NC>
inline void rows_times_matrix(float* C, int64_t ldc, const float* A, int64_t a_rs, int64_t a_cs,
                              const float* Bm, int64_t ldb, int64_t N, int64_t K, bool accumulate,
                              const float* c_scale) {
#if defined(SLLM_ATTENTION_AVX2_TILE)
  if constexpr (NC == 16) {
    rows_times_16_avx2<R>(C, ldc, A, a_rs, a_cs, Bm, ldb, K, accumulate, c_scale);
    return;
  }
#endif
  if constexpr (NC > 0) {
    float acc[R][NC];
    for (int r = 0; r < R; ++r) {
      const float cs = c_scale ? c_scale[r] : 1.0f;
      for (int64_t n = 0; n < NC; ++n) acc[r][n] = accumulate ? cs * C[r * ldc + n] : 0.0f;
    }
    for (int64_t k = 0; k < K; ++k) {
      const float* b = Bm + k * ldb;
      for (int r = 0; r < R; ++r) {
        const float a = A[r * a_rs + k * a_cs];
        for (int64_t n = 0; n < NC; ++n) acc[r][n] += a * b[n];
      }
    }
    for (int r = 0; r < R; ++r)
      for (int64_t n = 0; n < NC; ++n) C[r * ldc + n] = acc[r][n];
  } else {
    for (int r = 0; r < R; ++r) {
      float* c = C + r * ldc;
      const float cs = c_scale ? c_scale[r] : 1.0f;
      for (int64_t n = 0; n < N; ++n) c[n] = accumulate ? cs * c[n] : 0.0f;
      for (int64_t k = 0; k < K; ++k) {
        const float a = A[r * a_rs + k * a_cs];
        const float* b = Bm + k * ldb;
        for (int64_t n = 0; n < N; ++n) c[n] += a * b[n];
      }
    }
  }
}

// The register tile of small_matmul: kTileRows rows of C times kTileCols columns stay in
// registers. AVX-512: 4 x 64 floats = 16 of the 32 zmm registers. AVX2 has 16 ymm registers,
// where 4 x 64 (32 ymm) spilled to the stack on every k: 6 x 16 = 12 ymm accumulators, the
// GEMM kernel's tile (kernels/cpu/gemm_avx2.cpp), ran the attention products ~3x faster on
// Zen 3. Each C element is still summed over k in the same order, so the tile shape does
// not change a bit of the result.
#if defined(__AVX512F__)
constexpr int kTileRows = 4;
constexpr int64_t kTileCols = 64;
#else
constexpr int kTileRows = 6;
constexpr int64_t kTileCols = 16;
#endif

// C (M, N) = [diag(c_scale) C +] A (M, K) · Bm (K, N); as in rows_times_matrix.
template <int64_t NC>
void small_matmul(float* C, int64_t ldc, const float* A, int64_t a_rs, int64_t a_cs, const float* Bm,
                  int64_t ldb, int64_t M, int64_t N, int64_t K, bool accumulate,
                  const float* c_scale = nullptr) {
  if constexpr (NC > kTileCols && NC % kTileCols == 0) {
    // Column blocks of kTileCols, each a small_matmul of its own (A is re-read per block).
    for (int64_t n0 = 0; n0 < NC; n0 += kTileCols)
      small_matmul<kTileCols>(C + n0, ldc, A, a_rs, a_cs, Bm + n0, ldb, M, kTileCols, K, accumulate, c_scale);
  } else {
    int64_t m = 0;
    for (; m + kTileRows <= M; m += kTileRows)
      rows_times_matrix<kTileRows, NC>(C + m * ldc, ldc, A + m * a_rs, a_rs, a_cs, Bm, ldb, N, K, accumulate,
                                       c_scale ? c_scale + m : nullptr);
    if constexpr (kTileRows > 4) {
      for (; m + 4 <= M; m += 4)
        rows_times_matrix<4, NC>(C + m * ldc, ldc, A + m * a_rs, a_rs, a_cs, Bm, ldb, N, K, accumulate,
                                 c_scale ? c_scale + m : nullptr);
    }
    for (; m < M; ++m)
      rows_times_matrix<1, NC>(C + m * ldc, ldc, A + m * a_rs, a_rs, a_cs, Bm, ldb, N, K, accumulate,
                               c_scale ? c_scale + m : nullptr);
  }
}

// dst (HD, width), rows ld_dst apart, = src (n, HD)ᵀ with src rows ld_src apart; columns
// [n, width) are zero, so a partial tile multiplies like a full one (its scores are masked).
void transpose_rows(float* dst, int64_t ld_dst, int64_t width, const float* src, int64_t ld_src, int64_t n,
                    int64_t HD) {
  for (int64_t d = 0; d < HD; ++d) {
    float* row = dst + d * ld_dst;
    for (int64_t c = 0; c < n; ++c) row[c] = src[c * ld_src + d];
    std::fill(row + n, row + width, 0.0f);
  }
}

// Number of keys of the tile starting at key j0 (nc keys) that query row t sees:
// keys j0 + c with j0 + c <= q_offset + t.
inline int64_t visible_keys(const Shape& s, int64_t t, int64_t j0, int64_t nc) {
  return std::clamp<int64_t>(s.q_offset + t - j0 + 1, 0, nc);
}

// ---- forward -----------------------------------------------------------------------------

// Transposing a kv head's keys costs about HD moves per key; it pays off once at least this
// many query rows (G heads x T rows) reuse them. Fewer rows (KV-cache decoding) take dot
// products against the key rows instead.
constexpr int64_t kMinRowsToTranspose = 16;

// S (nr, Bc) = qs (nr, HD) · k_rows (nc, HD)ᵀ as dot products (lane_sum vectorizes over HD);
// columns [nc, Bc) are left as they are (the caller masks them).
void scores_by_dot(float* S, const float* qs, const float* k_rows, int64_t ldkv, int64_t nr, int64_t nc,
                   int64_t HD) {
  for (int64_t r = 0; r < nr; ++r)
    for (int64_t c = 0; c < nc; ++c) {
      const float* qr = qs + r * HD;
      const float* kc = k_rows + c * ldkv;
      S[r * kBc + c] = lane_sum(HD, [&](int64_t d) { return qr[d] * kc[d]; });
    }
}

// Query rows [i0, i0 + nr) of head h in batch b: out rows and lse entries. kt (HD, ldkt):
// the keys of kv head h / G transposed and zero past the last key, or nullptr to use k.
template <int64_t HDC>
void forward_tile(float* out, float* lse, const float* q, const float* k, const float* kt, int64_t ldkt,
                  const float* v, const Shape& s, int64_t b, int64_t h, int64_t i0, int64_t nr) {
  const int64_t HD = HDC > 0 ? HDC : s.HD;
  const int64_t ldkv = s.ldkv();
  const int64_t kvh = h / (s.NH / s.NKV);
  const float* k_rows = k + (b * s.Tk * s.NKV + kvh) * HD;  // (Tk, HD), ldkv apart
  const float* v_rows = v + (b * s.Tk * s.NKV + kvh) * HD;  // (Tk, HD), ldkv apart

  std::vector<float> qs(kBr * HD);     // (Br, HD) scale * q rows, contiguous
  std::vector<float> o(kBr * HD, 0.f);  // (Br, HD) unnormalized output
  std::vector<float> p(kBr * kBc);      // (Br, Bc) scores, then probabilities
  float m[kBr], l[kBr], alpha[kBr];     // running row max and row sum; rescale of O
  for (int64_t r = 0; r < nr; ++r) {
    const float* q_row = q + ((b * s.T + i0 + r) * s.NH + h) * HD;
    for (int64_t d = 0; d < HD; ++d) qs[r * HD + d] = s.scale * q_row[d];
    m[r] = -std::numeric_limits<float>::infinity();
    l[r] = 0.0f;
  }

  const int64_t n_keys = s.q_offset + i0 + nr;  // the last row sees keys [0, n_keys)
  for (int64_t j0 = 0; j0 < n_keys; j0 += kBc) {
    const int64_t nc = std::min(kBc, n_keys - j0);
    if (kt)
      small_matmul<kBc>(p.data(), kBc, qs.data(), HD, 1, kt + j0, ldkt, nr, kBc, HD, false);
    else
      scores_by_dot(p.data(), qs.data(), k_rows + j0 * ldkv, ldkv, nr, nc, HD);
    for (int64_t r = 0; r < nr; ++r) {
      float* pr = p.data() + r * kBc;
      const int64_t nv = visible_keys(s, i0 + r, j0, nc);
      // Every row sees key 0, so after the first tile m is finite and a tile with no
      // visible key leaves m, l and O unchanged.
      if (nv == 0) {
        std::fill(pr, pr + kBc, 0.0f);
        alpha[r] = 1.0f;
        continue;
      }
      const float mx = std::max(m[r], lane_max(pr, nv));
      alpha[r] = exp_approx(m[r] - mx);  // rescales the old sum and O; 0 on tile 0
      for (int64_t c = 0; c < nv; ++c) pr[c] = exp_approx(pr[c] - mx);
      std::fill(pr + nv, pr + kBc, 0.0f);
      l[r] = l[r] * alpha[r] + lane_sum(nv, [&](int64_t c) { return pr[c]; });
      m[r] = mx;
    }
    // O = diag(alpha) O + P v
    small_matmul<HDC>(o.data(), HD, p.data(), kBc, 1, v_rows + j0 * ldkv, ldkv, nr, HD, nc, true, alpha);
  }

  for (int64_t r = 0; r < nr; ++r) {
    float* out_row = out + ((b * s.T + i0 + r) * s.NH + h) * HD;
    const float inv_l = 1.0f / l[r];
    for (int64_t d = 0; d < HD; ++d) out_row[d] = o[r * HD + d] * inv_l;
    lse[(b * s.NH + h) * s.T + i0 + r] = m[r] + std::log(l[r]);
  }
}

template <int64_t HDC>
void forward_all(float* out, float* lse, const float* q, const float* k, const float* v, const Shape& s) {
  // kt (B, NKV, HD, ldkt): every kv head's keys transposed once, so that scores vectorize
  // over keys; shared by the G query heads and all query tiles that read them.
  const bool transpose = s.T * (s.NH / s.NKV) >= kMinRowsToTranspose;
  const int64_t n_keys = s.q_offset + s.T, ldkt = (n_keys + kBc - 1) / kBc * kBc;
  std::vector<float> kt(transpose ? s.B * s.NKV * s.HD * ldkt : 0);
#pragma omp parallel for schedule(static)
  for (int64_t bg = 0; bg < (transpose ? s.B * s.NKV : 0); ++bg) {
    const int64_t b = bg / s.NKV, g = bg % s.NKV;
    transpose_rows(kt.data() + bg * s.HD * ldkt, ldkt, ldkt, k + (b * s.Tk * s.NKV + g) * s.HD, s.ldkv(),
                   n_keys, s.HD);
  }

  const int64_t n_tiles = (s.T + kBr - 1) / kBr;
  const int64_t n_tasks = s.B * s.NH * n_tiles;
  // Tasks share nothing, so dynamic scheduling (which balances the causal triangle: late
  // tiles see more keys) cannot change any result.
#pragma omp parallel for schedule(dynamic)
  for (int64_t task = 0; task < n_tasks; ++task) {
    const int64_t b = task / (s.NH * n_tiles), h = task / n_tiles % s.NH, i0 = task % n_tiles * kBr;
    const float* kt_bh = transpose ? kt.data() + (b * s.NKV + h / (s.NH / s.NKV)) * s.HD * ldkt : nullptr;
    forward_tile<HDC>(out, lse, q, k, kt_bh, ldkt, v, s, b, h, i0, std::min(kBr, s.T - i0));
  }
}

// ---- backward ----------------------------------------------------------------------------

// All gradients flowing through kv head g of batch b: dk, dv rows of (b, g) and dq rows of
// the G query heads that read it.
template <int64_t HDC>
void backward_group(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                    const float* v, const float* out, const float* lse, const Shape& s, int64_t b, int64_t g) {
  const int64_t HD = HDC > 0 ? HDC : s.HD;
  const int64_t ldq = s.ldq(), ldkv = s.ldkv();
  const int64_t G = s.NH / s.NKV;
  const int64_t kv0 = (b * s.Tk * s.NKV + g) * HD;  // offset of row 0 of this kv head

  // D (G, T) = rowsum(dout ∘ out): equals rowsum(P ∘ dP), the softmax-backward term.
  std::vector<float> D(G * s.T);
  for (int64_t hg = 0; hg < G; ++hg)
    for (int64_t t = 0; t < s.T; ++t) {
      const int64_t row = ((b * s.T + t) * s.NH + g * G + hg) * HD;
      D[hg * s.T + t] = lane_sum(HD, [&](int64_t d) { return dout[row + d] * out[row + d]; });
    }

  std::vector<float> kt(HD * kBc), vt(HD * kBc);  // (HD, Bc) key / value tile, transposed
  std::vector<float> dk_tile(kBc * HD), dv_tile(kBc * HD);  // (Bc, HD)
  std::vector<float> p(kBr * kBc), dp(kBr * kBc);            // (Br, Bc)
  const bool need_dp = dq != nullptr || dk != nullptr;

  const int64_t n_keys = s.q_offset + s.T;  // keys no query row sees get no gradient
  for (int64_t j0 = 0; j0 < n_keys; j0 += kBc) {
    const int64_t nc = std::min(kBc, n_keys - j0);
    const float* k_tile = k + kv0 + j0 * ldkv;  // (nc, HD), ldkv apart
    transpose_rows(kt.data(), kBc, kBc, k_tile, ldkv, nc, HD);
    if (need_dp) transpose_rows(vt.data(), kBc, kBc, v + kv0 + j0 * ldkv, ldkv, nc, HD);
    std::fill(dk_tile.begin(), dk_tile.end(), 0.0f);
    std::fill(dv_tile.begin(), dv_tile.end(), 0.0f);
    const int64_t t_first = std::max<int64_t>(0, j0 - s.q_offset);  // first row seeing key j0

    for (int64_t hg = 0; hg < G; ++hg) {
      const int64_t h = g * G + hg;
      for (int64_t i0 = t_first; i0 < s.T; i0 += kBr) {
        const int64_t nr = std::min(kBr, s.T - i0);
        const int64_t row0 = ((b * s.T + i0) * s.NH + h) * HD;  // offset of query row i0
        const float* lse_rows = lse + (b * s.NH + h) * s.T + i0;
        // P (nr, Bc) = exp(scale * q kᵀ - lse), 0 where masked.
        small_matmul<kBc>(p.data(), kBc, q + row0, ldq, 1, kt.data(), kBc, nr, kBc, HD, false);
        for (int64_t r = 0; r < nr; ++r) {
          float* pr = p.data() + r * kBc;
          const int64_t nv = visible_keys(s, i0 + r, j0, nc);
          for (int64_t c = 0; c < nv; ++c) pr[c] = exp_approx(s.scale * pr[c] - lse_rows[r]);
          std::fill(pr + nv, pr + kBc, 0.0f);
        }
        // dv (nc, HD) += Pᵀ dout
        if (dv)
          small_matmul<HDC>(dv_tile.data(), HD, p.data(), 1, kBc, dout + row0, ldq, nc, HD, nr, true);
        if (!need_dp) continue;
        // dP (nr, Bc) = dout vᵀ, then dS = scale * P ∘ (dP - D) in place (scale from d(scale q kᵀ)).
        small_matmul<kBc>(dp.data(), kBc, dout + row0, ldq, 1, vt.data(), kBc, nr, kBc, HD, false);
        for (int64_t r = 0; r < nr; ++r) {
          const float Dr = D[hg * s.T + i0 + r];
          for (int64_t c = 0; c < kBc; ++c)
            dp[r * kBc + c] = s.scale * p[r * kBc + c] * (dp[r * kBc + c] - Dr);
        }
        // dq (nr, HD) += dS k;  dk (nc, HD) += dSᵀ q
        if (dq) small_matmul<HDC>(dq + row0, ldq, dp.data(), kBc, 1, k_tile, ldkv, nr, HD, nc, true);
        if (dk) small_matmul<HDC>(dk_tile.data(), HD, dp.data(), 1, kBc, q + row0, ldq, nc, HD, nr, true);
      }
    }

    for (int64_t c = 0; c < nc; ++c)
      for (int64_t d = 0; d < HD; ++d) {
        const int64_t at = kv0 + (j0 + c) * ldkv + d;
        if (dk) dk[at] += dk_tile[c * HD + d];
        if (dv) dv[at] += dv_tile[c * HD + d];
      }
  }
}

template <int64_t HDC>
void backward_all(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                  const float* v, const float* out, const float* lse, const Shape& s) {
  const int64_t n_tasks = s.B * s.NKV;
  // Each task owns its gradient rows (see the top of the file), so handing tasks out
  // dynamically changes no result; it lets the other threads take a slowed thread's share
  // (another process on its core) instead of waiting for it.
#pragma omp parallel for schedule(dynamic)
  for (int64_t task = 0; task < n_tasks; ++task)
    backward_group<HDC>(dq, dk, dv, dout, q, k, v, out, lse, s, task / s.NKV, task % s.NKV);
}

void check_attention_shape(int64_t B, int64_t T, int64_t Tk, int64_t NH, int64_t NKV, int64_t HD,
                           int64_t q_offset) {
  SLLM_CHECK(B >= 0 && T >= 0 && NH > 0 && NKV > 0 && HD > 0,
             str("attention: bad sizes B=", B, " T=", T, " NH=", NH, " NKV=", NKV, " HD=", HD),
             "batch and time must be >= 0, heads and head dim > 0");
  SLLM_CHECK(NH % NKV == 0, str("attention: NH=", NH, " is not a multiple of NKV=", NKV),
             "grouped-query attention needs num_attention_heads % num_key_value_heads == 0");
  SLLM_CHECK(q_offset >= 0 && q_offset + T <= Tk,
             str("attention: queries at positions [", q_offset, ", ", q_offset + T, ") but only Tk=", Tk,
                 " keys"),
             "the KV cache must hold every position up to the last query (q_offset + T <= Tk)");
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, int64_t B,
                       int64_t T, int64_t Tk, int64_t NH, int64_t NKV, int64_t HD, int64_t q_offset,
                       float scale) {
  check_attention_shape(B, T, Tk, NH, NKV, HD, q_offset);
  const Shape s{B, T, Tk, NH, NKV, HD, q_offset, scale};
  switch (HD) {
    case 16: forward_all<16>(out, lse, q, k, v, s); break;
    case 32: forward_all<32>(out, lse, q, k, v, s); break;
    case 64: forward_all<64>(out, lse, q, k, v, s); break;
    case 128: forward_all<128>(out, lse, q, k, v, s); break;
    default: forward_all<0>(out, lse, q, k, v, s); break;
  }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, int64_t B, int64_t T, int64_t Tk,
                        int64_t NH, int64_t NKV, int64_t HD, int64_t q_offset, float scale) {
  check_attention_shape(B, T, Tk, NH, NKV, HD, q_offset);
  if (!dq && !dk && !dv) return;
  const Shape s{B, T, Tk, NH, NKV, HD, q_offset, scale};
  switch (HD) {
    case 16: backward_all<16>(dq, dk, dv, dout, q, k, v, out, lse, s); break;
    case 32: backward_all<32>(dq, dk, dv, dout, q, k, v, out, lse, s); break;
    case 64: backward_all<64>(dq, dk, dv, dout, q, k, v, out, lse, s); break;
    case 128: backward_all<128>(dq, dk, dv, dout, q, k, v, out, lse, s); break;
    default: backward_all<0>(dq, dk, dv, dout, q, k, v, out, lse, s); break;
  }
}

// ---- naive references ------------------------------------------------------------------
// Straight from the definition, in double, one (b, h) at a time with its whole (T, Tk)
// probability matrix. They recompute everything from q, k, v (out and lse are not read by
// the backward reference), so a test comparing against them checks the fused kernel's
// bookkeeping (online softmax, lse, D) independently.

namespace {

// P (T, Tk) for query head h of batch b, 0 where masked; lse (T) its row log-sum-exp.
void reference_probs(std::vector<double>& P, std::vector<double>& lse_row, const float* q, const float* k,
                     const Shape& s, int64_t b, int64_t h) {
  const int64_t HD = s.HD, kvh = h / (s.NH / s.NKV);
  P.assign(s.T * s.Tk, 0.0);
  lse_row.assign(s.T, 0.0);
  for (int64_t t = 0; t < s.T; ++t) {
    const float* q_row = q + ((b * s.T + t) * s.NH + h) * HD;
    double* logits = P.data() + t * s.Tk;
    const int64_t n_vis = s.q_offset + t + 1;  // keys [0, q_offset + t]
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < n_vis; ++j) {
      const float* k_row = k + ((b * s.Tk + j) * s.NKV + kvh) * HD;
      double dot = 0.0;
      for (int64_t d = 0; d < HD; ++d) dot += double(q_row[d]) * double(k_row[d]);
      logits[j] = double(s.scale) * dot;
      mx = std::max(mx, logits[j]);
    }
    double sum = 0.0;
    for (int64_t j = 0; j < n_vis; ++j) sum += std::exp(logits[j] - mx);
    for (int64_t j = 0; j < n_vis; ++j) logits[j] = std::exp(logits[j] - mx) / sum;
    lse_row[t] = mx + std::log(sum);
  }
}

}  // namespace

void attention_forward_ref(float* out, float* lse, const float* q, const float* k, const float* v, int64_t B,
                           int64_t T, int64_t Tk, int64_t NH, int64_t NKV, int64_t HD, int64_t q_offset,
                           float scale) {
  check_attention_shape(B, T, Tk, NH, NKV, HD, q_offset);
  const Shape s{B, T, Tk, NH, NKV, HD, q_offset, scale};
  std::vector<double> P, lse_row;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < NH; ++h) {
      reference_probs(P, lse_row, q, k, s, b, h);
      const int64_t kvh = h / (NH / NKV);
      for (int64_t t = 0; t < T; ++t) {
        float* out_row = out + ((b * T + t) * NH + h) * HD;
        for (int64_t d = 0; d < HD; ++d) {
          double acc = 0.0;
          for (int64_t j = 0; j < Tk; ++j) acc += P[t * Tk + j] * double(v[((b * Tk + j) * NKV + kvh) * HD + d]);
          out_row[d] = float(acc);
        }
        lse[(b * NH + h) * T + t] = float(lse_row[t]);
      }
    }
}

void attention_backward_ref(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                            const float* v, const float* out, const float* lse, int64_t B, int64_t T,
                            int64_t Tk, int64_t NH, int64_t NKV, int64_t HD, int64_t q_offset, float scale) {
  check_attention_shape(B, T, Tk, NH, NKV, HD, q_offset);
  const Shape s{B, T, Tk, NH, NKV, HD, q_offset, scale};
  // Gradients in double, added to the float buffers once at the end.
  std::vector<double> dq_acc(B * T * NH * HD, 0.0), dk_acc(B * Tk * NKV * HD, 0.0),
      dv_acc(B * Tk * NKV * HD, 0.0);
  std::vector<double> P, lse_row, dP(Tk);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < NH; ++h) {
      reference_probs(P, lse_row, q, k, s, b, h);
      const int64_t kvh = h / (NH / NKV);
      for (int64_t t = 0; t < T; ++t) {
        const int64_t qrow = ((b * T + t) * NH + h) * HD;
        // dP[j] = dout_t · v_j;  softmax backward: dS[j] = P[j] (dP[j] - Σ_i P[i] dP[i]).
        double pdp = 0.0;
        for (int64_t j = 0; j < Tk; ++j) {
          const int64_t kvrow = ((b * Tk + j) * NKV + kvh) * HD;
          double dot = 0.0;
          for (int64_t d = 0; d < HD; ++d) dot += double(dout[qrow + d]) * double(v[kvrow + d]);
          dP[j] = dot;
          pdp += P[t * Tk + j] * dot;
        }
        for (int64_t j = 0; j < Tk; ++j) {
          const double p = P[t * Tk + j];
          if (p == 0.0) continue;  // masked key (or an underflowed probability: no gradient)
          const double dS = p * (dP[j] - pdp) * double(scale);  // d(logit)/d(q·k) = scale
          const int64_t kvrow = ((b * Tk + j) * NKV + kvh) * HD;
          for (int64_t d = 0; d < HD; ++d) {
            dv_acc[kvrow + d] += p * double(dout[qrow + d]);
            dq_acc[qrow + d] += dS * double(k[kvrow + d]);
            dk_acc[kvrow + d] += dS * double(q[qrow + d]);
          }
        }
      }
    }
  for (size_t i = 0; i < dq_acc.size(); ++i)
    if (dq) dq[i] += float(dq_acc[i]);
  for (size_t i = 0; i < dk_acc.size(); ++i) {
    if (dk) dk[i] += float(dk_acc[i]);
    if (dv) dv[i] += float(dv_acc[i]);
  }
}

}  // namespace sllm::kernels
