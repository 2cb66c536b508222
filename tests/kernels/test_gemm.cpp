// SGEMM (kernels/cpu/gemm*.cpp) against the double-precision reference sgemm_ref, on every
// SIMD path this CPU can run, all four trans combinations, awkward sizes (edge tiles in M,
// N and K; K crossing cache-block boundaries), alpha/beta variants, strided operands, the
// batched form, the thread split, and bitwise determinism.
//
// Tolerance: a dot product of length K computed in float with any summation order obeys
// |fl(x.y) - x.y| <= gamma_K * sum_k |x_k||y_k|, gamma_K = K*u / (1 - K*u), u = 2^-24
// (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., eq. 3.5). The alpha
// scale and the beta update add two roundings, so each element must satisfy
//   |C - C_ref| <= (K + 3) * u * (|alpha| * sum_k |a_ik||b_kj| + |beta| * |C0_ij|) + 1e-30
// (+1e-30 for all-zero scales). This is a bound, not a guess, so it cannot flake, and it is
// tight enough to catch a dropped or doubled k term (an error near scale / K).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/gemm_internal.h"
#include "kernels/kernels.h"

namespace sllm::kernels {
namespace {

using gemm_detail::Isa;

std::vector<float> random_vector(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(size_t(n > 0 ? n : 0));
  for (auto& x : v) x = dist(rng);
  return v;
}

// Floats after the end of C that must stay untouched (catches stray writes past the last row).
constexpr int64_t kGuard = 64;

// Stored operands of one problem: A is (M, K) or (K, M) when trans_a, with row stride lda
// >= its columns; likewise B; C is (M, ldc) + kGuard. Padding holds random values that must
// not matter (inputs) or not change (C).
struct Problem {
  bool trans_a = false, trans_b = false;
  int64_t M = 0, N = 0, K = 0, lda = 0, ldb = 0, ldc = 0;
  float alpha = 1.0f, beta = 0.0f;
  std::vector<float> A, B, C0;

  Problem(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float al, float be, int64_t pad, uint32_t seed)
      : trans_a(ta), trans_b(tb), M(m), N(n), K(k), alpha(al), beta(be) {
    lda = (ta ? M : K) + pad;
    ldb = (tb ? K : N) + pad;
    ldc = N + pad;
    A = random_vector((ta ? K : M) * lda, seed);
    B = random_vector((tb ? N : K) * ldb, seed + 1);
    C0 = random_vector(M * ldc + kGuard, seed + 2);
  }
  float a(int64_t i, int64_t k) const { return trans_a ? A[k * lda + i] : A[i * lda + k]; }
  float b(int64_t k, int64_t j) const { return trans_b ? B[j * ldb + k] : B[k * ldb + j]; }
};

// Checks C against the reference element by element with the error bound above, and that
// the padding columns of C (j >= N) and the guard floats after C are untouched.
void expect_close(const Problem& p, const std::vector<float>& C, const std::vector<float>& C_ref,
                  const std::string& label) {
  const double u = std::ldexp(1.0, -24);
  int64_t bad = 0;
  for (int64_t i = 0; i < p.M; ++i) {
    for (int64_t j = 0; j < p.ldc; ++j) {
      const int64_t at = i * p.ldc + j;
      if (j >= p.N) {
        if (std::memcmp(&C[at], &p.C0[at], sizeof(float)) != 0 && bad++ < 5)
          ADD_FAILURE() << label << ": padding C[" << i << "][" << j << "] was written";
        continue;
      }
      double scale = 0.0;
      for (int64_t k = 0; k < p.K; ++k) scale += std::fabs(double(p.a(i, k)) * p.b(k, j));
      scale = std::fabs(p.alpha) * scale + (p.beta != 0.0f ? std::fabs(p.beta * p.C0[at]) : 0.0);
      const double tol = double(p.K + 3) * u * scale + 1e-30;
      const double err = std::fabs(double(C[at]) - double(C_ref[at]));
      if (!(err <= tol) && bad++ < 5)
        ADD_FAILURE() << label << ": C[" << i << "][" << j << "] = " << C[at] << ", reference " << C_ref[at]
                      << ", |err| " << err << " > tol " << tol;
    }
  }
  for (int64_t at = p.M * p.ldc; at < int64_t(C.size()); ++at)
    if (std::memcmp(&C[at], &p.C0[at], sizeof(float)) != 0 && bad++ < 5)
      ADD_FAILURE() << label << ": wrote past the end of C, at guard float " << at - p.M * p.ldc;
  EXPECT_EQ(bad, 0) << label;
}

std::string describe(const Isa& isa, const Problem& p) {
  return str(isa.name, " ", p.trans_a ? "T" : "N", p.trans_b ? "T" : "N", " M=", p.M, " N=", p.N, " K=", p.K,
             " alpha=", p.alpha, " beta=", p.beta, " pad=", p.ldc - p.N);
}

// Runs one problem on one ISA and against the reference. With beta == 0 the output starts
// as NaN: a write-only C must not propagate it.
void check(const Isa& isa, const Problem& p) {
  std::vector<float> C = p.C0, C_ref = p.C0;
  if (p.beta == 0.0f) {
    for (int64_t i = 0; i < p.M; ++i)
      for (int64_t j = 0; j < p.N; ++j) C[i * p.ldc + j] = std::numeric_limits<float>::quiet_NaN();
  }
  gemm_detail::sgemm_with_isa(isa, p.trans_a, p.trans_b, p.M, p.N, p.K, p.alpha, p.A.data(), p.lda, p.B.data(),
                              p.ldb, p.beta, C.data(), p.ldc);
  sgemm_ref(p.trans_a, p.trans_b, p.M, p.N, p.K, p.alpha, p.A.data(), p.lda, p.B.data(), p.ldb, p.beta,
            C_ref.data(), p.ldc);
  expect_close(p, C, C_ref, describe(isa, p));
}

std::vector<const Isa*> runnable_isas() {
  std::vector<const Isa*> out;
  for (const Isa* isa : {&gemm_detail::kIsaAvx512, &gemm_detail::kIsaAvx2, &gemm_detail::kIsaScalar})
    if (gemm_detail::isa_supported(*isa)) out.push_back(isa);
  return out;
}

struct Shape {
  int64_t M, N, K;
};

// Sizes around every tile and block edge: 1, primes, MR/NR +- 1 for each ISA (14/32,
// 6/16, 4/8), K past the KC slices (256, 384) so several slices accumulate.
// M <= 4 (1, 2, 3, 4 rows) takes the skinny path where the ISA has one.
const Shape kShapes[] = {{1, 1, 1},     {1, 7, 33},    {7, 1, 5},     {13, 33, 2},  {15, 31, 17},
                         {33, 257, 7},  {29, 65, 129}, {257, 33, 70}, {6, 17, 800}, {45, 47, 385},
                         {2, 131, 37},  {3, 70, 300},  {4, 5, 19},    {1, 300, 17}};

TEST(Gemm, MatchesReferenceAllLayoutsAndIsas) {
  uint32_t seed = 1;
  for (const Isa* isa : runnable_isas())
    for (const Shape& s : kShapes)
      for (int layout = 0; layout < 4; ++layout)
        check(*isa, Problem(layout & 1, layout & 2, s.M, s.N, s.K, 1.0f, 0.0f, 0, seed++));
}

TEST(Gemm, AlphaBetaVariants) {
  const float alpha_beta[][2] = {{1.0f, 1.0f}, {0.5f, 0.0f}, {-1.5f, 0.75f}, {2.0f, -1.0f}, {0.0f, 2.0f}, {0.0f, 0.0f}};
  uint32_t seed = 100;
  for (const Isa* isa : runnable_isas())
    for (const auto& ab : alpha_beta)
      for (int layout = 0; layout < 4; ++layout)
        for (int64_t M : {23, 3})  // the blocked and the skinny path
          check(*isa, Problem(layout & 1, layout & 2, M, 41, 401, ab[0], ab[1], 0, seed++));
}

TEST(Gemm, StridedOperandsLeavePaddingAlone) {
  uint32_t seed = 200;
  for (const Isa* isa : runnable_isas())
    for (int layout = 0; layout < 4; ++layout) {
      // Column edges of 3, 18 and 20 (past one and past half a 32-wide tile), beta 0 and not.
      for (float beta : {0.0f, 0.5f}) {
        check(*isa, Problem(layout & 1, layout & 2, 19, 35, 27, 1.0f, beta, 5, seed++));
        check(*isa, Problem(layout & 1, layout & 2, 9, 50, 33, 1.0f, beta, 3, seed++));
        check(*isa, Problem(layout & 1, layout & 2, 31, 20, 300, 0.5f, beta, 13, seed++));
        check(*isa, Problem(layout & 1, layout & 2, 2, 50, 21, 1.0f, beta, 7, seed++));
      }
    }
}

TEST(Gemm, ZeroKScalesC) {
  for (const Isa* isa : runnable_isas()) {
    check(*isa, Problem(false, false, 5, 9, 0, 1.0f, 0.0f, 0, 300));
    check(*isa, Problem(true, true, 5, 9, 0, 1.0f, -2.0f, 2, 301));
  }
}

// Big enough for the parallel path (> 2^21 flops), with shapes that take the shared-B row
// tasks (M of many micro-panels; N below one NR panel; M > 4096), the per-thread tiles over
// N (few rows, wide), several NC chunks (N > 640), and the skinny path over columns (M = 3).
TEST(Gemm, ThreadSplitsMatchReference) {
  const int saved = omp_get_max_threads();
  const Shape shapes[] = {{90, 700, 200}, {600, 20, 300}, {4200, 40, 15}, {64, 1500, 40}, {3, 3000, 500}};
  uint32_t seed = 400;
  for (int threads : {2, 3}) {  // 3: a team that splits C unevenly
    omp_set_num_threads(threads);
    for (const Shape& s : shapes)
      for (int layout = 0; layout < 4; ++layout)
        check(gemm_detail::best_isa(), Problem(layout & 1, layout & 2, s.M, s.N, s.K, 1.0f, 0.5f, 3, seed++));
  }
  omp_set_num_threads(saved);
}

// Same inputs twice, and with 1 vs 2 threads: bitwise identical outputs (threads split C,
// never K, and the K slicing does not depend on the thread count).
TEST(Gemm, BitwiseDeterministic) {
  const int saved = omp_get_max_threads();
  for (int layout = 0; layout < 8; ++layout) {
    // Layouts 4..7 repeat 0..3 with M = 2 (the skinny path).
    const Problem p(layout & 1, layout & 2, layout < 4 ? 203 : 2, 517, 450, 1.0f, 0.0f, 0, 500 + layout);
    std::vector<std::vector<float>> runs;
    for (int threads : {2, 2, 1}) {
      omp_set_num_threads(threads);
      std::vector<float> C(size_t(p.M * p.ldc), 0.0f);
      sgemm(p.trans_a, p.trans_b, p.M, p.N, p.K, p.alpha, p.A.data(), p.lda, p.B.data(), p.ldb, p.beta, C.data(),
            p.ldc);
      runs.push_back(std::move(C));
    }
    EXPECT_EQ(std::memcmp(runs[0].data(), runs[1].data(), runs[0].size() * sizeof(float)), 0) << "layout " << layout;
    EXPECT_EQ(std::memcmp(runs[0].data(), runs[2].data(), runs[0].size() * sizeof(float)), 0) << "layout " << layout;
  }
  // The shared-B path (row tasks handed out dynamically) with several column blocks (N past
  // NC) and K slices (K past KC), on 1, 2 and 3 threads: the same bits each time.
  for (int layout = 0; layout < 4; ++layout) {
    const Problem p(layout & 1, layout & 2, 600, 1700, 800, 1.0f, 0.5f, 0, 600 + layout);
    std::vector<float> first;
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      std::vector<float> C = p.C0;
      sgemm(p.trans_a, p.trans_b, p.M, p.N, p.K, p.alpha, p.A.data(), p.lda, p.B.data(), p.ldb, p.beta, C.data(),
            p.ldc);
      if (first.empty()) {
        first = C;
      } else {
        EXPECT_EQ(std::memcmp(first.data(), C.data(), C.size() * sizeof(float)), 0)
            << "layout " << layout << ", " << threads << " threads";
      }
    }
  }
  omp_set_num_threads(saved);
}

// Small problems run one per thread; big ones (2MNK >= 2^24) one after another, each on
// all threads. Both must match the reference (and leave the gaps between matrices alone).
TEST(Gemm, BatchedMatchesPerBatchReference) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(2);
  const int64_t configs[][4] = {{5, 17, 39, 23}, {2, 210, 90, 450}};  // batch, M, N, K
  uint32_t seed = 600;
  for (const auto& cfg : configs) {
    const int64_t batch = cfg[0], M = cfg[1], N = cfg[2], K = cfg[3];
    for (int layout = 0; layout < 4; ++layout) {
      const bool ta = layout & 1, tb = layout & 2;
      const int64_t lda = ta ? M : K, ldb = tb ? K : N, ldc = N;
      // Batch strides larger than one matrix, as for a slice of a bigger tensor.
      const int64_t stride_a = M * K + 3, stride_b = K * N + 1, stride_c = M * N + 7;
      const std::vector<float> A = random_vector(batch * stride_a, seed++);
      const std::vector<float> B = random_vector(batch * stride_b, seed++);
      const std::vector<float> C0 = random_vector(batch * stride_c, seed++);
      std::vector<float> C = C0, C_ref = C0;
      sgemm_batched(ta, tb, batch, M, N, K, 0.5f, A.data(), lda, stride_a, B.data(), ldb, stride_b, 1.0f,
                    C.data(), ldc, stride_c);
      for (int64_t b = 0; b < batch; ++b)
        sgemm_ref(ta, tb, M, N, K, 0.5f, A.data() + b * stride_a, lda, B.data() + b * stride_b, ldb, 1.0f,
                  C_ref.data() + b * stride_c, ldc);
      // The header's bound with |a|, |b|, |c| <= 1: (K + 3) u (alpha K + beta).
      const double tol = double(K + 3) * std::ldexp(1.0, -24) * (0.5 * K + 1.0);
      int64_t bad = 0;
      for (size_t i = 0; i < C.size(); ++i) bad += !(std::fabs(C[i] - C_ref[i]) <= tol);
      EXPECT_EQ(bad, 0) << "batch " << batch << " M=" << M << " N=" << N << " K=" << K << " layout " << layout;
    }
  }
  omp_set_num_threads(saved);
}

TEST(Gemm, BadArgumentsThrow) {
  std::vector<float> A(64, 1.0f), B(64, 1.0f), C(64, 0.0f);
  EXPECT_THROW(sgemm(false, false, -1, 4, 4, 1.0f, A.data(), 4, B.data(), 4, 0.0f, C.data(), 4), Error);
  EXPECT_THROW(sgemm(false, false, 4, 4, 4, 1.0f, A.data(), 3, B.data(), 4, 0.0f, C.data(), 4), Error);
  EXPECT_THROW(sgemm(true, false, 8, 4, 4, 1.0f, A.data(), 4, B.data(), 4, 0.0f, C.data(), 4), Error);
  EXPECT_THROW(sgemm(false, false, 4, 8, 4, 1.0f, A.data(), 4, B.data(), 8, 0.0f, C.data(), 4), Error);
  EXPECT_THROW(sgemm(false, true, 4, 4, 8, 1.0f, A.data(), 8, B.data(), 4, 0.0f, C.data(), 4), Error);
  EXPECT_THROW(sgemm(false, false, 4, 4, 4, 1.0f, nullptr, 4, B.data(), 4, 0.0f, C.data(), 4), Error);
}

// Every ISA's packing routine against the portable one (the reference: one element at a
// time, zero padding past the last row): both layouts, the micro-panel widths each ISA
// packs, row counts around the width, K slices that are not a multiple of the vector
// width, an offset origin (i0, p0) and a padded row stride. Packing only moves floats, so
// the match is exact.
TEST(GemmPack, MatchesThePortablePacking) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const Isa* isa : runnable_isas()) {
    for (const int width : {isa->MR, isa->NR}) {
      for (const bool trans : {false, true}) {
        for (const int64_t rows : {int64_t(1), int64_t(width - 1), int64_t(width), int64_t(2 * width + 3)}) {
          for (const int64_t kc : {int64_t(1), int64_t(7), int64_t(9), int64_t(33)}) {
            const int64_t i0 = 2, p0 = 3;
            const int64_t row_extent = i0 + rows, k_extent = p0 + kc;  // op(X) is (row_extent, k_extent)
            const int64_t ld = (trans ? row_extent : k_extent) + 5;
            std::vector<float> X((trans ? k_extent : row_extent) * ld);
            for (float& x : X) x = dist(rng);
            const int64_t panels = (rows + width - 1) / width;
            std::vector<float> got(panels * width * kc, -7.0f), want(panels * width * kc, -7.0f);
            isa->pack(trans, X.data(), ld, i0, rows, p0, kc, width, got.data());
            gemm_detail::pack_generic(trans, X.data(), ld, i0, rows, p0, kc, width, want.data());
            EXPECT_EQ(got, want) << isa->name << " width " << width << " trans " << trans << " rows " << rows
                                 << " kc " << kc;
          }
        }
      }
    }
  }
}

// sgemm must use the widest path the CPU offers (a silent fallback would cost 2-10x).
TEST(Gemm, PicksTheWidestIsaThisCpuRuns) {
  __builtin_cpu_init();
  const bool fma = __builtin_cpu_supports("fma");
  const std::string expected = fma && __builtin_cpu_supports("avx512f") ? "avx512"
                               : fma && __builtin_cpu_supports("avx2")  ? "avx2"
                                                                         : "scalar";
  EXPECT_EQ(std::string(sgemm_isa()), expected);
}

}  // namespace
}  // namespace sllm::kernels

// sgemm_pack_floats (what `sllm memory` counts for the pack buffers): zero where nothing is
// packed, whole micro-panels of at most one cache block otherwise, smaller per thread when
// two threads split the product, and big enough for the problem when it fits one block.
namespace sllm::kernels {
TEST(GemmPackFloats, BoundedByTheCacheBlocksAndSplitByThreads) {
  const gemm_detail::Isa& isa = gemm_detail::best_isa();
  EXPECT_EQ(sgemm_pack_floats(0, 8, 8, 2).a, 0);
  EXPECT_EQ(sgemm_pack_floats(64, 64, 0, 2).b, 0);
  const GemmPackFloats big = sgemm_pack_floats(5000, 5000, 5000, 1);
  EXPECT_EQ(big.a % isa.MR, 0);
  EXPECT_EQ(big.b % isa.NR, 0);
  EXPECT_LE(big.a, isa.MC * isa.KC);
  EXPECT_LE(big.b, isa.NC * isa.KC);
  EXPECT_GT(big.a, (isa.MC - isa.MR) * (isa.KC / 2));
  const GemmPackFloats small = sgemm_pack_floats(100, 70, 50, 1);  // one block: every row and column, all of K
  EXPECT_GE(small.a, 100 * 50);
  EXPECT_GE(small.b, 70 * 50);
  const GemmPackFloats one = sgemm_pack_floats(64, 600, 512, 1), two = sgemm_pack_floats(64, 600, 512, 2);
  EXPECT_LE(two.a + two.b, one.a + one.b);
  EXPECT_LT(two.b, one.b) << "two threads split N: each packs about half of op(B)'s columns";
}
}  // namespace sllm::kernels
