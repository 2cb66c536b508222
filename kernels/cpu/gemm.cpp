// SGEMM: C = alpha * op(A) * op(B) + beta * C, row-major float32 (contract: kernels/kernels.h).
// Dimension legend: M rows of C, N columns of C, K the reduction; MR x NR register tile,
// KC / MC / NC the cache blocks (gemm_internal.h explains the GotoBLAS / BLIS scheme).
//
// This file is the driver: argument checks, ISA choice, the cache-blocking loops, and the
// split of the work over OpenMP threads; the micro-kernels and packing routines live in
// gemm_avx512.cpp, gemm_avx2.cpp and gemm_scalar.cpp. Skinny products (M <= 4, e.g. one
// token at a time in inference) skip packing when the ISA offers a skinny path.
//
// Determinism: threads split C into disjoint tiles (over M and N), never K. Every C element
// is reduced by one thread, over the same KC slices in the same order, whatever the thread
// count, so results are bitwise identical for any number of threads.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/gemm_internal.h"
#include "kernels/kernels.h"

namespace sllm::kernels {

// The count of live RowInvariantGemm guards on this thread (they may nest). The sgemm callers
// that matter (ops, generation) run on the calling thread; OpenMP workers inside sgemm never
// consult it.
static thread_local int row_invariant_depth = 0;
RowInvariantGemm::RowInvariantGemm() { ++row_invariant_depth; }
RowInvariantGemm::~RowInvariantGemm() { --row_invariant_depth; }
bool RowInvariantGemm::active() { return row_invariant_depth > 0; }

namespace gemm_detail {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Below this many flops (2*M*N*K) one thread is faster than waking the team (~ 10 us).
constexpr int64_t kParallelMinFlops = int64_t(1) << 21;

// A 64-byte aligned scratch buffer that only grows, one per thread (thread_local), so
// repeated GEMMs neither allocate nor page-fault their packing buffers again.
class PackBuffer {
 public:
  ~PackBuffer() { std::free(data_); }
  float* get(int64_t floats) {
    if (floats > capacity_) {
      std::free(data_);
      const size_t bytes = (size_t(floats) * sizeof(float) + 63) / 64 * 64;
      data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      SLLM_ASSERT(data_ != nullptr);
      capacity_ = floats;
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  int64_t capacity_ = 0;
};

thread_local PackBuffer tl_pack_a;  // each thread's op(A) block (MC x KC, stays in L3)
thread_local PackBuffer tl_pack_b;  // each thread's op(B) block (KC x NC, stays in L2)

// C = beta * C (beta == 0 overwrites, so NaNs in C do not survive): the whole GEMM when
// K == 0 or alpha == 0.
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;  // (N)
    if (beta == 0.0f) {
      std::fill(c, c + N, 0.0f);
    } else {
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
    }
  }
}

// How at most `threads` threads tile C: tm x tn threads over (M panels, N panels). Each
// thread packs the op(A) rows and op(B) columns of its own tile, so the cost of a split is
// its largest tile's flops plus its packing: per unit of K, tile_m * tile_n * 2 flops at
// ~64 flops/cycle against (tile_m + tile_n) floats packed at ~4 floats/cycle, i.e.
// tile_m * tile_n + 8 * (tile_m + tile_n). Ties go to splitting N (A rows are read once).
struct Grid {
  int tm = 1, tn = 1;
};
Grid choose_grid(int threads, int64_t m_panels, int64_t n_panels, int MR, int NR) {
  Grid best;
  int64_t best_cost = -1;
  for (int tn = int(std::min<int64_t>(threads, n_panels)); tn >= 1; --tn) {
    const int tm = int(std::min<int64_t>(threads / tn, m_panels));
    const int64_t tile_m = ceil_div(m_panels, tm) * MR, tile_n = ceil_div(n_panels, tn) * NR;
    const int64_t cost = tile_m * tile_n + 8 * (tile_m + tile_n);
    if (best_cost < 0 || cost < best_cost) {
      best_cost = cost;
      best = {tm, tn};
    }
  }
  return best;
}

// The cache blocks of a thread's (rows x cols) tile: K slices, row blocks and column
// chunks of near-equal size (K = 1000 gives 3 x 334, not 384 + 384 + 232), rounded up to
// whole micro-panels. Its pack buffers hold mc x kc and nc x kc floats.
struct TileBlocks {
  int64_t kc, mc, nc;
};
TileBlocks tile_blocks(const Isa& isa, int64_t rows, int64_t cols, int64_t K) {
  return {ceil_div(K, ceil_div(K, isa.KC)), ceil_div(ceil_div(rows, ceil_div(rows, isa.MC)), isa.MR) * isa.MR,
          ceil_div(ceil_div(cols, ceil_div(cols, isa.NC)), isa.NR) * isa.NR};
}

// C[0:mc, 0:nc] (+)= alpha * packed A (mc rows) . packed B (nc columns) over one K slice of
// kc, one micro-kernel call per MR x NR tile. Each A micro-panel stays in L1 while the B
// micro-panels stream past it from L2.
void sweep_micro_tiles(const Isa& isa, int64_t kc, int64_t mc, int64_t nc, const float* Ap, const float* Bp,
                       float* C, int64_t ldc, float alpha, float beta) {
  const int MR = isa.MR, NR = isa.NR;
  for (int64_t p = 0; p < mc; p += MR) {
    const int mr = int(std::min<int64_t>(MR, mc - p));
    for (int64_t q = 0; q < nc; q += NR) {
      const int nr = int(std::min<int64_t>(NR, nc - q));
      isa.kernel(kc, Ap + p * kc, Bp + q * kc, C + p * ldc + q, ldc, mr, nr, alpha, beta);
    }
  }
}

// One thread's share of the blocked GEMM: C[i0:i1, j0:j1] (i0 a multiple of MR, j0 of NR).
// Packs its own op(A) rows and op(B) columns, so threads never wait for each other.
void sgemm_tile(const Isa& isa, bool trans_a, bool trans_b, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                float* C, int64_t ldc) {
  const int MR = isa.MR, NR = isa.NR;
  const TileBlocks t = tile_blocks(isa, i1 - i0, j1 - j0, K);
  const int64_t kc_max = t.kc, mc_max = t.mc, nc_max = t.nc;
  float* Ap = tl_pack_a.get(mc_max * kc_max);  // (mc_max / MR panels, kc, MR)
  float* Bp = tl_pack_b.get(nc_max * kc_max);  // (nc_max / NR panels, kc, NR)

  for (int64_t ic = i0; ic < i1; ic += mc_max) {
    const int64_t mc = std::min(mc_max, i1 - ic);
    for (int64_t pc = 0; pc < K; pc += kc_max) {
      const int64_t kc = std::min(kc_max, K - pc);
      const float beta_k = pc == 0 ? beta : 1.0f;  // later K slices accumulate onto the first
      isa.pack(trans_a, A, lda, ic, mc, pc, kc, MR, Ap);
      for (int64_t jc = j0; jc < j1; jc += nc_max) {
        const int64_t nc = std::min(nc_max, j1 - jc);
        // op(B)[k][j] is row j of op(B)ᵀ, so B packs like A with the opposite trans flag.
        isa.pack(!trans_b, B, ldb, jc, nc, pc, kc, NR, Bp);
        sweep_micro_tiles(isa, kc, mc, nc, Ap, Bp, C + ic * ldc + jc, ldc, alpha, beta_k);
      }
    }
  }
}

// Several threads on a product with enough rows: the GotoBLAS/BLIS loop nest with op(B)'s
// packed block shared by the whole team (Smith et al., "Anatomy of High-Performance
// Many-Threaded Matrix Multiplication", IPDPS 2014: parallelize the loop over row blocks, ic,
// around one shared KC x NC block of B). For each (jc, pc) block every thread packs a share
// of B's column panels, then the threads take row tasks one at a time (schedule(dynamic)),
// each packing its own rows of A: nothing is packed twice, where per-thread tiles packed A
// or B once per tile, and a thread slowed by another process on its core takes fewer row
// tasks instead of holding the others up. Every C element is summed over the same K slices
// (tile_blocks' kc depends on K alone) in the same order as with one thread: bitwise equal.
struct RowTasks {
  int64_t rows, count;  // rows per task (whole micro-panels), number of tasks
};
constexpr int kRowTasksPerThread = 4;
RowTasks row_tasks(const Isa& isa, int64_t M, int threads) {
  const int64_t m_panels = ceil_div(M, isa.MR);
  const int64_t rows = ceil_div(m_panels, int64_t(threads) * kRowTasksPerThread) * isa.MR;
  return {rows, ceil_div(M, rows)};
}
// Shared packing needs a few row tasks per thread; thinner products split N instead. It is
// kept to products whose columns fit one NC block: across several (GPT-2's LM head, N =
// 50257) it ran 5% behind per-thread column tiles on Zen 3, each thread then streaming its
// own columns' B panels from its own L2 rather than panels packed on the other core.
bool use_shared_b(const Isa& isa, int64_t M, int64_t N, int threads) {
  return threads > 1 && N <= isa.NC && ceil_div(M, isa.MR) >= int64_t(2) * kRowTasksPerThread * threads;
}

void sgemm_shared_b(const Isa& isa, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                    int threads) {
  const int MR = isa.MR, NR = isa.NR;
  const RowTasks rt = row_tasks(isa, M, threads);
  const TileBlocks t = tile_blocks(isa, rt.rows, N, K);
  float* Bp = tl_pack_b.get(t.nc * t.kc);  // the calling thread's buffer, shared by the team: (nc / NR, kc, NR)
#pragma omp parallel num_threads(threads)
  {
    const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
    float* Ap = tl_pack_a.get(rt.rows * t.kc);  // this thread's rows of A: (rows / MR, kc, MR)
    for (int64_t jc = 0; jc < N; jc += t.nc) {
      const int64_t nc = std::min(t.nc, N - jc), panels = ceil_div(nc, int64_t(NR));
      for (int64_t pc = 0; pc < K; pc += t.kc) {
        const int64_t kc = std::min(t.kc, K - pc);
        const float beta_k = pc == 0 ? beta : 1.0f;  // later K slices accumulate onto the first
        const int64_t q0 = panels * tid / nt, q1 = panels * (tid + 1) / nt;  // this thread's B panels
        if (q0 < q1) isa.pack(!trans_b, B, ldb, jc + q0 * NR, std::min(q1 * NR, nc) - q0 * NR, pc, kc, NR, Bp + q0 * NR * kc);
#pragma omp barrier
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < rt.count; ++task) {
          const int64_t i0 = task * rt.rows, mc = std::min(rt.rows, M - i0);
          isa.pack(trans_a, A, lda, i0, mc, pc, kc, MR, Ap);
          sweep_micro_tiles(isa, kc, mc, nc, Ap, Bp, C + i0 * ldc + jc, ldc, alpha, beta_k);
        }  // the implicit barrier: B's block is repacked only when every row task is done
      }
    }
  }
}

// Otherwise (few rows), with several threads, C is cut into kTasksPerThread tiles per thread,
// handed out one at a time (schedule(dynamic)): when another process takes a core from one of our threads, the
// others take its share instead of waiting for it (a fixed half per thread made 2 threads
// barely faster than 1 on a 2-core machine with one core busy). The smaller tiles repack
// more of A and B (each tile packs its own rows and columns): on a quiet Zen 3, 2-thread
// GEMMs of C = 768 layers lost 2-4% with 2 tiles per thread and 4-8% with 3. Each C element
// is still computed by exactly one tile, in the same order, whichever thread runs it:
// results stay bitwise identical for any thread count.
constexpr int kTasksPerThread = 2;

// The tile grid for `threads` threads: kTasksPerThread tiles each, one tile for one thread.
Grid task_grid(int threads, int64_t m_panels, int64_t n_panels, int MR, int NR) {
  return choose_grid(threads > 1 ? threads * kTasksPerThread : 1, m_panels, n_panels, MR, NR);
}

// The blocked GEMM on up to `threads` threads (alpha != 0, K > 0, M, N > 0).
void sgemm_blocked(const Isa& isa, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                   int64_t ldc, int threads) {
  const int MR = isa.MR, NR = isa.NR;
  const int64_t m_panels = ceil_div(M, MR), n_panels = ceil_div(N, NR);
  if (use_shared_b(isa, M, N, threads)) {
    sgemm_shared_b(isa, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads);
    return;
  }
  const Grid grid = task_grid(threads, m_panels, n_panels, MR, NR);
  const int tasks = grid.tm * grid.tn;
  const int team = std::min(threads, tasks);  // ask only for useful threads
#pragma omp parallel for schedule(dynamic, 1) num_threads(team) if (team > 1)
  for (int task = 0; task < tasks; ++task) {
    const int tm = task / grid.tn, tn = task % grid.tn;
    const int64_t i0 = m_panels * tm / grid.tm * MR, i1 = std::min(m_panels * (tm + 1) / grid.tm * MR, M);
    const int64_t j0 = n_panels * tn / grid.tn * NR, j1 = std::min(n_panels * (tn + 1) / grid.tn * NR, N);
    if (i0 < i1 && j0 < j1) sgemm_tile(isa, trans_a, trans_b, i0, i1, j0, j1, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}

// The skinny path (M <= isa.skinny_max_m): threads take contiguous column ranges.
void sgemm_skinny(const Isa& isa, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
                  int threads) {
  const int64_t chunks = ceil_div(N, isa.skinny_cols);
  const int team = int(std::min<int64_t>(threads, chunks));
#pragma omp parallel num_threads(team) if (team > 1)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t j0 = chunks * t / nt * isa.skinny_cols;
    const int64_t j1 = std::min(chunks * (t + 1) / nt * isa.skinny_cols, N);
    if (j0 < j1) isa.skinny(trans_a, trans_b, M, j0, j1, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}

bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
}

bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

void check_args(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                const float* B, int64_t ldb, const float* C, int64_t ldc) {
  SLLM_CHECK(M >= 0 && N >= 0 && K >= 0, str("sgemm: negative size M=", M, " N=", N, " K=", K),
             "sizes must be >= 0");
  const int64_t a_cols = trans_a ? M : K, b_cols = trans_b ? K : N;
  SLLM_CHECK(lda >= a_cols, str("sgemm: lda=", lda, " < ", a_cols),
             "lda is the row stride of A as stored: >= K (or >= M when trans_a)");
  SLLM_CHECK(ldb >= b_cols, str("sgemm: ldb=", ldb, " < ", b_cols),
             "ldb is the row stride of B as stored: >= N (or >= K when trans_b)");
  SLLM_CHECK(ldc >= N, str("sgemm: ldc=", ldc, " < N=", N), "ldc is the row stride of C");
  SLLM_CHECK(M * N == 0 || C != nullptr, "sgemm: C is null", "pass an (M, N) output buffer");
  SLLM_CHECK(M * N * K == 0 || (A != nullptr && B != nullptr), "sgemm: A or B is null",
             "pass the input buffers");
}

}  // namespace

bool isa_supported(const Isa& isa) {
  if (&isa == &kIsaAvx512) return cpu_has_avx512();
  if (&isa == &kIsaAvx2) return cpu_has_avx2();
  return true;
}

const Isa& best_isa() {
  static const Isa& chosen = cpu_has_avx512() ? kIsaAvx512 : cpu_has_avx2() ? kIsaAvx2 : kIsaScalar;
  return chosen;
}

void sgemm_with_isa(const Isa& isa, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                    int64_t ldc) {
  check_args(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.0f) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  // Inside an outer parallel region (e.g. sgemm_batched's) each GEMM runs on its thread.
  int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (2 * M * N * K < kParallelMinFlops) threads = 1;
  if (isa.skinny != nullptr && M <= isa.skinny_max_m && !RowInvariantGemm::active()) {
    sgemm_skinny(isa, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads);
    return;
  }
  sgemm_blocked(isa, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads);
}

}  // namespace gemm_detail

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_detail::sgemm_with_isa(gemm_detail::best_isa(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C,
                              ldc);
}

const char* sgemm_isa() { return gemm_detail::best_isa().name; }

GemmPackFloats sgemm_pack_floats(int64_t M, int64_t N, int64_t K, int threads) {
  using namespace gemm_detail;
  const Isa& isa = best_isa();
  GemmPackFloats out;
  // sgemm_with_isa's dispatch: nothing packed for an empty product or the skinny path.
  if (M <= 0 || N <= 0 || K <= 0 || (isa.skinny != nullptr && M <= isa.skinny_max_m && !RowInvariantGemm::active()))
    return out;
  if (2 * M * N * K < kParallelMinFlops) threads = 1;
  if (use_shared_b(isa, M, N, threads)) {  // sgemm_shared_b: a row task of A, the team's one block of B
    const RowTasks rt = row_tasks(isa, M, threads);
    const TileBlocks t = tile_blocks(isa, rt.rows, N, K);
    out.a = rt.rows * t.kc;
    out.b = t.nc * t.kc;
    return out;
  }
  const int64_t m_panels = ceil_div(M, isa.MR), n_panels = ceil_div(N, isa.NR);
  const Grid grid = task_grid(std::max(threads, 1), m_panels, n_panels, isa.MR, isa.NR);
  // sgemm_blocked's split: the first tile of each direction is the largest.
  const int64_t rows = std::min(ceil_div(m_panels, grid.tm) * isa.MR, M), cols = std::min(ceil_div(n_panels, grid.tn) * isa.NR, N);
  const TileBlocks t = tile_blocks(isa, rows, cols, K);
  out.a = t.mc * t.kc;
  out.b = t.nc * t.kc;
  return out;
}

void sgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                   float beta, float* C, int64_t ldc, int64_t stride_c) {
  SLLM_CHECK(batch >= 0, str("sgemm_batched: batch=", batch), "batch must be >= 0");
  // Small problems: one whole GEMM per thread (each GEMM's result does not depend on the
  // thread count, so this split is as deterministic as the inner one).
  const bool per_thread = batch > 1 && 2 * M * N * K < (int64_t(1) << 24) && !omp_in_parallel();
#pragma omp parallel for schedule(static) if (per_thread)
  for (int64_t b = 0; b < batch; ++b) {
    sgemm(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta, C + b * stride_c,
          ldc);
  }
}

// The reference: the definition, one output at a time, summed in double.
void sgemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_detail::check_args(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double sum = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const double a = trans_a ? A[k * lda + i] : A[i * lda + k];
        const double b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        sum += a * b;
      }
      double c = double(alpha) * sum;
      if (beta != 0.0f) c += double(beta) * C[i * ldc + j];
      C[i * ldc + j] = float(c);
    }
  }
}

}  // namespace sllm::kernels
