// Causal self-attention with grouped-query heads in bf16 on tensor cores: forward and
// backward for mixed-precision training. FlashAttention-2 (Dao 2023, "FlashAttention-2:
// Faster Attention with Better Parallelism and Work Partitioning", Alg. 1 forward, Alg. 2
// backward) on mma.sync m16n8k16 with ldmatrix (kernels/cuda/mma_sm80.cuh holds the PTX and
// the fragment layouts). Same layouts, q_offset and lse as kernels/cuda/attention.cu (fp32)
// and kernels/cpu/attention.cpp.
//
// Dimension legend: B batch, T query rows, Tk key rows, NH query heads, NKV key/value heads,
// HD head dim (a multiple of 16, <= 128), G = NH / NKV query heads per kv head.
// q, out, dout, dq (B, T, NH, HD) bf16 with rows ldq (q, dq) and ldo (out, dout) elements
// apart; k, dk (B, Tk, NKV, HD) rows ldk apart, v, dv rows ldv apart (so q, k, v may be
// column slices of one packed (B, T, 3C) qkv); lse (B, NH, T) fp32.
// Query t sees keys [0, q_offset + t].
//
// Precision: q, k, v, dout are bf16; their products are exact in fp32 and every sum is an
// fp32 accumulation. Scores, softmax statistics (row max m, row sum l, lse, D) and the
// elementwise softmax backward stay fp32. Like FlashAttention, P (forward, dV) and dS (dQ,
// dK) are rounded to bf16 once before they enter the second product, and results are
// rounded once on store.
//
// Where the time goes, and why the kernels look the way they do: a tile product on the
// tensor cores is cheap; what limits FlashAttention is moving tiles (global -> shared ->
// registers) and the softmax between the two products. So:
//  - the own tile (Q in the forward and dq; K, V in dk/dv) is read once into registers as
//    A fragments and stays there for the whole walk;
//  - S = Q Kᵀ lands in accumulator registers, and the softmax runs on them in place: each
//    lane holds 2 rows x 2 columns per 8 keys, so a row's max and sum need only the 4 lanes
//    of a quad (two xor shuffles); P is rounded to bf16 and packed in pairs, which is the A
//    fragment of P V (mma_sm80.cuh: the accumulator layout of two n-tiles = an A fragment);
//  - walked tiles go global -> shared by cp.async, 16 bytes per lane, two stages: tile j+1
//    is in flight while tile j is multiplied;
//  - shared rows are padded by 16 bytes, so the 8 rows one ldmatrix reads start 4 banks
//    apart and cover all 32 banks once (no bank conflicts);
//  - every block's shared memory stays below the 48 KB a launch gets without opting in.
//
// Forward (Alg. 1): a block owns Br = 64 * MT query rows of one (b, h) (4 warps, 16 * MT rows
// each) and walks key tiles of Bc up to the causal limit of its last row. Per tile: S = Q Kᵀ,
// online softmax (Milakov & Gimelshein 2018) with m and l per row, O = diag(alpha) O + P V.
//
// Backward (deterministic, no atomics: every gradient element has one writer and a fixed
// summation order): D = rowsum(dout ∘ out) in a first pass, then one launch holding two kinds
// of blocks (so that each kind's short causal blocks fill the other's tail), each of which
// recomputes P = exp(scale * S - lse) from the forward's lse:
//   dq:     a block owns 64 query rows of (b, h), walks key tiles; S = Q Kᵀ, dP = dO Vᵀ,
//           dS = scale * P ∘ (dP - D), dQ += dS K.
//   dk, dv: a block owns 64 key rows of (b, g), walks the query tiles of the G heads of the
//           group; Sᵀ = K Qᵀ, dPᵀ = V dOᵀ, dV += Pᵀ dO, dK += dSᵀ Q.
// (Alg. 2 computes dQ in the dk/dv loop with atomic adds; recomputing S and dP once more in
// separate dq blocks is the price of bitwise-reproducible gradients.)
//
// Measured on an H200 (B 8, T 1024, causal; TFLOP/s counted as 4 B NH T² HD / 2 forward and
// 2.5x that backward): HD 64 (GPT-2, NH 12) forward 0.073 ms = 175, backward 0.299 ms = 108;
// HD 128 (NH 8) forward 0.101 ms = 170, backward 0.394 ms = 109.
//
// Backward ACCUMULATES (+=, read, add in fp32, round once) into dq, dk, dv when accumulate is
// true, else writes every element once (keys no query sees get 0); a nullptr gradient is
// skipped.
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/mma_sm80.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/scratch.h"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

using bf = __nv_bfloat16;

// 16 bytes: one vector load of 8 bf16.
struct alignas(16) Chunk {
  uint32_t w[4];
};
using mma::cp_async16;
using mma::ldmatrix_x4;
using mma::ldmatrix_x4_trans;
using mma::mma_m16n8k16;
using mma::pack_bf16x2;

constexpr int kWarps = 4;  // per block, every kernel
constexpr int kAttnThreads = 32 * kWarps;
constexpr int kMaxHD = 128;
constexpr float kLog2e = 1.4426950408889634f;

// 2^x for the softmax: one MUFU.EX2 (PTX ex2.approx.ftz.f32, max relative error 2^-22 --
// far below the 2^-9 of the bf16 rounding P gets next; results below 2^-126 flush to 0,
// i.e. probabilities under 1e-38). exp2f proper adds range handling around the same
// instruction, and the exponentials are, with the tensor-core products, what bounds the
// kernel's speed at HD 64: on an H200 this took GPT-2's backward from 77 to 91 TFLOP/s and
// the forward from 148 to 158. The simulator uses exp2f.
__device__ __forceinline__ float fast_exp2(float x) {
#if SLLM_CUDA_SIM
  return exp2f(x);
#else
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#endif
}

struct Shape {
  int64_t B, T, Tk, NH, NKV, q_offset;
  int64_t ldq, ldk, ldv, ldo;  // elements between consecutive tokens
  float scale;
};

__host__ __device__ constexpr int cmax(int a, int b) { return a > b ? a : b; }

// Shared tiles are (rows, HD) bf16 with row stride HD + 8: 16 bytes of padding (top of file).
template <int HD>
constexpr int kLd = HD + 8;

// ---- moving tiles --------------------------------------------------------------------------

// dst (ROWS, kLd) <- rows [r0, r0 + ROWS) of a strided matrix (row r at src + r * ld), zero
// past row `valid`, by cp.async in 16-byte chunks spread over the block's threads.
template <int HD, int ROWS>
__device__ __forceinline__ void load_tile(bf* dst, const bf* src, int64_t ld, int64_t r0, int64_t valid) {
  constexpr int kChunks = HD / 8;
#pragma unroll
  for (int idx = threadIdx.x; idx < ROWS * kChunks; idx += kAttnThreads) {
    const int r = idx / kChunks, c = idx % kChunks;
    const bool ok = r0 + r < valid;
    cp_async16(dst + r * kLd<HD> + c * 8, ok ? src + (r0 + r) * ld + c * 8 : src, ok);
  }
}

// The A fragment (16 x 16) at rows row0.., columns col0.. of a row-major shared tile:
// tiles 0-3 of ldmatrix are (rows 0-7, cols 0-7), (8-15, 0-7), (0-7, 8-15), (8-15, 8-15),
// i.e. a[0..3] in the order of mma_sm80.cuh.
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const bf* tile, int ld, int row0, int col0) {
  const int lane = threadIdx.x % 32, m = lane / 8, r = lane % 8;
  ldmatrix_x4(a, tile + (row0 + (m % 2) * 8 + r) * ld + col0 + (m / 2) * 8);
}

// B fragments of two n-tiles (n0.., n0 + 8..) over k0..k0+15 where B = tileᵀ: the tile's rows
// are B's columns (K in Q Kᵀ). b[0], b[1] serve n-tile n0, b[2], b[3] n-tile n0 + 8.
__device__ __forceinline__ void load_b_rows(uint32_t (&b)[4], const bf* tile, int ld, int n0, int k0) {
  const int lane = threadIdx.x % 32, m = lane / 8, r = lane % 8;
  ldmatrix_x4(b, tile + (n0 + (m / 2) * 8 + r) * ld + k0 + (m % 2) * 8);
}

// The same where B = tile, row-major (k, n) (V in P V): ldmatrix .trans turns rows of k
// into the k-pairs a B register holds.
__device__ __forceinline__ void load_b_cols(uint32_t (&b)[4], const bf* tile, int ld, int k0, int n0) {
  const int lane = threadIdx.x % 32, m = lane / 8, r = lane % 8;
  ldmatrix_x4_trans(b, tile + (k0 + (m % 2) * 8 + r) * ld + n0 + (m / 2) * 8);
}

__device__ __forceinline__ void mma_pair(float (&d0)[4], float (&d1)[4], const uint32_t (&a)[4],
                                         const uint32_t (&b)[4]) {
  const uint32_t lo[2] = {b[0], b[1]}, hi[2] = {b[2], b[3]};
  mma_m16n8k16(d0, a, lo);
  mma_m16n8k16(d1, a, hi);
}

// acc[n] (16 x 8 each, NT of them) += A (16 x 16 * KS, held as KS A fragments) · tileᵀ where
// the shared tile's rows are the n index: S = Q Kᵀ and dP = dO Vᵀ.
template <int KS, int NT>
__device__ __forceinline__ void mma_a_tile_t(float (&acc)[NT][4], const uint32_t (&a)[KS][4], const bf* tile,
                                             int ld) {
#pragma unroll
  for (int kk = 0; kk < KS; ++kk)
#pragma unroll
    for (int np = 0; np < NT / 2; ++np) {
      uint32_t b[4];
      load_b_rows(b, tile, ld, np * 16, kk * 16);
      mma_pair(acc[2 * np], acc[2 * np + 1], a[kk], b);
    }
}

// acc[n] (HD / 8 n-tiles) += P (16 x 8 * NP, fp32 accumulator layout, rounded to bf16 here)
// · tile (rows = the k index, 8 * NP of them; columns = HD): O += P V, dQ += dS K, ...
template <int NP, int NO>
__device__ __forceinline__ void mma_p_tile(float (&acc)[NO][4], const float (&p)[NP][4], const bf* tile, int ld) {
#pragma unroll
  for (int kk = 0; kk < NP / 2; ++kk) {
    // Two n-tiles of the accumulator are one A fragment (mma_sm80.cuh).
    const uint32_t a[4] = {pack_bf16x2(p[2 * kk][0], p[2 * kk][1]), pack_bf16x2(p[2 * kk][2], p[2 * kk][3]),
                           pack_bf16x2(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                           pack_bf16x2(p[2 * kk + 1][2], p[2 * kk + 1][3])};
#pragma unroll
    for (int np = 0; np < NO / 2; ++np) {
      uint32_t b[4];
      load_b_cols(b, tile, ld, kk * 16, np * 16);
      mma_pair(acc[2 * np], acc[2 * np + 1], a, b);
    }
  }
}

// Stores this lane's part of a (16, HD) fp32 accumulator (rows row0 + g and row0 + g + 8,
// columns 8n + 2c, 8n + 2c + 1) into bf16 rows at dst + row * ld, rows below `valid`:
// written, or added to what is there (accumulate).
template <int NO>
__device__ __forceinline__ void store_rows(bf* dst, int64_t ld, int64_t row0, int64_t valid, const float (&acc)[NO][4],
                                           float mul0, float mul1, bool accumulate) {
  const int lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int64_t row = row0 + g + 8 * half;
    if (row >= valid) continue;
    const float mul = half ? mul1 : mul0;
    bf* at = dst + row * ld + 2 * c;
#pragma unroll
    for (int n = 0; n < NO; ++n) {
      float x0 = acc[n][2 * half] * mul, x1 = acc[n][2 * half + 1] * mul;
      if (accumulate) {
        x0 += __bfloat162float(at[8 * n]);
        x1 += __bfloat162float(at[8 * n + 1]);
      }
      *reinterpret_cast<uint32_t*>(at + 8 * n) = pack_bf16x2(x0, x1);
    }
  }
}

// ---- forward -------------------------------------------------------------------------------

// MT m-tiles (16 rows) per warp: 2 up to HD 64 (each K and V fragment loaded from shared
// memory serves two products), 1 above (O, S and Q fragments must stay in registers). Bc
// keys per tile: 64, or 32 above HD 64 so that two stages of K and V fit 48 KB.
template <int HD>
struct FwdConfig {
  static constexpr int MT = HD <= 64 ? 2 : 1;
  static constexpr int Br = 16 * MT * kWarps;
  static constexpr int Bc = HD <= 64 ? 64 : 32;
  static constexpr int stage_elems = 2 * Bc * kLd<HD>;  // K then V
  // Two stages; before the walk the same space holds the Q tile.
  static constexpr int smem_elems = cmax(2 * stage_elems, Br * kLd<HD>);
  static_assert(2 * smem_elems <= 48 * 1024, "forward tiles must fit the default 48 KB of shared memory");
};

// Grid (NH, B, ceil(T / Br)), kAttnThreads threads.
template <int HD>
__global__ void __launch_bounds__(kAttnThreads) attention_forward_bf16_kernel(bf* out, float* lse, const bf* q,
                                                                          const bf* k, const bf* v, Shape s) {
  using Cfg = FwdConfig<HD>;
  constexpr int MT = Cfg::MT, Br = Cfg::Br, Bc = Cfg::Bc, LD = kLd<HD>, KS = HD / 16, NS = Bc / 8, NO = HD / 8;
  alignas(128) __shared__ bf smem[Cfg::smem_elems];

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4;
  // Blocks start in x, y, z order: z = 0 is every (h, b)'s last query tile, the one that sees
  // the most keys, so the causal triangle's long blocks all start first and the short ones
  // fill the tail of the grid.
  const int64_t h = blockIdx.x, b = blockIdx.y, i0 = int64_t(gridDim.z - 1 - blockIdx.z) * Br;
  const int64_t kv = h / (s.NH / s.NKV);
  const bf* k_rows = k + b * s.Tk * s.ldk + kv * HD;  // key j at k_rows + j * ldk
  const bf* v_rows = v + b * s.Tk * s.ldv + kv * HD;
  const int64_t warp_row0 = i0 + warp * 16 * MT;

  // This warp's query rows as A fragments, in registers for the whole walk.
  load_tile<HD, Br>(smem, q + b * s.T * s.ldq + h * HD, s.ldq, i0, s.T);
  mma::cp_async_commit();
  mma::cp_async_wait<0>();
  __syncthreads();
  uint32_t qf[MT][KS][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int kk = 0; kk < KS; ++kk) load_a(qf[mt][kk], smem, LD, warp * 16 * MT + mt * 16, kk * 16);
  __syncthreads();  // Q's space becomes the first stage

  const int64_t n_keys = s.q_offset + min(s.T, i0 + Br);  // the block's last row sees [0, n_keys)
  const int n_tiles = int((n_keys + Bc - 1) / Bc);
  auto load_kv = [&](int j) {
    bf* st = smem + (j % 2) * Cfg::stage_elems;
    load_tile<HD, Bc>(st, k_rows, s.ldk, int64_t(j) * Bc, n_keys);
    load_tile<HD, Bc>(st + Bc * LD, v_rows, s.ldv, int64_t(j) * Bc, n_keys);
    mma::cp_async_commit();
  };
  load_kv(0);

  float o[MT][NO][4] = {};
  // Per row this lane holds (rows g and g + 8 of each m-tile): the running max of the raw
  // scores and this lane's part of the row sum (the quad's four parts add up at the end).
  float m[MT][2], l[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.0f;
  const float scale_log2 = s.scale * kLog2e;  // exp(scale * x) = exp2(scale_log2 * x)

  for (int j = 0; j < n_tiles; ++j) {
    mma::cp_async_wait<0>();
    __syncthreads();  // tile j has landed for everyone; tile j - 1's stage is free
    if (j + 1 < n_tiles) load_kv(j + 1);
    const bf* ks = smem + (j % 2) * Cfg::stage_elems;
    const bf* vs = ks + Bc * LD;
    const int64_t j0 = int64_t(j) * Bc;

    float sc[MT][NS][4] = {};  // S = Q Kᵀ, one K fragment load per MT products
#pragma unroll
    for (int kk = 0; kk < KS; ++kk)
#pragma unroll
      for (int np = 0; np < NS / 2; ++np) {
        uint32_t bk[4];
        load_b_rows(bk, ks, LD, np * 16, kk * 16);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) mma_pair(sc[mt][2 * np], sc[mt][2 * np + 1], qf[mt][kk], bk);
      }

    // Causal mask (and rows past T) only where the tile crosses this warp's diagonal.
    const bool masked = j0 + Bc - 1 > s.q_offset + warp_row0 || warp_row0 + 16 * MT > s.T;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        // Row t sees this tile's columns up to `last` (int: cheap to compare per element).
        const int64_t t = warp_row0 + mt * 16 + g + 8 * half;
        const int last = t < s.T ? int(min(s.q_offset + t - j0, int64_t(Bc))) : -1;
        float mx = m[mt][half];
#pragma unroll
        for (int n = 0; n < NS; ++n)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float& x = sc[mt][n][2 * half + e];
            if (masked && 8 * n + 2 * (lane % 4) + e > last) x = -INFINITY;
            mx = fmaxf(mx, x);
          }
        mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 1));  // the quad holds the row
        mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 2));
        // A row that has seen no key yet (only rows past T, which see none) keeps p = 0.
        const float m_use = mx == -INFINITY ? 0.0f : mx * scale_log2;
        const float alpha = fast_exp2(m[mt][half] * scale_log2 - m_use);  // 0 on a row's first tile
        m[mt][half] = mx;
        float sum = 0.0f;
#pragma unroll
        for (int n = 0; n < NS; ++n)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float& x = sc[mt][n][2 * half + e];
            x = fast_exp2(fmaf(x, scale_log2, -m_use));  // P, overwriting S
            sum += x;
          }
        l[mt][half] = l[mt][half] * alpha + sum;
#pragma unroll
        for (int n = 0; n < NO; ++n) o[mt][n][2 * half] *= alpha, o[mt][n][2 * half + 1] *= alpha;
      }

    // O += P V: P straight from the registers, one V fragment load per MT products.
#pragma unroll
    for (int kk = 0; kk < NS / 2; ++kk) {
      uint32_t pa[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        pa[mt][0] = pack_bf16x2(sc[mt][2 * kk][0], sc[mt][2 * kk][1]);
        pa[mt][1] = pack_bf16x2(sc[mt][2 * kk][2], sc[mt][2 * kk][3]);
        pa[mt][2] = pack_bf16x2(sc[mt][2 * kk + 1][0], sc[mt][2 * kk + 1][1]);
        pa[mt][3] = pack_bf16x2(sc[mt][2 * kk + 1][2], sc[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int np = 0; np < NO / 2; ++np) {
        uint32_t bv[4];
        load_b_cols(bv, vs, LD, kk * 16, np * 16);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) mma_pair(o[mt][2 * np], o[mt][2 * np + 1], pa[mt], bv);
      }
    }
  }

  // out = O / l (l summed over the quad), lse = scale * m + log l.
  bf* out_rows = out + b * s.T * s.ldo + h * HD;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    float inv[2];
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float sum = l[mt][half];
      sum += __shfl_xor_sync(kFullMask, sum, 1);
      sum += __shfl_xor_sync(kFullMask, sum, 2);
      const int64_t t = warp_row0 + mt * 16 + g + 8 * half;
      inv[half] = t < s.T ? 1.0f / sum : 0.0f;
      if (t < s.T && lane % 4 == 0) lse[(b * s.NH + h) * s.T + t] = m[mt][half] * s.scale + logf(sum);
    }
    store_rows(out_rows, s.ldo, warp_row0 + mt * 16, s.T, o[mt], inv[0], inv[1], false);
  }
}

// ---- backward ------------------------------------------------------------------------------

// D (B, NH, T) = rowsum(dout ∘ out) in fp32: equals rowsum(P ∘ dP), the softmax-backward
// term. A half-warp per (b, t, h) row, 8 elements (16 bytes) per lane: lane c of the half
// reads columns [8c, 8c + 8) while 8c < HD, then the 16 lanes add up by xor butterflies.
__global__ void attention_rowdot_bf16_kernel(float* D, const bf* dout, const bf* out, Shape s, int HD) {
  const int lane = threadIdx.x % 32, c = lane % 16;
  const int64_t rows = s.B * s.T * s.NH, per_block = 2 * kWarps;
  for (int64_t row0 = blockIdx.x * per_block; row0 < rows; row0 += int64_t(gridDim.x) * per_block) {
    const int64_t row = row0 + threadIdx.x / 16;  // the loop bound is the same for the whole warp
    float acc = 0.0f;
    if (row < rows && 8 * c < HD) {
      const int64_t h = row % s.NH, bt = row / s.NH;
      const int64_t at = bt * s.ldo + h * HD + 8 * c;
      const Chunk a = *reinterpret_cast<const Chunk*>(dout + at), o = *reinterpret_cast<const Chunk*>(out + at);
#pragma unroll
      for (int i = 0; i < 4; ++i)
        acc += mma::bf16_lo(a.w[i]) * mma::bf16_lo(o.w[i]) + mma::bf16_hi(a.w[i]) * mma::bf16_hi(o.w[i]);
    }
#pragma unroll
    for (int offset = 8; offset > 0; offset >>= 1) acc += __shfl_xor_sync(kFullMask, acc, offset);
    if (row < rows && c == 0) {
      const int64_t h = row % s.NH, bt = row / s.NH, b = bt / s.T, t = bt % s.T;
      D[(b * s.NH + h) * s.T + t] = acc;
    }
  }
}

// Both backward kernels own 64 rows (4 warps x 16) and walk tiles of W rows of the other side:
// dq walks keys (W = 64, or 32 above HD 64), dk/dv walks queries (W = 64, 32 up to HD 96, 16
// above: dK and dV accumulators of HD / 2 registers each plus the K and V fragments leave
// room for little else). W keeps two stages of walked tiles within 48 KB.
template <int HD, bool kDkDv>
struct BwdConfig {
  static constexpr int Own = 16 * kWarps;
  static constexpr int W = HD <= 64 ? 64 : (!kDkDv || HD <= 96) ? 32 : 16;
  static constexpr int stage_elems = 2 * W * kLd<HD>;  // two walked tiles (K, V or Q, dO)
  // Two stages; before the walk the same space holds the two own tiles.
  static constexpr int smem_elems = cmax(2 * stage_elems, 2 * Own * kLd<HD>);
  static_assert(2 * smem_elems + 2 * 2 * W * 4 <= 48 * 1024, "backward tiles must fit 48 KB of shared memory");
};

// dq block: query rows [i0, i0 + 64) of (b, h). Own: Q, dO rows; walk: K, V tiles of kv head g.
// dq (t) = sum over visible keys j of dS_tj k_j. smem: BwdConfig<HD, false>::smem_elems.
template <int HD>
__device__ __forceinline__ void backward_dq_block(bf* smem, bf* dq, const bf* dout, const bf* q, const bf* k,
                                                  const bf* v, const float* lse, const float* D, const Shape& s,
                                                  bool accumulate, int64_t h, int64_t b, int64_t i0) {
  using Cfg = BwdConfig<HD, false>;
  constexpr int Own = Cfg::Own, W = Cfg::W, LD = kLd<HD>, KS = HD / 16, NS = W / 8, NO = HD / 8;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  const int64_t kv = h / (s.NH / s.NKV);
  const bf* k_rows = k + b * s.Tk * s.ldk + kv * HD;
  const bf* v_rows = v + b * s.Tk * s.ldv + kv * HD;
  const int64_t row0 = i0 + warp * 16;  // this warp's first query row

  load_tile<HD, Own>(smem, q + b * s.T * s.ldq + h * HD, s.ldq, i0, s.T);
  load_tile<HD, Own>(smem + Own * LD, dout + b * s.T * s.ldo + h * HD, s.ldo, i0, s.T);
  mma::cp_async_commit();
  mma::cp_async_wait<0>();
  __syncthreads();
  uint32_t qf[KS][4], dof[KS][4];
#pragma unroll
  for (int kk = 0; kk < KS; ++kk) {
    load_a(qf[kk], smem, LD, warp * 16, kk * 16);
    load_a(dof[kk], smem + Own * LD, LD, warp * 16, kk * 16);
  }
  // lse (in log2 units) and D of this lane's two rows.
  float lse2[2], Dr[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int64_t t = row0 + g + 8 * half;
    lse2[half] = t < s.T ? lse[(b * s.NH + h) * s.T + t] * kLog2e : 0.0f;
    Dr[half] = t < s.T ? D[(b * s.NH + h) * s.T + t] : 0.0f;
  }
  __syncthreads();  // the own tiles' space becomes the first stage

  const int64_t n_keys = s.q_offset + min(s.T, i0 + Own);
  const int n_tiles = int((n_keys + W - 1) / W);
  auto load_kv = [&](int j) {
    bf* st = smem + (j % 2) * Cfg::stage_elems;
    load_tile<HD, W>(st, k_rows, s.ldk, int64_t(j) * W, n_keys);
    load_tile<HD, W>(st + W * LD, v_rows, s.ldv, int64_t(j) * W, n_keys);
    mma::cp_async_commit();
  };
  load_kv(0);
  const float scale_log2 = s.scale * kLog2e;

  float acc[NO][4] = {};
  for (int j = 0; j < n_tiles; ++j) {
    mma::cp_async_wait<0>();
    __syncthreads();
    if (j + 1 < n_tiles) load_kv(j + 1);
    const bf* ks = smem + (j % 2) * Cfg::stage_elems;
    const bf* vs = ks + W * LD;
    const int64_t j0 = int64_t(j) * W;

    float sc[NS][4] = {}, dp[NS][4] = {};
    mma_a_tile_t<KS, NS>(sc, qf, ks, LD);   // S = Q Kᵀ
    mma_a_tile_t<KS, NS>(dp, dof, vs, LD);  // dP = dO Vᵀ
    const bool masked = j0 + W - 1 > s.q_offset + row0 || row0 + 16 > s.T;
    int last[2];  // the last visible column of this tile for rows g and g + 8
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t t = row0 + g + 8 * half;
      last[half] = t < s.T ? int(min(s.q_offset + t - j0, int64_t(W))) : -1;
    }
#pragma unroll
    for (int n = 0; n < NS; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const bool visible = !masked || 8 * n + 2 * c + e % 2 <= last[e / 2];
        const float p = visible ? fast_exp2(fmaf(sc[n][e], scale_log2, -lse2[e / 2])) : 0.0f;
        sc[n][e] = s.scale * p * (dp[n][e] - Dr[e / 2]);  // dS, overwriting S
      }
    mma_p_tile<NS, NO>(acc, sc, ks, LD);  // dQ += dS K
  }
  store_rows(dq + b * s.T * s.ldq + h * HD, s.ldq, row0, s.T, acc, 1.0f, 1.0f, accumulate);
}

// dk, dv block: key rows [j0, j0 + 64) of (b, kvh). Own: K, V rows; walk: Q, dO tiles of the
// G heads of the group, from the first query row that sees the block's first key.
// dv (j) = sum over t of P_tj dout_t;  dk (j) = sum over t of dS_tj q_t.
// smem: BwdConfig<HD, true>::smem_elems; stats: per stage, lse (log2 units) and D of the walked rows.
template <int HD>
__device__ __forceinline__ void backward_dkdv_block(bf* smem, float (*stats)[2][BwdConfig<HD, true>::W], bf* dk,
                                                    bf* dv, const bf* dout, const bf* q, const bf* k, const bf* v,
                                                    const float* lse, const float* D, const Shape& s, bool accumulate,
                                                    int64_t kvh, int64_t b, int64_t j0) {
  using Cfg = BwdConfig<HD, true>;
  constexpr int Own = Cfg::Own, W = Cfg::W, LD = kLd<HD>, KS = HD / 16, NS = W / 8, NO = HD / 8;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
  const int64_t G = s.NH / s.NKV;
  const int64_t n_keys = s.q_offset + s.T;  // keys no query row sees get no gradient
  const int64_t key0 = j0 + warp * 16;       // this warp's first key

  load_tile<HD, Own>(smem, k + b * s.Tk * s.ldk + kvh * HD, s.ldk, j0, n_keys);
  load_tile<HD, Own>(smem + Own * LD, v + b * s.Tk * s.ldv + kvh * HD, s.ldv, j0, n_keys);
  mma::cp_async_commit();
  mma::cp_async_wait<0>();
  __syncthreads();
  uint32_t kf[KS][4], vf[KS][4];
#pragma unroll
  for (int kk = 0; kk < KS; ++kk) {
    load_a(kf[kk], smem, LD, warp * 16, kk * 16);
    load_a(vf[kk], smem + Own * LD, LD, warp * 16, kk * 16);
  }
  __syncthreads();

  // The walk: for each head of the group, query tiles from t_first on; flattened so that the
  // next tile (perhaps of the next head) is always in flight.
  const int64_t t_first = max(int64_t(0), j0 - s.q_offset);  // first row seeing key j0
  const int per_head = t_first < s.T ? int((s.T - t_first + W - 1) / W) : 0;
  const int n_tiles = int(G) * per_head;
  // Tile j's Q and dO by cp.async; its lse and D (one row per thread below W) into registers
  // first, stored to shared memory only after the current tile's products, so that the
  // loads' latency hides behind them instead of stalling the loading warps.
  static_assert(W <= kAttnThreads, "one walked row per thread");
  float next_lse = 0.0f, next_D = 0.0f;
  auto load_q = [&](int j) {
    const int64_t h = kvh * G + j / per_head, i0 = t_first + int64_t(j % per_head) * W;
    bf* st = smem + (j % 2) * Cfg::stage_elems;
    load_tile<HD, W>(st, q + b * s.T * s.ldq + h * HD, s.ldq, i0, s.T);
    load_tile<HD, W>(st + W * LD, dout + b * s.T * s.ldo + h * HD, s.ldo, i0, s.T);
    mma::cp_async_commit();
    const int64_t t = i0 + threadIdx.x;
    if (threadIdx.x < W && t < s.T) {
      next_lse = lse[(b * s.NH + h) * s.T + t];
      next_D = D[(b * s.NH + h) * s.T + t];
    } else {
      next_lse = next_D = 0.0f;
    }
  };
  // Read only after the barrier that starts tile j.
  auto store_stats = [&](int j) {
    if (threadIdx.x < W) {
      stats[j % 2][0][threadIdx.x] = next_lse * kLog2e;
      stats[j % 2][1][threadIdx.x] = next_D;
    }
  };
  if (n_tiles > 0) {
    load_q(0);
    store_stats(0);
  }
  const float scale_log2 = s.scale * kLog2e;

  float dk_acc[NO][4] = {}, dv_acc[NO][4] = {};
  for (int j = 0; j < n_tiles; ++j) {
    mma::cp_async_wait<0>();
    __syncthreads();
    if (j + 1 < n_tiles) load_q(j + 1);
    const bf* qs = smem + (j % 2) * Cfg::stage_elems;
    const bf* dos = qs + W * LD;
    const float* lse_s = stats[j % 2][0];
    const float* D_s = stats[j % 2][1];
    const int64_t i0 = t_first + int64_t(j % per_head) * W;

    float st[NS][4] = {}, dpt[NS][4] = {};
    mma_a_tile_t<KS, NS>(st, kf, qs, LD);    // Sᵀ = K Qᵀ
    mma_a_tile_t<KS, NS>(dpt, vf, dos, LD);  // dPᵀ = V dOᵀ
    // Key key0 + g (+8) is seen by query i0 + col when that query is below T and
    // key <= q_offset + query.
    const bool masked = key0 + 15 > s.q_offset + i0 || i0 + W > s.T;
    // Column col (query i0 + col) sees key key0 + g + 8 * half when col >= first[half] and
    // i0 + col < T.
    int first[2];
#pragma unroll
    for (int half = 0; half < 2; ++half)
      first[half] = int(max(int64_t(0), min(key0 + g + 8 * half - s.q_offset - i0, int64_t(W))));
    const int rows_left = int(min(s.T - i0, int64_t(W)));
#pragma unroll
    for (int n = 0; n < NS; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = 8 * n + 2 * c + e % 2;
        const bool visible = !masked || (col < rows_left && col >= first[e / 2]);
        const float p = visible ? fast_exp2(fmaf(st[n][e], scale_log2, -lse_s[col])) : 0.0f;
        st[n][e] = p;                                         // Pᵀ over Sᵀ
        dpt[n][e] = s.scale * p * (dpt[n][e] - D_s[col]);     // dSᵀ over dPᵀ
      }
    mma_p_tile<NS, NO>(dv_acc, st, dos, LD);  // dV += Pᵀ dO
    mma_p_tile<NS, NO>(dk_acc, dpt, qs, LD);  // dK += dSᵀ Q
    if (j + 1 < n_tiles) store_stats(j + 1);  // stage (j + 1) % 2 was last read in tile j - 1
  }
  const int64_t at = b * s.Tk;
  if (dk) store_rows(dk + at * s.ldk + kvh * HD, s.ldk, key0, s.Tk, dk_acc, 1.0f, 1.0f, accumulate);
  if (dv) store_rows(dv + at * s.ldv + kvh * HD, s.ldv, key0, s.Tk, dv_acc, 1.0f, 1.0f, accumulate);
}

// Both backward kernels in one grid, so that the short blocks of one fill the tail of the
// other (a causal grid ends with a tail either way). Blocks go in ranks r = 0, 1, ...: rank r
// holds the dk/dv blocks of key tile r (NKV * B of them) then the dq blocks of query tile
// n_dq - 1 - r (NH * B): within the grid's start order, the longest blocks of both kinds come
// first. A rank beyond one kind's tiles holds idle blocks of that kind.
struct BwdGrid {
  int64_t kv_count, dq_count, n_kv, n_dq;  // blocks per rank of each kind; tiles of each kind
};

template <int HD>
__global__ void __launch_bounds__(kAttnThreads, 1)
    attention_backward_bf16_kernel(bf* dq, bf* dk, bf* dv, const bf* dout, const bf* q, const bf* k, const bf* v,
                                   const float* lse, const float* D, Shape s, bool accumulate, BwdGrid grid) {
  constexpr int Own = BwdConfig<HD, false>::Own;
  static_assert(BwdConfig<HD, true>::Own == Own, "both kinds own 64 rows");
  alignas(128) __shared__ bf smem[cmax(BwdConfig<HD, false>::smem_elems, BwdConfig<HD, true>::smem_elems)];
  __shared__ float stats[2][2][BwdConfig<HD, true>::W];
  const int64_t rank = blockIdx.x / (grid.kv_count + grid.dq_count);
  int64_t idx = blockIdx.x % (grid.kv_count + grid.dq_count);
  if (idx < grid.kv_count) {
    if (rank < grid.n_kv)
      backward_dkdv_block<HD>(smem, stats, dk, dv, dout, q, k, v, lse, D, s, accumulate, idx % s.NKV, idx / s.NKV,
                              rank * Own);
  } else {
    idx -= grid.kv_count;
    if (rank < grid.n_dq)
      backward_dq_block<HD>(smem, dq, dout, q, k, v, lse, D, s, accumulate, idx % s.NH, idx / s.NH,
                            (grid.n_dq - 1 - rank) * Own);
  }
}

// ---- launchers ----------------------------------------------------------------------------

template <int HD>
void forward_launch(bf* out, float* lse, const bf* q, const bf* k, const bf* v, const Shape& s) {
  constexpr int Br = FwdConfig<HD>::Br;
  const dim3 grid(unsigned(s.NH), unsigned(s.B), unsigned((s.T + Br - 1) / Br));
  SLLM_LAUNCH(grid, kAttnThreads, 0, attention_forward_bf16_kernel<HD>)(out, lse, q, k, v, s);
  SLLM_CUDA_CHECK_LAUNCH();
}

template <int HD>
void backward_launch(bf* dq, bf* dk, bf* dv, const bf* dout, const bf* q, const bf* k, const bf* v,
                     const float* lse, const float* D, const Shape& s, bool accumulate) {
  constexpr int Own = BwdConfig<HD, false>::Own;
  // Every key row (up to Tk) has an owner, so that accumulate == false writes all of them.
  BwdGrid grid{(dk || dv) ? s.NKV * s.B : 0, (dq && s.T > 0) ? s.NH * s.B : 0, (s.Tk + Own - 1) / Own,
               (s.T + Own - 1) / Own};
  const int64_t ranks = max(grid.kv_count ? grid.n_kv : 0, grid.dq_count ? grid.n_dq : 0);
  const int64_t blocks = ranks * (grid.kv_count + grid.dq_count);
  if (blocks == 0) return;
  SLLM_CHECK(blocks < (int64_t(1) << 31), str("attention (bf16, CUDA): ", blocks, " backward blocks"),
             "split the batch");
  SLLM_LAUNCH(unsigned(blocks), kAttnThreads, 0, attention_backward_bf16_kernel<HD>)(dq, dk, dv, dout, q, k, v, lse,
                                                                                     D, s, accumulate, grid);
  SLLM_CUDA_CHECK_LAUNCH();
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

// Sizes, and strides that let every row start at a 16-byte boundary (cp.async moves 16 bytes).
Shape check_shape(int64_t B, int64_t T, int64_t Tk, int64_t NH, int64_t NKV, int64_t HD, int64_t q_offset, float scale,
                  int64_t ldq, int64_t ldk, int64_t ldv, int64_t ldo) {
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
  SLLM_CHECK(B <= 65535 && (T + 63) / 64 <= 65535 && (Tk + 63) / 64 <= 65535,
             str("attention (bf16, CUDA): B=", B, " or T=", T, " too large for the grid"),
             "split the batch or the sequence");
  SLLM_CHECK(ldq >= NH * HD && ldo >= NH * HD && ldk >= NKV * HD && ldv >= NKV * HD &&
                 ldq % 8 == 0 && ldk % 8 == 0 && ldv % 8 == 0 && ldo % 8 == 0,
             str("attention (bf16): row strides ldq=", ldq, " ldk=", ldk, " ldv=", ldv, " ldo=", ldo,
                 " for NH=", NH, " NKV=", NKV, " HD=", HD),
             "a row stride must hold all heads of a token (ldq, ldo >= NH*HD; ldk, ldv >= NKV*HD) and be a "
             "multiple of 8 elements (16 bytes)");
  return Shape{B, T, Tk, NH, NKV, q_offset, ldq, ldk, ldv, ldo, scale};
}

}  // namespace

void attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, int64_t B, int64_t T,
                       int64_t Tk, int64_t NH, int64_t NKV, int64_t HD, int64_t q_offset, float scale, int64_t ldq,
                       int64_t ldk, int64_t ldv, int64_t ldo) {
  const Shape s = check_shape(B, T, Tk, NH, NKV, HD, q_offset, scale, ldq, ldk, ldv, ldo);
  if (B == 0 || T == 0) return;
  SLLM_CHECK(aligned16(q) && aligned16(k) && aligned16(v) && aligned16(out),
             "attention (bf16): q, k, v or out not 16-byte aligned",
             "pass buffers that start at a 16-byte boundary (any tensor from the allocator does)");
  dispatch_head_dim(HD, [&]<int D>() {
    forward_launch<D>(reinterpret_cast<bf*>(out), lse, reinterpret_cast<const bf*>(q),
                      reinterpret_cast<const bf*>(k), reinterpret_cast<const bf*>(v), s);
  });
}

void attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
                        const bf16* out, const float* lse, int64_t B, int64_t T, int64_t Tk, int64_t NH, int64_t NKV,
                        int64_t HD, int64_t q_offset, float scale, int64_t ldq, int64_t ldk, int64_t ldv, int64_t ldo,
                        bool accumulate) {
  const Shape s = check_shape(B, T, Tk, NH, NKV, HD, q_offset, scale, ldq, ldk, ldv, ldo);
  if ((!dq && !dk && !dv) || B == 0 || Tk == 0) return;
  SLLM_CHECK(aligned16(q) && aligned16(k) && aligned16(v) && aligned16(dout) && aligned16(out),
             "attention (bf16): q, k, v, out or dout not 16-byte aligned",
             "pass buffers that start at a 16-byte boundary (any tensor from the allocator does)");
  SLLM_CHECK((!dq || aligned16(dq)) && (!dk || aligned16(dk)) && (!dv || aligned16(dv)),
             "attention (bf16): dq, dk or dv not 16-byte aligned",
             "pass buffers that start at a 16-byte boundary (any tensor from the allocator does)");
  // With T == 0 there is no query: dq is empty, and the dk/dv kernel only writes zeros.
  Scratch<float> D{size_t(B * NH * T)};  // (B, NH, T)
  if (T > 0) {
    SLLM_LAUNCH(grid_for(B * T * NH * 16, kAttnThreads), kAttnThreads, 0, attention_rowdot_bf16_kernel)(
        D.get(), reinterpret_cast<const bf*>(dout), reinterpret_cast<const bf*>(out), s, int(HD));
    SLLM_CUDA_CHECK_LAUNCH();
  }
  dispatch_head_dim(HD, [&]<int D_>() {
    backward_launch<D_>(reinterpret_cast<bf*>(dq), reinterpret_cast<bf*>(dk), reinterpret_cast<bf*>(dv),
                        reinterpret_cast<const bf*>(dout), reinterpret_cast<const bf*>(q),
                        reinterpret_cast<const bf*>(k), reinterpret_cast<const bf*>(v), lse, D.get(), s, accumulate);
  });
}

}  // namespace sllm::kernels::cuda
