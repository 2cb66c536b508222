// Causal self-attention with grouped-query heads on the GPU: fused forward and backward in
// fp32 (FlashAttention, Dao et al. 2022, Alg. 1-2), same layouts and formula lines as
// kernels/cpu/attention.cpp.
//
// Dimension legend: B batch, T query rows, Tk key rows, NH query heads, NKV key/value heads,
// HD head dim (<= kMaxHD), G = NH / NKV query heads per kv head. Bc = 32 keys per tile (one
// per lane of a warp).
// q, out, dout, dq (B, T, NH, HD); k, v, dk, dv (B, Tk, NKV, HD); lse (B, NH, T).
// Query t sees keys [0, q_offset + t].
//
// Forward: a block takes kWarps query rows of one (b, h), one warp per row. Key tiles are
// staged in shared memory; lane j scores key j of the tile, the warp keeps the running row
// max m, row sum l and unnormalized output O (each lane owns HD/32 of its columns), the
// online softmax of Milakov & Gimelshein 2018. Only lse = m + log(l) is saved.
// Backward: P = exp(scale * q kᵀ - lse) is recomputed, D = rowsum(dout ∘ out),
// dS = scale * P ∘ (dP - D), dP = dout vᵀ. Two kernels so that every gradient element has
// one writer and a fixed summation order (deterministic, no atomics):
//   dq: one warp per query row walks the key tiles (like the forward);
//   dk, dv: one warp per key row walks the query rows of all G heads of its group.
//
// Backward ACCUMULATES (+=) into dq, dk, dv; a nullptr gradient is skipped.
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/scratch.h"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

constexpr int kWarps = kThreads / 32;  // query rows (forward, dq) or key rows (dk, dv) per block
constexpr int kBc = 32;                // keys (forward, dq) or query rows (dk, dv) per tile
constexpr int kMaxHD = 128;            // head dims up to this: 4 columns per lane in registers
constexpr int kPerLane = kMaxHD / 32;

struct Shape {
  int64_t B, T, Tk, NH, NKV, HD, q_offset;
  float scale;
};

// Keys of the tile starting at j0 that query row t sees: [j0, q_offset + t], at most kBc.
__device__ inline int visible_keys(const Shape& s, int64_t t, int64_t j0) {
  return int(max(int64_t(0), min(int64_t(kBc), s.q_offset + t + 1 - j0)));
}

// Copies rows [r0, r0 + rows) of a head-strided matrix (row r at src + r * ld) into a
// shared (rows_max, HD) tile with row stride lds, zero-filling rows past `valid`.
__device__ inline void stage_rows(float* dst, int lds, const float* src, int64_t ld, int64_t r0, int rows_max,
                                  int64_t valid, int64_t HD, float mul) {
  for (int idx = threadIdx.x; idx < rows_max * HD; idx += blockDim.x) {
    const int r = int(idx / HD), d = int(idx % HD);
    dst[r * lds + d] = r0 + r < valid ? mul * src[(r0 + r) * ld + d] : 0.0f;
  }
}

// ---- forward -----------------------------------------------------------------------------

// Grid (ceil(T / kWarps), NH, B). Shared: qs (kWarps, HD) scaled queries, kt (kBc, HD + 1)
// keys (padded so lane j reading row j hits distinct banks), vt (kBc, HD) values.
__global__ void attention_forward_kernel(float* out, float* lse, const float* q, const float* k, const float* v,
                                         Shape s) {
  SLLM_DYNAMIC_SHARED(float, smem);
  const int64_t HD = s.HD, ldq = s.NH * HD, ldkv = s.NKV * HD;
  float* qs = smem;                    // (kWarps, HD)
  float* kt = qs + kWarps * HD;        // (kBc, HD + 1)
  float* vt = kt + kBc * (HD + 1);     // (kBc, HD)
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t b = blockIdx.z, h = blockIdx.y, i0 = int64_t(blockIdx.x) * kWarps, t = i0 + warp;
  const int64_t g = h / (s.NH / s.NKV);
  const float* k_rows = k + (b * s.Tk * s.NKV + g) * HD;  // key j at k_rows + j * ldkv
  const float* v_rows = v + (b * s.Tk * s.NKV + g) * HD;
  stage_rows(qs, int(HD), q + (b * s.T * s.NH + h) * HD, ldq, i0, kWarps, s.T, HD, s.scale);

  float m = -INFINITY, l = 0.0f, o[kPerLane] = {};  // running row max, row sum, output
  const int64_t n_keys = s.q_offset + min(s.T, i0 + kWarps);  // the block's last row sees [0, n_keys)
  for (int64_t j0 = 0; j0 < n_keys; j0 += kBc) {
    __syncthreads();  // the previous tile has been used (and qs written, on the first pass)
    stage_rows(kt, int(HD + 1), k_rows, ldkv, j0, kBc, n_keys, HD, 1.0f);
    stage_rows(vt, int(HD), v_rows, ldkv, j0, kBc, n_keys, HD, 1.0f);
    __syncthreads();
    if (t >= s.T) continue;
    const int nv = visible_keys(s, t, j0);
    // Every row sees key 0, so after the first tile m is finite, and a tile with no visible
    // key leaves m, l and O unchanged.
    if (nv == 0) continue;
    float score = -INFINITY;
    if (lane < nv) {
      score = 0.0f;
      for (int64_t d = 0; d < HD; ++d) score += qs[warp * HD + d] * kt[lane * (HD + 1) + d];
    }
    const float mx = fmaxf(m, warp_max(score));
    const float alpha = expf(m - mx);  // rescales the old sum and O; 0 on tile 0
    const float p = lane < nv ? expf(score - mx) : 0.0f;
    l = l * alpha + warp_sum(p);
    m = mx;
    // O = diag(alpha) O + P v
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) o[i] *= alpha;
    for (int c = 0; c < nv; ++c) {
      const float pc = __shfl_sync(kFullMask, p, c);
#pragma unroll
      for (int i = 0; i < kPerLane; ++i)
        if (lane + 32 * i < HD) o[i] += pc * vt[c * HD + lane + 32 * i];
    }
  }
  if (t >= s.T) return;
  float* out_row = out + ((b * s.T + t) * s.NH + h) * HD;
  const float inv_l = 1.0f / l;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i)
    if (lane + 32 * i < HD) out_row[lane + 32 * i] = o[i] * inv_l;
  if (lane == 0) lse[(b * s.NH + h) * s.T + t] = m + logf(l);
}

// ---- backward ----------------------------------------------------------------------------

// D (B, NH, T) = rowsum(dout ∘ out): equals rowsum(P ∘ dP), the softmax-backward term.
// One warp per (b, t, h) row.
__global__ void attention_rowdot_kernel(float* D, const float* dout, const float* out, Shape s) {
  const int lane = threadIdx.x % 32;
  const int64_t rows = s.B * s.T * s.NH;
  for (int64_t row = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32; row < rows;
       row += int64_t(gridDim.x) * kWarps) {
    float acc = 0.0f;
    for (int64_t d = lane; d < s.HD; d += 32) acc += dout[row * s.HD + d] * out[row * s.HD + d];
    acc = warp_sum(acc);
    const int64_t h = row % s.NH, bt = row / s.NH, b = bt / s.T, t = bt % s.T;
    if (lane == 0) D[(b * s.NH + h) * s.T + t] = acc;
  }
}

// dq: grid (ceil(T / kWarps), NH, B), one warp per query row. Shared: qs, dos (kWarps, HD)
// the block's q and dout rows; kt, vt (kBc, HD + 1) a key and value tile.
// dq (row) += sum over visible keys j of dS_j k_j.
__global__ void attention_backward_dq_kernel(float* dq, const float* dout, const float* q, const float* k,
                                             const float* v, const float* lse, const float* D, Shape s) {
  SLLM_DYNAMIC_SHARED(float, smem);
  const int64_t HD = s.HD, ldq = s.NH * HD, ldkv = s.NKV * HD;
  float* qs = smem;                  // (kWarps, HD)
  float* dos = qs + kWarps * HD;     // (kWarps, HD)
  float* kt = dos + kWarps * HD;     // (kBc, HD + 1)
  float* vt = kt + kBc * (HD + 1);   // (kBc, HD + 1)
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t b = blockIdx.z, h = blockIdx.y, i0 = int64_t(blockIdx.x) * kWarps, t = i0 + warp;
  const int64_t g = h / (s.NH / s.NKV);
  const float* k_rows = k + (b * s.Tk * s.NKV + g) * HD;
  const float* v_rows = v + (b * s.Tk * s.NKV + g) * HD;
  stage_rows(qs, int(HD), q + (b * s.T * s.NH + h) * HD, ldq, i0, kWarps, s.T, HD, 1.0f);
  stage_rows(dos, int(HD), dout + (b * s.T * s.NH + h) * HD, ldq, i0, kWarps, s.T, HD, 1.0f);
  const float lse_t = t < s.T ? lse[(b * s.NH + h) * s.T + t] : 0.0f;
  const float D_t = t < s.T ? D[(b * s.NH + h) * s.T + t] : 0.0f;

  float acc[kPerLane] = {};
  const int64_t n_keys = s.q_offset + min(s.T, i0 + kWarps);
  for (int64_t j0 = 0; j0 < n_keys; j0 += kBc) {
    __syncthreads();
    stage_rows(kt, int(HD + 1), k_rows, ldkv, j0, kBc, n_keys, HD, 1.0f);
    stage_rows(vt, int(HD + 1), v_rows, ldkv, j0, kBc, n_keys, HD, 1.0f);
    __syncthreads();
    if (t >= s.T) continue;
    const int nv = visible_keys(s, t, j0);
    if (nv == 0) continue;
    // P = exp(scale * q k - lse), dP = dout v, dS = scale * P (dP - D) for key j0 + lane.
    float ds = 0.0f;
    if (lane < nv) {
      float qk = 0.0f, dp = 0.0f;
      for (int64_t d = 0; d < HD; ++d) {
        qk += qs[warp * HD + d] * kt[lane * (HD + 1) + d];
        dp += dos[warp * HD + d] * vt[lane * (HD + 1) + d];
      }
      const float p = expf(s.scale * qk - lse_t);
      ds = s.scale * p * (dp - D_t);
    }
    for (int c = 0; c < nv; ++c) {
      const float dsc = __shfl_sync(kFullMask, ds, c);
#pragma unroll
      for (int i = 0; i < kPerLane; ++i)
        if (lane + 32 * i < HD) acc[i] += dsc * kt[c * (HD + 1) + lane + 32 * i];
    }
  }
  if (t >= s.T) return;
  float* dq_row = dq + ((b * s.T + t) * s.NH + h) * HD;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i)
    if (lane + 32 * i < HD) dq_row[lane + 32 * i] += acc[i];
}

// dk, dv: grid (ceil((q_offset + T) / kWarps), NKV, B), one warp per key row j of kv head g.
// It walks the G query heads of the group and, in tiles of kBc, the query rows that see key
// j (t >= j - q_offset); lane r takes query row i0 + r. Shared: ks, vs (kWarps, HD) the
// block's key and value rows; qt, dot (kBc, HD + 1) a query and dout tile; lse_s, D_s (kBc).
// dv (j) += sum over t of P_tj dout_t;  dk (j) += sum over t of dS_tj q_t.
__global__ void attention_backward_dkdv_kernel(float* dk, float* dv, const float* dout, const float* q,
                                               const float* k, const float* v, const float* lse, const float* D,
                                               Shape s) {
  SLLM_DYNAMIC_SHARED(float, smem);
  const int64_t HD = s.HD, ldq = s.NH * HD, ldkv = s.NKV * HD, G = s.NH / s.NKV;
  float* ks = smem;                  // (kWarps, HD)
  float* vs = ks + kWarps * HD;      // (kWarps, HD)
  float* qt = vs + kWarps * HD;      // (kBc, HD + 1)
  float* dot = qt + kBc * (HD + 1);  // (kBc, HD + 1)
  float* lse_s = dot + kBc * (HD + 1);  // (kBc)
  float* D_s = lse_s + kBc;             // (kBc)
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t b = blockIdx.z, g = blockIdx.y, j0 = int64_t(blockIdx.x) * kWarps, j = j0 + warp;
  const int64_t n_keys = s.q_offset + s.T;  // keys no query row sees get no gradient
  stage_rows(ks, int(HD), k + (b * s.Tk * s.NKV + g) * HD, ldkv, j0, kWarps, n_keys, HD, 1.0f);
  stage_rows(vs, int(HD), v + (b * s.Tk * s.NKV + g) * HD, ldkv, j0, kWarps, n_keys, HD, 1.0f);

  float dk_acc[kPerLane] = {}, dv_acc[kPerLane] = {};
  const int64_t t_first = max(int64_t(0), j0 - s.q_offset);  // first row seeing key j0
  for (int64_t hg = 0; hg < G; ++hg) {
    const int64_t h = g * G + hg;
    for (int64_t i0 = t_first; i0 < s.T; i0 += kBc) {
      __syncthreads();
      stage_rows(qt, int(HD + 1), q + (b * s.T * s.NH + h) * HD, ldq, i0, kBc, s.T, HD, 1.0f);
      stage_rows(dot, int(HD + 1), dout + (b * s.T * s.NH + h) * HD, ldq, i0, kBc, s.T, HD, 1.0f);
      if (threadIdx.x < kBc) {
        const int64_t t = i0 + threadIdx.x;
        lse_s[threadIdx.x] = t < s.T ? lse[(b * s.NH + h) * s.T + t] : 0.0f;
        D_s[threadIdx.x] = t < s.T ? D[(b * s.NH + h) * s.T + t] : 0.0f;
      }
      __syncthreads();
      if (j >= n_keys) continue;
      const int64_t t = i0 + lane;
      const bool visible = t < s.T && j <= s.q_offset + t;
      float p = 0.0f, ds = 0.0f;
      if (visible) {
        float qk = 0.0f, dp = 0.0f;
        for (int64_t d = 0; d < HD; ++d) {
          qk += qt[lane * (HD + 1) + d] * ks[warp * HD + d];
          dp += dot[lane * (HD + 1) + d] * vs[warp * HD + d];
        }
        p = expf(s.scale * qk - lse_s[lane]);
        ds = s.scale * p * (dp - D_s[lane]);
      }
      const int rows = int(min(int64_t(kBc), s.T - i0));
      for (int r = 0; r < rows; ++r) {
        const float pr = __shfl_sync(kFullMask, p, r), dsr = __shfl_sync(kFullMask, ds, r);
#pragma unroll
        for (int i = 0; i < kPerLane; ++i)
          if (lane + 32 * i < HD) {
            dv_acc[i] += pr * dot[r * (HD + 1) + lane + 32 * i];
            dk_acc[i] += dsr * qt[r * (HD + 1) + lane + 32 * i];
          }
      }
    }
  }
  if (j >= n_keys) return;
  const int64_t at = ((b * s.Tk + j) * s.NKV + g) * HD;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i)
    if (lane + 32 * i < HD) {
      if (dk) dk[at + lane + 32 * i] += dk_acc[i];
      if (dv) dv[at + lane + 32 * i] += dv_acc[i];
    }
}

// ---- launchers ----------------------------------------------------------------------------

size_t forward_smem(int64_t HD) { return sizeof(float) * size_t(kWarps * HD + kBc * (HD + 1) + kBc * HD); }
size_t dq_smem(int64_t HD) { return sizeof(float) * size_t(2 * kWarps * HD + 2 * kBc * (HD + 1)); }
size_t dkdv_smem(int64_t HD) { return sizeof(float) * size_t(2 * kWarps * HD + 2 * kBc * (HD + 1) + 2 * kBc); }

void check_attention_shape(int64_t B, int64_t T, int64_t Tk, int64_t NH, int64_t NKV, int64_t HD,
                           int64_t q_offset) {
  SLLM_CHECK(B >= 0 && T >= 0 && NH > 0 && NKV > 0 && HD > 0,
             str("attention: bad sizes B=", B, " T=", T, " NH=", NH, " NKV=", NKV, " HD=", HD),
             "batch and time must be >= 0, heads and head dim > 0");
  SLLM_CHECK(NH % NKV == 0, str("attention: NH=", NH, " is not a multiple of NKV=", NKV),
             "grouped-query attention needs num_attention_heads % num_key_value_heads == 0");
  SLLM_CHECK(q_offset >= 0 && q_offset + T <= Tk,
             str("attention: queries at positions [", q_offset, ", ", q_offset + T, ") but only Tk=", Tk, " keys"),
             "the KV cache must hold every position up to the last query (q_offset + T <= Tk)");
  SLLM_CHECK(HD <= kMaxHD, str("attention (CUDA): head dim ", HD, " > ", kMaxHD),
             "the CUDA attention kernel supports head dims up to 128; use the CPU device for larger heads");
  SLLM_CHECK(B <= 65535 && NH <= 65535, str("attention (CUDA): B=", B, " or NH=", NH, " above 65535"),
             "split the batch");
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, int64_t B, int64_t T,
                       int64_t Tk, int64_t NH, int64_t NKV, int64_t HD, int64_t q_offset, float scale) {
  check_attention_shape(B, T, Tk, NH, NKV, HD, q_offset);
  if (B == 0 || T == 0) return;
  const Shape s{B, T, Tk, NH, NKV, HD, q_offset, scale};
  const dim3 grid(unsigned((T + kWarps - 1) / kWarps), unsigned(NH), unsigned(B));
  SLLM_LAUNCH(grid, kThreads, forward_smem(HD), attention_forward_kernel)(out, lse, q, k, v, s);
  SLLM_CUDA_CHECK_LAUNCH();
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, int64_t B, int64_t T, int64_t Tk,
                        int64_t NH, int64_t NKV, int64_t HD, int64_t q_offset, float scale) {
  check_attention_shape(B, T, Tk, NH, NKV, HD, q_offset);
  if ((!dq && !dk && !dv) || B == 0 || T == 0) return;
  const Shape s{B, T, Tk, NH, NKV, HD, q_offset, scale};
  Scratch<float> D{size_t(B * NH * T)};  // (B, NH, T)
  SLLM_LAUNCH(grid_for(B * T * NH * 32), kThreads, 0, attention_rowdot_kernel)(D.get(), dout, out, s);
  SLLM_CUDA_CHECK_LAUNCH();
  if (dq) {
    const dim3 grid(unsigned((T + kWarps - 1) / kWarps), unsigned(NH), unsigned(B));
    SLLM_LAUNCH(grid, kThreads, dq_smem(HD), attention_backward_dq_kernel)(dq, dout, q, k, v, lse, D.get(), s);
    SLLM_CUDA_CHECK_LAUNCH();
  }
  if (dk || dv) {
    const dim3 grid(unsigned((q_offset + T + kWarps - 1) / kWarps), unsigned(NKV), unsigned(B));
    SLLM_LAUNCH(grid, kThreads, dkdv_smem(HD), attention_backward_dkdv_kernel)(dk, dv, dout, q, k, v, lse,
                                                                                D.get(), s);
    SLLM_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace sllm::kernels::cuda
