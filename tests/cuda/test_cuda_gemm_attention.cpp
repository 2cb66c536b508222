// cuBLAS GEMM (fp32, TF32, strided batch, bf16) and the fused causal GQA attention against
// the CPU references, with the tolerances of cuda_test_support.h. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "tensor/dtype.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

class CudaGemm : public CudaTest {
 protected:
  void TearDown() override { set_tf32(false); }
};
class CudaAttention : public CudaTest {};

using Vec = std::vector<float>;
namespace cpu = sllm::kernels;

struct GemmCase {
  bool ta, tb;
  int64_t M, N, K, pad;  // pad: extra elements per stored row (lda, ldb, ldc > minimum)
  float alpha, beta;
};

const GemmCase kGemmCases[] = {
    {false, false, 64, 48, 32, 0, 1.0f, 0.0f},  {true, false, 33, 17, 65, 3, 0.5f, 1.0f},
    {false, true, 1, 300, 129, 1, 1.0f, -0.5f}, {true, true, 70, 5, 9, 2, 2.0f, 0.25f},
    {false, false, 8, 8, 0, 0, 1.0f, 0.5f},  // K == 0: C = beta C
};

// Stored shapes of A (M, K) or (K, M) and B (K, N) or (N, K) with row strides.
struct GemmData {
  int64_t lda, ldb, ldc;
  Vec A, B, C;
};

GemmData make_gemm(const GemmCase& g, uint32_t seed) {
  GemmData d;
  const int64_t a_rows = g.ta ? g.K : g.M, a_cols = g.ta ? g.M : g.K;
  const int64_t b_rows = g.tb ? g.N : g.K, b_cols = g.tb ? g.K : g.N;
  d.lda = a_cols + g.pad;
  d.ldb = b_cols + g.pad;
  d.ldc = g.N + g.pad;
  d.A = uniform(a_rows * d.lda, seed);
  d.B = uniform(b_rows * d.ldb, seed + 1);
  d.C = uniform(g.M * d.ldc, seed + 2);
  if (g.beta == 0.0f) d.C[0] = std::numeric_limits<float>::quiet_NaN();  // beta == 0: C is write-only
  return d;
}

TEST_F(CudaGemm, Fp32AndTf32MatchTheReference) {
  for (const bool tf32 : {false, true}) {
    set_tf32(tf32);
    EXPECT_EQ(tf32_enabled(), tf32);
    uint32_t seed = 100;
    for (const GemmCase& g : kGemmCases) {
      const std::string what = std::string(tf32 ? "tf32 " : "fp32 ") + "M=" + std::to_string(g.M) +
                               " N=" + std::to_string(g.N) + " K=" + std::to_string(g.K);
      const GemmData d = make_gemm(g, seed += 10);
      Vec want = d.C;
      cpu::sgemm_ref(g.ta, g.tb, g.M, g.N, g.K, g.alpha, d.A.data(), d.lda, d.B.data(), d.ldb, g.beta, want.data(),
                     d.ldc);
      DeviceArray<float> A(d.A), B(d.B), C(d.C);
      sgemm(g.ta, g.tb, g.M, g.N, g.K, g.alpha, A.get(), d.lda, B.get(), d.ldb, g.beta, C.get(), d.ldc);
      expect_close(C.host(), want, tf32 ? kTf32 : kReduction, what);
    }
  }
}

TEST_F(CudaGemm, StridedBatched) {
  const GemmCase g{true, false, 20, 30, 40, 1, 1.0f, 0.5f};
  const int64_t batch = 3;
  std::vector<GemmData> per(batch);
  for (int64_t b = 0; b < batch; ++b) per[b] = make_gemm(g, uint32_t(200 + 10 * b));
  const int64_t sa = int64_t(per[0].A.size()), sb = int64_t(per[0].B.size()), sc = int64_t(per[0].C.size());
  Vec A, B, C, want;
  for (auto& d : per) {
    A.insert(A.end(), d.A.begin(), d.A.end());
    B.insert(B.end(), d.B.begin(), d.B.end());
    C.insert(C.end(), d.C.begin(), d.C.end());
  }
  want = C;
  for (int64_t b = 0; b < batch; ++b)
    cpu::sgemm_ref(g.ta, g.tb, g.M, g.N, g.K, g.alpha, A.data() + b * sa, per[0].lda, B.data() + b * sb, per[0].ldb,
                   g.beta, want.data() + b * sc, per[0].ldc);
  DeviceArray<float> A_d(A), B_d(B), C_d(C);
  sgemm_batched(g.ta, g.tb, batch, g.M, g.N, g.K, g.alpha, A_d.get(), per[0].lda, sa, B_d.get(), per[0].ldb, sb, g.beta,
                C_d.get(), per[0].ldc, sc);
  expect_close(C_d.host(), want, kReduction, "batched");
}

TEST_F(CudaGemm, Bf16InputsFp32Accumulate) {
  for (const GemmCase& g : kGemmCases) {
    const GemmData d = make_gemm(g, 300);
    // Round the inputs to bf16 once; the reference multiplies the rounded values.
    std::vector<bf16> A16(d.A.size()), B16(d.B.size());
    Vec A_r(d.A.size()), B_r(d.B.size());
    for (size_t i = 0; i < d.A.size(); ++i) {
      A16[i] = bf16{f32_to_bf16(d.A[i])};
      A_r[i] = bf16_to_f32(A16[i].bits);
    }
    for (size_t i = 0; i < d.B.size(); ++i) {
      B16[i] = bf16{f32_to_bf16(d.B[i])};
      B_r[i] = bf16_to_f32(B16[i].bits);
    }
    Vec want = d.C;
    cpu::sgemm_ref(g.ta, g.tb, g.M, g.N, g.K, g.alpha, A_r.data(), d.lda, B_r.data(), d.ldb, g.beta, want.data(),
                   d.ldc);
    DeviceArray<bf16> A(A16), B(B16);
    DeviceArray<float> C(d.C);
    gemm(g.ta, g.tb, g.M, g.N, g.K, g.alpha, A.get(), d.lda, B.get(), d.ldb, g.beta, C.get(), d.ldc);
    expect_close(C.host(), want, kBf16FromRoundedInputs, "bf16 M=" + std::to_string(g.M));
  }
}

// ---- attention ---------------------------------------------------------------------------

struct AttnCase {
  int64_t B, T, Tk, NH, NKV, HD, q_offset;
};

const AttnCase kAttnCases[] = {
    {2, 37, 37, 4, 2, 64, 0},    // training, GQA G=2, rows not a multiple of the tile
    {1, 70, 70, 4, 1, 128, 0},   // multi-query, the largest head dim
    {1, 5, 70, 4, 4, 80, 65},    // KV-cache decoding of 5 rows after 65 cached; HD not a multiple of 32
    {2, 1, 33, 2, 1, 16, 32},    // one new token
};

TEST_F(CudaAttention, ForwardBackwardMatchTheReference) {
  uint32_t seed = 400;
  for (const AttnCase& a : kAttnCases) {
    const std::string what = "T=" + std::to_string(a.T) + " Tk=" + std::to_string(a.Tk) + " HD=" +
                             std::to_string(a.HD) + " q_offset=" + std::to_string(a.q_offset);
    const int64_t nq = a.B * a.T * a.NH * a.HD, nkv = a.B * a.Tk * a.NKV * a.HD, nl = a.B * a.NH * a.T;
    const float scale = 1.0f / std::sqrt(float(a.HD));
    const Vec q = uniform(nq, seed += 10, -2.0f, 2.0f), k = uniform(nkv, seed + 1, -2.0f, 2.0f),
              v = uniform(nkv, seed + 2), dout = uniform(nq, seed + 3);
    const Vec dq0 = uniform(nq, seed + 4), dk0 = uniform(nkv, seed + 5), dv0 = uniform(nkv, seed + 6);
    Vec out_ref(nq), lse_ref(nl), dq_ref = dq0, dk_ref = dk0, dv_ref = dv0;
    cpu::attention_forward_ref(out_ref.data(), lse_ref.data(), q.data(), k.data(), v.data(), a.B, a.T, a.Tk, a.NH,
                               a.NKV, a.HD, a.q_offset, scale);
    cpu::attention_backward_ref(dq_ref.data(), dk_ref.data(), dv_ref.data(), dout.data(), q.data(), k.data(),
                                v.data(), out_ref.data(), lse_ref.data(), a.B, a.T, a.Tk, a.NH, a.NKV, a.HD,
                                a.q_offset, scale);

    DeviceArray<float> q_d(q), k_d(k), v_d(v), dout_d(dout), out_d{size_t(nq)}, lse_d{size_t(nl)};
    attention_forward(out_d.get(), lse_d.get(), q_d.get(), k_d.get(), v_d.get(), a.B, a.T, a.Tk, a.NH, a.NKV, a.HD,
                      a.q_offset, scale);
    expect_close(out_d.host(), out_ref, kAttention, what + " out");
    expect_close(lse_d.host(), lse_ref, kAttention, what + " lse");

    DeviceArray<float> dq_d(dq0), dk_d(dk0), dv_d(dv0);
    attention_backward(dq_d.get(), dk_d.get(), dv_d.get(), dout_d.get(), q_d.get(), k_d.get(), v_d.get(),
                       out_d.get(), lse_d.get(), a.B, a.T, a.Tk, a.NH, a.NKV, a.HD, a.q_offset, scale);
    expect_close(dq_d.host(), dq_ref, kAttention, what + " dq (+=)");
    expect_close(dk_d.host(), dk_ref, kAttention, what + " dk (+=)");
    expect_close(dv_d.host(), dv_ref, kAttention, what + " dv (+=)");

    // Deterministic (one writer per element, fixed order), and a nullptr gradient is skipped
    // without changing the others.
    DeviceArray<float> dk2(dk0), dv2(dv0);
    attention_backward(nullptr, dk2.get(), dv2.get(), dout_d.get(), q_d.get(), k_d.get(), v_d.get(), out_d.get(),
                       lse_d.get(), a.B, a.T, a.Tk, a.NH, a.NKV, a.HD, a.q_offset, scale);
    expect_bitwise(dk2.host(), dk_d.host(), what + " dk twice");
    expect_bitwise(dv2.host(), dv_d.host(), what + " dv twice");
  }
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
