// kernels::RowInvariantGemm: while one is alive, a row of C is bit-for-bit the same whatever
// the number of rows computed with it (M = 1, 3, 16, 37), for every layout batched
// generation uses (x · Wᵀ with W stored (N, K), and x · W). Without the guard the AVX-512
// skinny path (M <= 4) sums in another order; this test is what holds the guard to its word
// on those machines (on others every M already takes the blocked path).
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "core/rng.h"
#include "kernels/kernels.h"

namespace sllm::kernels {
namespace {

std::vector<float> random_floats(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(rng.normal());
  return v;
}

TEST(RowInvariantGemm, EveryRowIsTheSameWhateverM) {
  const int64_t N = 200, K = 600, M_max = 37;  // K spans several KC slices on every ISA
  const std::vector<float> A = random_floats(M_max * K, 1), W = random_floats(N * K, 2);
  RowInvariantGemm guard;
  ASSERT_TRUE(RowInvariantGemm::active());
  for (bool trans_b : {true, false}) {
    // C_full (M_max, N) once, then each M's rows against it.
    std::vector<float> full(static_cast<size_t>(M_max * N));
    sgemm(false, trans_b, M_max, N, K, 1.0f, A.data(), K, W.data(), trans_b ? K : N, 0.0f, full.data(), N);
    for (int64_t M : {1, 2, 3, 4, 5, 16}) {
      for (int64_t row0 : {int64_t(0), int64_t(7)}) {
        std::vector<float> part(static_cast<size_t>(M * N));
        sgemm(false, trans_b, M, N, K, 1.0f, A.data() + row0 * K, K, W.data(), trans_b ? K : N, 0.0f, part.data(), N);
        EXPECT_EQ(std::memcmp(part.data(), full.data() + row0 * N, part.size() * sizeof(float)), 0)
            << "M " << M << " from row " << row0 << (trans_b ? " (x Wt)" : " (x W)");
      }
    }
  }
}

TEST(RowInvariantGemm, GuardsNestAndEnd) {
  EXPECT_FALSE(RowInvariantGemm::active());
  {
    RowInvariantGemm a;
    {
      RowInvariantGemm b;
      EXPECT_TRUE(RowInvariantGemm::active());
    }
    EXPECT_TRUE(RowInvariantGemm::active());
  }
  EXPECT_FALSE(RowInvariantGemm::active());
}

}  // namespace
}  // namespace sllm::kernels
