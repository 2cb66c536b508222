// The cuBLASLt epilogue GEMMs (kernels/cuda/gemm_lt.cu) against the CPU reference:
// gemm_bias (bf16 output with the bf16 bias added before the one rounding) and
// gemm_bias_grad (fp32 output plus the fp32 row sums of op(A)), over the transposes and
// padded strides the linear layer uses and a few it does not. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "tensor/dtype.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

class CudaGemmLt : public CudaTest {};

using Vec = std::vector<float>;

// bf16-exact inputs: every product is exact in fp32, so the reference (double sums) differs
// from the device only by fp32 summation order (~sqrt(K) 6e-8 relative) plus, for a bf16
// output, the rounding: once (half an ulp, 2^-9 relative; one ulp, 2^-8, for a value near a
// rounding boundary after a summation-order difference), or, as cuBLASLt's bias epilogue
// does for some shapes on an H200, the product rounded before the bias is added: up to
// 2^-8 of |product| more (checked per element below). A wrong operand order, a missing bias
// or a bias on the wrong axis is off by O(1).
constexpr Tolerance kFp32Out{1e-5, 1e-5};

std::vector<uint16_t> to_bf16_bits(const Vec& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = f32_to_bf16(v[i]);
  return out;
}
Vec rounded(const Vec& v) {
  Vec out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = bf16_to_f32(f32_to_bf16(v[i]));
  return out;
}

struct Case {
  bool ta, tb;
  int64_t M, N, K, pad;
};
const Case kCases[] = {{false, true, 37, 24, 40, 0},   // the linear forward: x (M, K) · Wᵀ
                       {true, false, 24, 40, 37, 0},   // the weight gradient: gᵀ (M, K) · X
                       {false, false, 16, 33, 9, 3},   // padded strides
                       {true, true, 5, 8, 64, 1}};

// op(X)[r][c] of a row-major stored X with row stride ld.
double at(const Vec& x, bool trans, int64_t ld, int64_t r, int64_t c) { return trans ? x[c * ld + r] : x[r * ld + c]; }

TEST_F(CudaGemmLt, BiasEpilogueMatchesTheReference) {
  for (const Case& k : kCases) {
    const std::string what = "ta=" + std::to_string(k.ta) + " tb=" + std::to_string(k.tb);
    const int64_t lda = (k.ta ? k.M : k.K) + k.pad, ldb = (k.tb ? k.K : k.N) + k.pad, ldc = k.N + k.pad;
    const Vec A = rounded(uniform((k.ta ? k.K : k.M) * lda, 1)), B = rounded(uniform((k.tb ? k.N : k.K) * ldb, 2));
    const Vec bias = rounded(uniform(k.N, 3, -2.0f, 2.0f));
    DeviceArray<uint16_t> dA(to_bf16_bits(A)), dB(to_bf16_bits(B)), dbias(to_bf16_bits(bias));
    DeviceArray<uint16_t> dC(size_t(k.M * ldc));
    const auto* a = reinterpret_cast<const bf16*>(dA.get());
    const auto* b = reinterpret_cast<const bf16*>(dB.get());
    const bool ran = gemm_bias(k.ta, k.tb, k.M, k.N, k.K, a, lda, b, ldb, reinterpret_cast<const bf16*>(dbias.get()),
                               reinterpret_cast<bf16*>(dC.get()), ldc);
    if (!ran) {  // the linear layer falls back then; the layout it uses must be offered
      ASSERT_FALSE(!k.ta && k.tb && k.pad == 0) << what << ": no algorithm for the linear forward's layout";
      continue;
    }
    const std::vector<uint16_t> C = dC.host();
    for (int64_t i = 0; i < k.M; ++i)
      for (int64_t j = 0; j < k.N; ++j) {
        double product = 0;
        for (int64_t l = 0; l < k.K; ++l) product += at(A, k.ta, lda, i, l) * at(B, k.tb, ldb, l, j);
        const double want = product + bias[size_t(j)], got = bf16_to_f32(C[size_t(i * ldc + j)]);
        const double bound = 3.9e-3 * (std::fabs(product) + std::fabs(want)) + 1e-4;
        ASSERT_LE(std::fabs(got - want), bound) << what << " element (" << i << ", " << j << ")";
      }
  }
}

TEST_F(CudaGemmLt, BiasGradientEpilogueGivesTheProductAndTheRowSumsOfOpA) {
  for (const Case& k : kCases) {
    const std::string what = "ta=" + std::to_string(k.ta) + " tb=" + std::to_string(k.tb);
    const int64_t lda = (k.ta ? k.M : k.K) + k.pad, ldb = (k.tb ? k.K : k.N) + k.pad, ldc = k.N + k.pad;
    const Vec A = rounded(uniform((k.ta ? k.K : k.M) * lda, 4)), B = rounded(uniform((k.tb ? k.N : k.K) * ldb, 5));
    DeviceArray<uint16_t> dA(to_bf16_bits(A)), dB(to_bf16_bits(B));
    DeviceArray<float> dC(size_t(k.M * ldc)), dbias(size_t(k.M));
    const bool ran = gemm_bias_grad(k.ta, k.tb, k.M, k.N, k.K, reinterpret_cast<const bf16*>(dA.get()), lda,
                                    reinterpret_cast<const bf16*>(dB.get()), ldb, dC.get(), ldc, dbias.get());
    if (!ran) {
      // cuBLASLt may not offer BGRADB for every layout; the linear layer then falls back to
      // a GEMM plus a column-sum kernel. The layout the layer uses must be offered.
      ASSERT_FALSE(k.ta && !k.tb && k.pad == 0) << what << ": no algorithm for the weight-gradient layout";
      continue;
    }
    const Vec C = dC.host(), db = dbias.host();
    Vec got, want, got_db, want_db;
    for (int64_t i = 0; i < k.M; ++i) {
      double rs = 0;
      for (int64_t l = 0; l < k.K; ++l) rs += at(A, k.ta, lda, i, l);
      want_db.push_back(float(rs));
      got_db.push_back(db[size_t(i)]);
      for (int64_t j = 0; j < k.N; ++j) {
        double s = 0;
        for (int64_t l = 0; l < k.K; ++l) s += at(A, k.ta, lda, i, l) * at(B, k.tb, ldb, l, j);
        want.push_back(float(s));
        got.push_back(C[size_t(i * ldc + j)]);
      }
    }
    expect_close(got, want, kFp32Out, what + " C");
    expect_close(got_db, want_db, kFp32Out, what + " dbias");
  }
}

TEST_F(CudaGemmLt, EmptySizesAreAnError) {
  DeviceArray<uint16_t> d(16);
  DeviceArray<float> f(16);
  const auto* p = reinterpret_cast<const bf16*>(d.get());
  EXPECT_THROW(gemm_bias(false, true, 0, 4, 4, p, 4, p, 4, p, reinterpret_cast<bf16*>(d.get()), 4), sllm::Error);
  EXPECT_THROW(gemm_bias_grad(true, false, 4, 4, 0, p, 4, p, 4, f.get(), 4, f.get()), sllm::Error);
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
