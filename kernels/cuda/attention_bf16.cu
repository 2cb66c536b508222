// Causal self-attention with grouped-query heads in bf16 on tensor cores: forward and
// backward for mixed-precision training. FlashAttention-2 (Dao 2023, "FlashAttention-2:
// Faster Attention with Better Parallelism and Work Partitioning", Alg. 1-2) with the
// matrix products on nvcuda::wmma 16x16x16 bf16 fragments (fp32 accumulate). Same layouts,
// q_offset and lse as kernels/cuda/attention.cu (fp32) and kernels/cpu/attention.cpp.
//
// Dimension legend: B batch, T query rows, Tk key rows, NH query heads, NKV key/value heads,
// HD head dim (a multiple of 16, <= 128), G = NH / NKV query heads per kv head.
// q, out, dout, dq (B, T, NH, HD) bf16; k, v, dk, dv (B, Tk, NKV, HD) bf16; lse (B, NH, T) fp32.
// Query t sees keys [0, q_offset + t].
//
// Precision: q, k, v, dout are bf16; their products are exact in fp32 and every sum is an
// fp32 accumulation. Scores, softmax statistics (row max m, row sum l, lse, D) and the
// elementwise softmax backward stay fp32. Like FlashAttention, P (forward, dV) and dS (dQ,
// dK) are rounded to bf16 once before they enter the second product, and results are
// rounded once on store.
//
// Forward: a block owns kFwdRows = 64 query rows of one (b, h), 4 warps of 16 rows. It walks
// the key tiles up to the causal limit of its last row (fully masked tiles are never
// loaded). Per tile: S = Q Kᵀ (Q held in registers as fragments) is stored to shared
// memory; the online softmax (Milakov & Gimelshein 2018) runs in fp32 on those shared rows,
// two lanes per row; P is written in bf16 over S; O = diag(alpha) O + P V with O in
// accumulator fragments. The per-row rescale never touches a fragment element by position:
// alpha is written as a 16x16 shared tile whose row r holds alpha_r, loaded as an
// accumulator fragment, and O is multiplied element by element by it (two fragments of the
// same type map their elements to the same (row, col), whatever that mapping is).
//
// Backward (deterministic, no atomics; every gradient element has one writer and a fixed
// summation order): D = rowsum(dout ∘ out) in a first pass, then two kernels with the same
// tile shape, each owning Own rows (64 up to HD 64, else 32) and walking 32 of the other:
//   dq:     owns query rows of (b, h), walks the key tiles; S = Q Kᵀ, dP = dO Vᵀ,
//           dS = scale * P ∘ (dP - D), dQ += dS K.
//   dk, dv: owns key rows of (b, g), walks the query tiles of all G heads of the group;
//           Sᵀ = K Qᵀ, dPᵀ = V dOᵀ, dV += Pᵀ dO, dK += dSᵀ Q.
// P = exp(scale * S - lse) is recomputed from the forward's lse.
//
// Shared memory stays within the 48 KB every launch gets without opting in: per block at
// most 39936 B (forward, HD 64: 64-key tiles; HD 128 takes 32-key tiles, 30720 B) and
// 46592 B (backward, HD 64; 44288 B at HD 128).
//
// Backward ACCUMULATES (+=) into dq, dk, dv (read, add in fp32, round once, store); a
// nullptr gradient is skipped.
#include <cuda_bf16.h>
#include <mma.h>

#include <cstdint>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/scratch.h"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

using nvcuda::wmma::accumulator;
using nvcuda::wmma::col_major;
using nvcuda::wmma::fill_fragment;
using nvcuda::wmma::load_matrix_sync;
using nvcuda::wmma::matrix_a;
using nvcuda::wmma::matrix_b;
using nvcuda::wmma::mem_row_major;
using nvcuda::wmma::mma_sync;
using nvcuda::wmma::row_major;
using nvcuda::wmma::store_matrix_sync;
using bf = __nv_bfloat16;

// A 16x16 tile of A (row-major), of B (row-major, or col-major = the transpose of a
// row-major matrix), and of the fp32 accumulator.
using FragA = nvcuda::wmma::fragment<matrix_a, 16, 16, 16, bf, row_major>;
using FragB = nvcuda::wmma::fragment<matrix_b, 16, 16, 16, bf, row_major>;
using FragBt = nvcuda::wmma::fragment<matrix_b, 16, 16, 16, bf, col_major>;
using FragC = nvcuda::wmma::fragment<accumulator, 16, 16, 16, float>;

constexpr int kWarps = 4;  // per block, forward and backward
constexpr int kBlock = 32 * kWarps;
constexpr int kMaxHD = 128;
// Row paddings of shared tiles (16 bytes): consecutive rows start 4 banks apart, so the 16
// row reads of a fragment load or store do not all hit one bank. Strides stay multiples of
// 8 (bf16) or 4 (fp32) elements and tiles 32-byte aligned, as wmma requires.
constexpr int kPadH = 8;  // bf16
constexpr int kPadF = 4;  // fp32

struct Shape {
  int64_t B, T, Tk, NH, NKV, q_offset;
  float scale;
};

// 16 bytes: one vector load or store of 8 bf16.
struct alignas(16) Chunk {
  uint32_t w[4];
};

// dst (rows, HD) shared tile, row stride ldd = rows [r0, r0 + rows) of a head-strided matrix
// (row r at src + r * lds), zero past row `valid`: a partial tile multiplies like a full one.
template <int HD>
__device__ inline void stage_rows(bf* dst, int ldd, const bf* src, int64_t lds, int64_t r0, int rows, int64_t valid) {
  constexpr int kChunks = HD / 8;
  for (int idx = threadIdx.x; idx < rows * kChunks; idx += blockDim.x) {
    const int r = idx / kChunks, c = idx % kChunks;
    Chunk val{};
    if (r0 + r < valid) val = *reinterpret_cast<const Chunk*>(src + (r0 + r) * lds + c * 8);
    *reinterpret_cast<Chunk*>(dst + r * ldd + c * 8) = val;
  }
}

// acc = A Bᵀ for one 16x16 tile: A rows at a (lda), B rows at b (ldb), both (16, 16 * KT)
// row-major in shared memory (so Bᵀ loads as a col-major matrix_b).
template <int KT>
__device__ inline void mma_abt(FragC& acc, const bf* a, int lda, const bf* b, int ldb) {
  fill_fragment(acc, 0.0f);
#pragma unroll
  for (int kk = 0; kk < KT; ++kk) {
    FragA af;
    FragBt bt;
    load_matrix_sync(af, a + kk * 16, lda);
    load_matrix_sync(bt, b + kk * 16, ldb);
    mma_sync(acc, af, bt, acc);
  }
}

// acc[i] += A B[:, tile n0 + i * nstep] for the tiles below NT: A (16, 16 * KT) row-major at
// a (lda), B (16 * KT, 16 * NT) row-major at b (ldb). Each A fragment is loaded once and
// used for all of this warp's output tiles.
template <int KT, int NT, int NACC>
__device__ inline void mma_ab_rows(FragC (&acc)[NACC], const bf* a, int lda, const bf* b, int ldb, int n0,
                                   int nstep) {
#pragma unroll
  for (int kk = 0; kk < KT; ++kk) {
    FragA af;
    load_matrix_sync(af, a + kk * 16, lda);
#pragma unroll
    for (int i = 0; i < NACC; ++i) {
      const int n = n0 + i * nstep;
      if (n >= NT) continue;
      FragB bm;
      load_matrix_sync(bm, b + kk * 16 * ldb + n * 16, ldb);
      mma_sync(acc[i], af, bm, acc[i]);
    }
  }
}

// ---- forward -----------------------------------------------------------------------------

constexpr int kFwdRows = 16 * kWarps;  // query rows per block, 16 per warp

constexpr int cmax(int a, int b) { return a > b ? a : b; }

template <int HD>
struct FwdTiles {
  static constexpr int Bc = HD <= 64 ? 64 : 32;  // keys per tile (K, V and S must fit 48 KB)
  static constexpr int ldh = HD + kPadH;         // stride of Q, K, V tiles (bf16)
  static constexpr int lds = Bc + kPadF;         // stride of S (fp32); P (bf16) reuses it at 2 * lds
  // K then V (Bc, ldh) each; before the key loop the same space holds the Q tile (Br, ldh).
  static constexpr int kv_bytes = 2 * cmax(2 * Bc * ldh, kFwdRows * ldh);
  static constexpr int s_bytes = 4 * kFwdRows * lds;
  static constexpr int row_tile_bytes = 4 * kWarps * 256;  // a 16x16 fp32 tile per warp
  static constexpr int bytes = kv_bytes + s_bytes + row_tile_bytes;
  static_assert(bytes <= 48 * 1024, "forward tiles must fit the default 48 KB of shared memory");
};

// Grid (ceil(T / kFwdRows), NH, B), kBlock threads. After a key tile is staged (block
// barriers), everything a warp does touches only its own 16 rows of S, P and its row tile,
// so those steps are ordered with warp barriers.
template <int HD>
__global__ void attention_forward_bf16_kernel(bf* out, float* lse, const bf* q, const bf* k, const bf* v, Shape s) {
  using Tl = FwdTiles<HD>;
  constexpr int Bc = Tl::Bc, ldh = Tl::ldh, lds = Tl::lds, ldp = 2 * lds, KT = HD / 16, NT = HD / 16;
  alignas(128) __shared__ unsigned char smem[Tl::bytes];
  bf* ks = reinterpret_cast<bf*>(smem);                       // (Bc, ldh) keys
  bf* vs = ks + Bc * ldh;                                     // (Bc, ldh) values
  float* ss = reinterpret_cast<float*>(smem + Tl::kv_bytes);  // (Br, lds) scores
  bf* ps = reinterpret_cast<bf*>(ss);                         // (Br, ldp) probabilities over S
  float* row_tile = ss + kFwdRows * lds;                      // (kWarps, 16, 16) per-row factors

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  // Last query tiles first: they see the most keys, so the causal triangle's long blocks
  // start early and the short ones fill the tail of the grid.
  const int64_t b = blockIdx.z, h = blockIdx.y, i0 = int64_t(gridDim.x - 1 - blockIdx.x) * kFwdRows;
  const int64_t g = h / (s.NH / s.NKV), ldq = s.NH * HD, ldkv = s.NKV * HD;
  const bf* k_rows = k + (b * s.Tk * s.NKV + g) * HD;  // key j at k_rows + j * ldkv
  const bf* v_rows = v + (b * s.Tk * s.NKV + g) * HD;

  // This warp's 16 query rows as A fragments, kept in registers for the whole key loop.
  stage_rows<HD>(ks, ldh, q + (b * s.T * s.NH + h) * HD, ldq, i0, kFwdRows, s.T);
  __syncthreads();
  FragA qf[KT];
#pragma unroll
  for (int kk = 0; kk < KT; ++kk) load_matrix_sync(qf[kk], ks + warp * 16 * ldh + kk * 16, ldh);
  FragC o[NT];  // unnormalized output rows of this warp
#pragma unroll
  for (int n = 0; n < NT; ++n) fill_fragment(o[n], 0.0f);

  // Lanes 2r and 2r+1 own row r of the warp's 16 (columns split in halves): both keep the
  // same running max m and sum l (they combine their halves with one shuffle).
  const int r = lane / 2, half = lane % 2;
  const int64_t t = i0 + warp * 16 + r;
  float m = -INFINITY, l = 0.0f;
  float* my_row_tile = row_tile + warp * 256;

  const int64_t n_keys = s.q_offset + min(s.T, i0 + kFwdRows);  // the last row sees [0, n_keys)
  for (int64_t j0 = 0; j0 < n_keys; j0 += Bc) {
    __syncthreads();  // every warp is done with the previous K and V (and Q, on the first pass)
    stage_rows<HD>(ks, ldh, k_rows, ldkv, j0, Bc, n_keys);
    stage_rows<HD>(vs, ldh, v_rows, ldkv, j0, Bc, n_keys);
    __syncthreads();

    // S (16, Bc) = Q Kᵀ for this warp's rows.
    {
      FragC acc[Bc / 16];
#pragma unroll
      for (int n = 0; n < Bc / 16; ++n) fill_fragment(acc[n], 0.0f);
#pragma unroll
      for (int kk = 0; kk < KT; ++kk)
#pragma unroll
        for (int n = 0; n < Bc / 16; ++n) {
          FragBt kt;
          load_matrix_sync(kt, ks + n * 16 * ldh + kk * 16, ldh);
          mma_sync(acc[n], qf[kk], kt, acc[n]);
        }
#pragma unroll
      for (int n = 0; n < Bc / 16; ++n)
        store_matrix_sync(ss + warp * 16 * lds + n * 16, acc[n], lds, mem_row_major);
    }
    __syncwarp();

    // Online softmax of row t over this tile's visible keys, in fp32. P is written in bf16
    // over the row's own S bytes: both lanes of the row read all their scores first.
    {
      constexpr int kHalf = Bc / 2;
      const int64_t first = j0 + half * kHalf;  // key of this lane's first column
      const int nv = t < s.T ? int(max(int64_t(0), min(int64_t(kHalf), s.q_offset + t + 1 - first))) : 0;
      const float* s_row = ss + (warp * 16 + r) * lds + half * kHalf;
      float x[kHalf];
      float mx = -INFINITY;
#pragma unroll
      for (int c = 0; c < kHalf; ++c) {
        x[c] = c < nv ? s.scale * s_row[c] : -INFINITY;
        mx = fmaxf(mx, x[c]);
      }
      __syncwarp();  // every lane has read its scores before P overwrites them
      mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 1));
      const float m_new = fmaxf(m, mx);
      // Every row sees key 0, so m is finite after tile 0 for rows t < T; padding rows
      // (t >= T) never see a key and keep p = 0, alpha = 1. alpha = 0 on a row's first tile.
      const bool empty = m_new == -INFINITY;
      const float alpha = empty ? 1.0f : expf(m - m_new);
      bf* p_row = ps + (warp * 16 + r) * ldp + half * kHalf;
      float sum = 0.0f;
#pragma unroll
      for (int c = 0; c < kHalf; ++c) {
        const float p = c < nv ? expf(x[c] - m_new) : 0.0f;
        p_row[c] = __float2bfloat16(p);
        sum += p;
      }
      sum += __shfl_xor_sync(kFullMask, sum, 1);
      l = l * alpha + sum;
      m = m_new;
#pragma unroll
      for (int c = 0; c < 8; ++c) my_row_tile[r * 16 + half * 8 + c] = alpha;
    }
    __syncwarp();

    // O = diag(alpha) O + P V
    {
      FragC alpha_f;
      load_matrix_sync(alpha_f, my_row_tile, 16, mem_row_major);
#pragma unroll
      for (int n = 0; n < NT; ++n)
#pragma unroll
        for (int i = 0; i < alpha_f.num_elements; ++i) o[n].x[i] *= alpha_f.x[i];
      mma_ab_rows<Bc / 16, NT>(o, ps + warp * 16 * ldp, ldp, vs, ldh, 0, 1);
    }
  }

  // out = O / l, through the warp's 16x16 tile one block of columns at a time.
  __syncwarp();  // the last alpha tile has been loaded
  const float inv_l = t < s.T ? 1.0f / l : 0.0f;
#pragma unroll
  for (int c = 0; c < 8; ++c) my_row_tile[r * 16 + half * 8 + c] = inv_l;
  __syncwarp();
  FragC inv_l_f;
  load_matrix_sync(inv_l_f, my_row_tile, 16, mem_row_major);
#pragma unroll
  for (int n = 0; n < NT; ++n) {
#pragma unroll
    for (int i = 0; i < inv_l_f.num_elements; ++i) o[n].x[i] *= inv_l_f.x[i];
    __syncwarp();  // the previous block's values (or inv_l) have been read
    store_matrix_sync(my_row_tile, o[n], 16, mem_row_major);
    __syncwarp();
    if (t < s.T) {
      bf* out_row = out + ((b * s.T + t) * s.NH + h) * HD + n * 16 + half * 8;
#pragma unroll
      for (int c = 0; c < 8; ++c) out_row[c] = __float2bfloat16(my_row_tile[r * 16 + half * 8 + c]);
    }
  }
  if (t < s.T && half == 0) lse[(b * s.NH + h) * s.T + t] = m + logf(l);
}

// ---- backward ----------------------------------------------------------------------------

// D (B, NH, T) = rowsum(dout ∘ out) in fp32: equals rowsum(P ∘ dP), the softmax-backward
// term. One warp per (b, t, h) row.
__global__ void attention_rowdot_bf16_kernel(float* D, const bf* dout, const bf* out, Shape s, int64_t HD) {
  const int lane = threadIdx.x % 32;
  const int64_t rows = s.B * s.T * s.NH;
  for (int64_t row = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32; row < rows;
       row += int64_t(gridDim.x) * kWarps) {
    float acc = 0.0f;
    for (int64_t d = lane; d < HD; d += 32)
      acc += __bfloat162float(dout[row * HD + d]) * __bfloat162float(out[row * HD + d]);
    acc = warp_sum(acc);
    const int64_t h = row % s.NH, bt = row / s.NH, b = bt / s.T, t = bt % s.T;
    if (lane == 0) D[(b * s.NH + h) * s.T + t] = acc;
  }
}

// Both backward kernels: a block owns Own rows and walks tiles of kWalk rows of the other
// side. Shared: two own tiles and two walked tiles (rows, ldh) bf16, S and dP (Own, lds)
// fp32 (P or dS overwrite them in bf16, stride 2 * lds), lse and D of the walked or own rows.
// Own is 64 up to HD 64 (a warp per 16 own rows: each loaded B fragment serves more products
// per barrier), 32 above (two warps per 16 own rows, splitting the columns), to fit 48 KB.
constexpr int kWalk = 32;

template <int HD>
struct BwdTiles {
  static constexpr int Own = HD <= 64 ? 64 : 32;
  static constexpr int ldh = HD + kPadH;
  static constexpr int lds = kWalk + kPadF;
  static constexpr int own_elems = Own * ldh, walk_elems = kWalk * ldh;
  static constexpr int tiles_bytes = 2 * 2 * (own_elems + walk_elems);
  static constexpr int s_floats = Own * lds;
  static constexpr int stat_floats = cmax(Own, kWalk);
  static constexpr int bytes = tiles_bytes + 4 * (2 * s_floats + 2 * stat_floats);
  // Warp w computes tiles of row w % RT: S and dP tiles c0, c0 + step, ... (ST of them) and
  // gradient tiles c0, c0 + step, ... below HD / 16 (at most NACC), c0 = w / RT.
  static constexpr int RT = Own / 16, step = kWarps / RT;
  static constexpr int ST = kWalk / 16 / step, NACC = (HD / 16 + step - 1) / step;
  static constexpr int per_thread = Own * kWalk / kBlock;  // elements of the dS pass
  // Accumulators (Own, HD + kPadF) fp32, two of them, are staged over all of it at the end.
  static_assert(2 * 4 * Own * (HD + kPadF) <= bytes, "accumulator staging must fit");
  static_assert(bytes <= 48 * 1024, "backward tiles must fit the default 48 KB of shared memory");
};

// dst (rows, HD) bf16 rows at dst + r * ld (r < rows_valid) += acc staged (Own, HD + kPadF)
// fp32 in shared: read, add in fp32, round once, store.
template <int HD>
__device__ inline void accumulate_rows(bf* dst, int64_t ld, const float* acc, int rows_valid) {
  constexpr int ldf = HD + kPadF;
  for (int idx = threadIdx.x; idx < rows_valid * HD; idx += blockDim.x) {
    const int r = idx / HD, d = idx % HD;
    bf* at = dst + r * ld + d;
    *at = __float2bfloat16(__bfloat162float(*at) + acc[r * ldf + d]);
  }
}

// This warp's gradient tiles into dst (Own, HD + kPadF) fp32.
template <int HD>
__device__ inline void stage_acc(float* dst, FragC (&acc)[BwdTiles<HD>::NACC]) {
  using Tl = BwdTiles<HD>;
  constexpr int ldf = HD + kPadF;
  const int warp = threadIdx.x / 32, tr = warp % Tl::RT, c0 = warp / Tl::RT;
#pragma unroll
  for (int i = 0; i < Tl::NACC; ++i) {
    const int n = c0 + i * Tl::step;
    if (n < HD / 16) store_matrix_sync(dst + tr * 16 * ldf + n * 16, acc[i], ldf, mem_row_major);
  }
}

// S (Own, kWalk) = X Yᵀ and dP = X2 Y2ᵀ, this warp's tiles, into ss and dps (stride lds):
// X, X2 the own tiles, Y, Y2 the walked ones, all (rows, ldh).
template <int HD>
__device__ inline void scores_tiles(float* ss, float* dps, const bf* x, const bf* x2, const bf* y, const bf* y2) {
  using Tl = BwdTiles<HD>;
  constexpr int ldh = Tl::ldh, lds = Tl::lds;
  const int warp = threadIdx.x / 32, tr = warp % Tl::RT, c0 = warp / Tl::RT;
#pragma unroll
  for (int i = 0; i < Tl::ST; ++i) {
    const int c = c0 + i * Tl::step;
    FragC sf, dpf;
    mma_abt<HD / 16>(sf, x + tr * 16 * ldh, ldh, y + c * 16 * ldh, ldh);
    mma_abt<HD / 16>(dpf, x2 + tr * 16 * ldh, ldh, y2 + c * 16 * ldh, ldh);
    store_matrix_sync(ss + tr * 16 * lds + c * 16, sf, lds, mem_row_major);
    store_matrix_sync(dps + tr * 16 * lds + c * 16, dpf, lds, mem_row_major);
  }
}

// acc += A (Own, kWalk) bf16 at a (stride lda) · B (kWalk, HD) at b, this warp's tiles.
template <int HD>
__device__ inline void accumulate_tiles(FragC (&acc)[BwdTiles<HD>::NACC], const bf* a, int lda, const bf* b) {
  using Tl = BwdTiles<HD>;
  const int warp = threadIdx.x / 32, tr = warp % Tl::RT, c0 = warp / Tl::RT;
  mma_ab_rows<kWalk / 16, HD / 16>(acc, a + tr * 16 * lda, lda, b, Tl::ldh, c0, Tl::step);
}

// dq: grid (ceil(T / Own), NH, B). Own: Q, dO rows of (b, h); walk: K, V tiles of kv head g.
// dq (t) += sum over visible keys j of dS_tj k_j.
template <int HD>
__global__ void attention_backward_dq_bf16_kernel(bf* dq, const bf* dout, const bf* q, const bf* k, const bf* v,
                                                  const float* lse, const float* D, Shape s) {
  using Tl = BwdTiles<HD>;
  constexpr int Own = Tl::Own, ldh = Tl::ldh, lds = Tl::lds, kPer = Tl::per_thread;
  alignas(128) __shared__ unsigned char smem[Tl::bytes];
  bf* qs = reinterpret_cast<bf*>(smem);  // (Own, ldh)
  bf* dos = qs + Tl::own_elems;          // (Own, ldh)
  bf* kt = dos + Tl::own_elems;          // (kWalk, ldh)
  bf* vt = kt + Tl::walk_elems;          // (kWalk, ldh)
  float* ss = reinterpret_cast<float*>(smem + Tl::tiles_bytes);  // (Own, lds) S, then dS bf16
  float* dps = ss + Tl::s_floats;                                // (Own, lds) dP
  float* lse_s = dps + Tl::s_floats;                             // (Own)
  float* D_s = lse_s + Tl::stat_floats;                          // (Own)
  bf* dss = reinterpret_cast<bf*>(ss);                           // (Own, 2 * lds) dS

  const int64_t b = blockIdx.z, h = blockIdx.y, i0 = int64_t(gridDim.x - 1 - blockIdx.x) * Own;  // longest first
  const int64_t g = h / (s.NH / s.NKV), ldq = s.NH * HD, ldkv = s.NKV * HD;
  const bf* k_rows = k + (b * s.Tk * s.NKV + g) * HD;
  const bf* v_rows = v + (b * s.Tk * s.NKV + g) * HD;
  stage_rows<HD>(qs, ldh, q + (b * s.T * s.NH + h) * HD, ldq, i0, Own, s.T);
  stage_rows<HD>(dos, ldh, dout + (b * s.T * s.NH + h) * HD, ldq, i0, Own, s.T);
  for (int r = threadIdx.x; r < Own; r += blockDim.x) {
    const int64_t t = i0 + r;
    lse_s[r] = t < s.T ? lse[(b * s.NH + h) * s.T + t] : 0.0f;
    D_s[r] = t < s.T ? D[(b * s.NH + h) * s.T + t] : 0.0f;
  }

  FragC acc[Tl::NACC];
#pragma unroll
  for (int i = 0; i < Tl::NACC; ++i) fill_fragment(acc[i], 0.0f);
  const int64_t n_keys = s.q_offset + min(s.T, i0 + Own);
  for (int64_t j0 = 0; j0 < n_keys; j0 += kWalk) {
    __syncthreads();  // the previous tile's dS and K have been used
    stage_rows<HD>(kt, ldh, k_rows, ldkv, j0, kWalk, n_keys);
    stage_rows<HD>(vt, ldh, v_rows, ldkv, j0, kWalk, n_keys);
    __syncthreads();
    scores_tiles<HD>(ss, dps, qs, dos, kt, vt);  // S = Q Kᵀ, dP = dO Vᵀ
    __syncthreads();
    // dS = scale * P ∘ (dP - D), P = exp(scale * S - lse): read all, then overwrite S in bf16.
    // Row i0 + rr sees column j0 + c when i0 + rr < T and j0 + c <= q_offset + i0 + rr.
    const int64_t rows_left = s.T - i0, diag = s.q_offset + i0 - j0;
    float ds[kPer];
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int idx = threadIdx.x + e * kBlock, rr = idx / kWalk, c = idx % kWalk;
      const bool visible = rr < rows_left && c - rr <= diag;
      const float p = visible ? expf(s.scale * ss[rr * lds + c] - lse_s[rr]) : 0.0f;
      ds[e] = s.scale * p * (dps[rr * lds + c] - D_s[rr]);
    }
    __syncthreads();
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
      const int idx = threadIdx.x + e * kBlock, rr = idx / kWalk, c = idx % kWalk;
      dss[rr * 2 * lds + c] = __float2bfloat16(ds[e]);
    }
    __syncthreads();
    accumulate_tiles<HD>(acc, dss, 2 * lds, kt);  // dQ += dS K
  }

  __syncthreads();
  float* dq_acc = reinterpret_cast<float*>(smem);  // (Own, HD + kPadF)
  stage_acc<HD>(dq_acc, acc);
  __syncthreads();
  accumulate_rows<HD>(dq + ((b * s.T + i0) * s.NH + h) * HD, ldq, dq_acc, int(min(int64_t(Own), s.T - i0)));
}

// dk, dv: grid (ceil((q_offset + T) / Own), NKV, B). Own: K, V rows of (b, g); walk: Q, dO
// tiles of the G heads of the group, from the first query row that sees the block's first key.
// dv (j) += sum over t of P_tj dout_t;  dk (j) += sum over t of dS_tj q_t.
template <int HD>
__global__ void attention_backward_dkdv_bf16_kernel(bf* dk, bf* dv, const bf* dout, const bf* q, const bf* k,
                                                    const bf* v, const float* lse, const float* D, Shape s) {
  using Tl = BwdTiles<HD>;
  constexpr int Own = Tl::Own, ldh = Tl::ldh, lds = Tl::lds, kPer = Tl::per_thread;
  alignas(128) __shared__ unsigned char smem[Tl::bytes];
  bf* ks = reinterpret_cast<bf*>(smem);  // (Own, ldh)
  bf* vs = ks + Tl::own_elems;           // (Own, ldh)
  bf* qt = vs + Tl::own_elems;           // (kWalk, ldh)
  bf* dot = qt + Tl::walk_elems;         // (kWalk, ldh)
  float* ss = reinterpret_cast<float*>(smem + Tl::tiles_bytes);  // (Own, lds) Sᵀ, then Pᵀ bf16
  float* dps = ss + Tl::s_floats;                                // (Own, lds) dPᵀ, then dSᵀ bf16
  float* lse_s = dps + Tl::s_floats;                             // (kWalk)
  float* D_s = lse_s + Tl::stat_floats;                          // (kWalk)
  bf* pts = reinterpret_cast<bf*>(ss);                           // (Own, 2 * lds) Pᵀ
  bf* dsts = reinterpret_cast<bf*>(dps);                         // (Own, 2 * lds) dSᵀ

  const int64_t b = blockIdx.z, g = blockIdx.y, j0 = int64_t(blockIdx.x) * Own;  // first keys: longest
  const int64_t G = s.NH / s.NKV, ldq = s.NH * HD, ldkv = s.NKV * HD;
  const int64_t n_keys = s.q_offset + s.T;  // keys no query row sees get no gradient
  stage_rows<HD>(ks, ldh, k + (b * s.Tk * s.NKV + g) * HD, ldkv, j0, Own, n_keys);
  stage_rows<HD>(vs, ldh, v + (b * s.Tk * s.NKV + g) * HD, ldkv, j0, Own, n_keys);

  FragC dk_acc[Tl::NACC], dv_acc[Tl::NACC];
#pragma unroll
  for (int i = 0; i < Tl::NACC; ++i) {
    fill_fragment(dk_acc[i], 0.0f);
    fill_fragment(dv_acc[i], 0.0f);
  }
  const int64_t t_first = max(int64_t(0), j0 - s.q_offset);  // first row seeing key j0
  for (int64_t hg = 0; hg < G; ++hg) {
    const int64_t h = g * G + hg;
    for (int64_t i0 = t_first; i0 < s.T; i0 += kWalk) {
      __syncthreads();  // the previous tile's Pᵀ, dSᵀ, Q and dO have been used
      stage_rows<HD>(qt, ldh, q + (b * s.T * s.NH + h) * HD, ldq, i0, kWalk, s.T);
      stage_rows<HD>(dot, ldh, dout + (b * s.T * s.NH + h) * HD, ldq, i0, kWalk, s.T);
      if (threadIdx.x < kWalk) {
        const int64_t t = i0 + threadIdx.x;
        lse_s[threadIdx.x] = t < s.T ? lse[(b * s.NH + h) * s.T + t] : 0.0f;
        D_s[threadIdx.x] = t < s.T ? D[(b * s.NH + h) * s.T + t] : 0.0f;
      }
      __syncthreads();
      scores_tiles<HD>(ss, dps, ks, vs, qt, dot);  // Sᵀ = K Qᵀ, dPᵀ = V dOᵀ
      __syncthreads();
      // Pᵀ = exp(scale * Sᵀ - lse), dSᵀ = scale * Pᵀ ∘ (dPᵀ - D): read all, then overwrite in bf16.
      // Key j0 + rr is seen by row i0 + c when i0 + c < T and j0 + rr <= q_offset + i0 + c.
      const int64_t rows_left = s.T - i0, diag = s.q_offset + i0 - j0;
      float p[kPer], ds[kPer];
#pragma unroll
      for (int e = 0; e < kPer; ++e) {
        const int idx = threadIdx.x + e * kBlock, rr = idx / kWalk, c = idx % kWalk;
        const bool visible = c < rows_left && rr - c <= diag;
        p[e] = visible ? expf(s.scale * ss[rr * lds + c] - lse_s[c]) : 0.0f;
        ds[e] = s.scale * p[e] * (dps[rr * lds + c] - D_s[c]);
      }
      __syncthreads();
#pragma unroll
      for (int e = 0; e < kPer; ++e) {
        const int idx = threadIdx.x + e * kBlock, rr = idx / kWalk, c = idx % kWalk;
        pts[rr * 2 * lds + c] = __float2bfloat16(p[e]);
        dsts[rr * 2 * lds + c] = __float2bfloat16(ds[e]);
      }
      __syncthreads();
      accumulate_tiles<HD>(dv_acc, pts, 2 * lds, dot);  // dV += Pᵀ dO
      accumulate_tiles<HD>(dk_acc, dsts, 2 * lds, qt);  // dK += dSᵀ Q
    }
  }

  __syncthreads();
  float* dk_stage = reinterpret_cast<float*>(smem);  // (Own, HD + kPadF)
  float* dv_stage = dk_stage + Own * (HD + kPadF);   // (Own, HD + kPadF)
  stage_acc<HD>(dk_stage, dk_acc);
  stage_acc<HD>(dv_stage, dv_acc);
  __syncthreads();
  const int rows = int(min(int64_t(Own), n_keys - j0));
  const int64_t at = (b * s.Tk * s.NKV + g) * HD + j0 * ldkv;
  if (dk) accumulate_rows<HD>(dk + at, ldkv, dk_stage, rows);
  if (dv) accumulate_rows<HD>(dv + at, ldkv, dv_stage, rows);
}

// ---- launchers ----------------------------------------------------------------------------

template <int HD>
void forward_launch(bf* out, float* lse, const bf* q, const bf* k, const bf* v, const Shape& s) {
  const dim3 grid(unsigned((s.T + kFwdRows - 1) / kFwdRows), unsigned(s.NH), unsigned(s.B));
  SLLM_LAUNCH(grid, kBlock, 0, attention_forward_bf16_kernel<HD>)(out, lse, q, k, v, s);
  SLLM_CUDA_CHECK_LAUNCH();
}

template <int HD>
void backward_launch(bf* dq, bf* dk, bf* dv, const bf* dout, const bf* q, const bf* k, const bf* v,
                     const float* lse, const float* D, const Shape& s) {
  constexpr int Own = BwdTiles<HD>::Own;
  if (dq) {
    const dim3 grid(unsigned((s.T + Own - 1) / Own), unsigned(s.NH), unsigned(s.B));
    SLLM_LAUNCH(grid, kBlock, 0, attention_backward_dq_bf16_kernel<HD>)(dq, dout, q, k, v, lse, D, s);
    SLLM_CUDA_CHECK_LAUNCH();
  }
  if (dk || dv) {
    const dim3 grid(unsigned((s.q_offset + s.T + Own - 1) / Own), unsigned(s.NKV), unsigned(s.B));
    SLLM_LAUNCH(grid, kBlock, 0, attention_backward_dkdv_bf16_kernel<HD>)(dk, dv, dout, q, k, v, lse, D, s);
    SLLM_CUDA_CHECK_LAUNCH();
  }
}

// Calls fn.template operator()<HD>() for the head dim, a multiple of 16 up to kMaxHD.
template <class Fn>
void dispatch_head_dim(int64_t HD, Fn&& fn) {
  switch (HD) {
    case 16: return fn.template operator()<16>();
    case 32: return fn.template operator()<32>();
    case 48: return fn.template operator()<48>();
    case 64: return fn.template operator()<64>();
    case 80: return fn.template operator()<80>();
    case 96: return fn.template operator()<96>();
    case 112: return fn.template operator()<112>();
    case 128: return fn.template operator()<128>();
    default: SLLM_ASSERT(false);
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

void check_shape(int64_t B, int64_t T, int64_t Tk, int64_t NH, int64_t NKV, int64_t HD, int64_t q_offset) {
  SLLM_CHECK(B >= 0 && T >= 0 && NH > 0 && NKV > 0 && HD > 0,
             str("attention (bf16): bad sizes B=", B, " T=", T, " NH=", NH, " NKV=", NKV, " HD=", HD),
             "batch and time must be >= 0, heads and head dim > 0");
  SLLM_CHECK(NH % NKV == 0, str("attention (bf16): NH=", NH, " is not a multiple of NKV=", NKV),
             "grouped-query attention needs num_attention_heads % num_key_value_heads == 0");
  SLLM_CHECK(q_offset >= 0 && q_offset + T <= Tk,
             str("attention (bf16): queries at positions [", q_offset, ", ", q_offset + T, ") but only Tk=", Tk,
                 " keys"),
             "the KV cache must hold every position up to the last query (q_offset + T <= Tk)");
  SLLM_CHECK(HD % 16 == 0 && HD <= kMaxHD, str("attention (bf16, CUDA): head dim ", HD, " is not supported"),
             "the tensor-core kernel takes head dims that are multiples of 16 up to 128 (64 and 128 are the "
             "common ones); use fp32 attention for other head dims");
  SLLM_CHECK(B <= 65535 && NH <= 65535, str("attention (bf16, CUDA): B=", B, " or NH=", NH, " above 65535"),
             "split the batch");
}

}  // namespace

void attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, int64_t B, int64_t T,
                       int64_t Tk, int64_t NH, int64_t NKV, int64_t HD, int64_t q_offset, float scale) {
  check_shape(B, T, Tk, NH, NKV, HD, q_offset);
  if (B == 0 || T == 0) return;
  SLLM_CHECK(aligned16(q) && aligned16(k) && aligned16(v), "attention (bf16): q, k or v not 16-byte aligned",
             "pass buffers that start at a 16-byte boundary (any tensor from the allocator does)");
  const Shape s{B, T, Tk, NH, NKV, q_offset, scale};
  dispatch_head_dim(HD, [&]<int D>() {
    forward_launch<D>(reinterpret_cast<bf*>(out), lse, reinterpret_cast<const bf*>(q),
                      reinterpret_cast<const bf*>(k), reinterpret_cast<const bf*>(v), s);
  });
}

void attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
                        const bf16* out, const float* lse, int64_t B, int64_t T, int64_t Tk, int64_t NH, int64_t NKV,
                        int64_t HD, int64_t q_offset, float scale) {
  check_shape(B, T, Tk, NH, NKV, HD, q_offset);
  if ((!dq && !dk && !dv) || B == 0 || T == 0) return;
  SLLM_CHECK(aligned16(q) && aligned16(k) && aligned16(v) && aligned16(dout),
             "attention (bf16): q, k, v or dout not 16-byte aligned",
             "pass buffers that start at a 16-byte boundary (any tensor from the allocator does)");
  const Shape s{B, T, Tk, NH, NKV, q_offset, scale};
  Scratch<float> D{size_t(B * NH * T)};  // (B, NH, T)
  SLLM_LAUNCH(grid_for(B * T * NH * 32, kBlock), kBlock, 0, attention_rowdot_bf16_kernel)(
      D.get(), reinterpret_cast<const bf*>(dout), reinterpret_cast<const bf*>(out), s, HD);
  SLLM_CUDA_CHECK_LAUNCH();
  dispatch_head_dim(HD, [&]<int D_>() {
    backward_launch<D_>(reinterpret_cast<bf*>(dq), reinterpret_cast<bf*>(dk), reinterpret_cast<bf*>(dv),
                        reinterpret_cast<const bf*>(dout), reinterpret_cast<const bf*>(q),
                        reinterpret_cast<const bf*>(k), reinterpret_cast<const bf*>(v), lse, D.get(), s);
  });
}

}  // namespace sllm::kernels::cuda
