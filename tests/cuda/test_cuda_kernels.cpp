// Every CUDA kernel against its CPU reference (kernels::X_ref, double inside) on the same
// random inputs, with the tolerances of cuda_test_support.h. Backward kernels get gradient
// buffers pre-filled with random values, so the accumulate (+=) contract is checked too, and
// nullptr gradients must be skipped. Kernels documented as deterministic are run twice and
// compared bit for bit. All tests skip without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

class CudaKernels : public CudaTest {};

using Vec = std::vector<float>;
namespace cpu = sllm::kernels;

// ---- elementwise ------------------------------------------------------------------------

TEST_F(CudaKernels, BinaryForwardAndBackward) {
  const int64_t n = 6 * 700;
  for (const int64_t nb : {int64_t(1), int64_t(7), int64_t(700), n})
    for (const BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div}) {
      const std::string what = "op " + std::to_string(int(op)) + " nb " + std::to_string(nb);
      const Vec a = uniform(n, 1), b = uniform(nb, 2, 0.5f, 2.0f), dout = uniform(n, 3);
      const Vec da0 = uniform(n, 4), db0 = uniform(nb, 5);
      Vec out_ref(n), da_ref = da0, db_ref = db0;
      cpu::binary_forward_ref(op, out_ref.data(), a.data(), b.data(), n, nb);
      cpu::binary_backward_ref(op, da_ref.data(), db_ref.data(), dout.data(), a.data(), b.data(), n, nb);

      DeviceArray<float> a_d(a), b_d(b), dout_d(dout), out_d{size_t(n)}, da_d(da0), db_d(db0);
      cuda::binary_forward(op, out_d.get(), a_d.get(), b_d.get(), n, nb);
      cuda::binary_backward(op, da_d.get(), db_d.get(), dout_d.get(), a_d.get(), b_d.get(), n, nb);
      expect_close(out_d.host(), out_ref, kPointwise, what + " forward");
      expect_close(da_d.host(), da_ref, kPointwise, what + " da (+=)");
      expect_close(db_d.host(), db_ref, kReduction, what + " db (+=)");
      // nullptr gradients are skipped: nothing changes.
      const Vec db_now = db_d.host();
      cuda::binary_backward(op, nullptr, nullptr, dout_d.get(), a_d.get(), b_d.get(), n, nb);
      expect_bitwise(db_d.host(), db_now, what + " nullptr skip");
    }
}

TEST_F(CudaKernels, ScaleAndSums) {
  const int64_t rows = 37, cols = 1000, n = rows * cols;
  const Vec a = uniform(n, 6);
  DeviceArray<float> a_d(a), out_d{size_t(n)}, rows_d{size_t(rows)}, total_d(1);
  scale_forward(out_d.get(), a_d.get(), -1.5f, n);
  Vec scaled(n);
  for (int64_t i = 0; i < n; ++i) scaled[i] = a[i] * -1.5f;
  expect_bitwise(out_d.host(), scaled, "scale (one rounding, as on the CPU)");

  double want = 0.0;
  for (float x : a) want += x;
  const float got = sum_forward(a_d.get(), n);
  EXPECT_NEAR(got, want, 1e-6 + 1.2e-7 * std::fabs(want)) << "summed in double, rounded once to float";
  EXPECT_EQ(got, sum_forward(a_d.get(), n)) << "fixed partition: same bits twice";
  sum_forward(total_d.get(), a_d.get(), n);
  EXPECT_EQ(total_d.host()[0], got);

  Vec rows_ref(rows);
  cpu::sum_rows_forward(rows_ref.data(), a.data(), rows, cols);  // double per row on both sides
  sum_rows_forward(rows_d.get(), a_d.get(), rows, cols);
  expect_close(rows_d.host(), rows_ref, kReduction, "sum_rows");
}

// ---- embedding ---------------------------------------------------------------------------

TEST_F(CudaKernels, EmbeddingForwardBitwiseAndBackwardInRowOrder) {
  const int64_t N = 300, V = 50, C = 300;  // many repeated ids
  const std::vector<int32_t> ids = random_ids(N, int32_t(V), 7);
  const Vec table = uniform(V * C, 8), dout = uniform(N * C, 9), dtable0 = uniform(V * C, 10);
  Vec out_ref(N * C), dtable_ref = dtable0;
  cpu::embedding_forward_ref(out_ref.data(), ids.data(), table.data(), N, V, C);
  cpu::embedding_backward_ref(dtable_ref.data(), dout.data(), ids.data(), N, V, C);

  DeviceArray<int32_t> ids_d(ids);
  DeviceArray<float> table_d(table), dout_d(dout), out_d{size_t(N * C)}, dtable_d(dtable0);
  embedding_forward(out_d.get(), ids_d.get(), table_d.get(), N, V, C);
  embedding_backward(dtable_d.get(), dout_d.get(), ids_d.get(), N, V, C);
  expect_bitwise(out_d.host(), out_ref, "embedding forward (a copy)");
  // The reference adds in row order in float; so does each GPU thread.
  expect_bitwise(dtable_d.host(), dtable_ref, "embedding backward (+=, row order)");
}

// ---- norms -------------------------------------------------------------------------------

TEST_F(CudaKernels, LayerNormForwardBackward) {
  for (const bool with_bias : {true, false})
    for (const int64_t C : {int64_t(5), int64_t(768)}) {
      const int64_t N = 300;
      const std::string what = std::string(with_bias ? "bias" : "no bias") + " C=" + std::to_string(C);
      const Vec x = uniform(N * C, 11, -2.0f, 3.0f), w = uniform(C, 12), bias = uniform(C, 13),
                dout = uniform(N * C, 14);
      const Vec dx0 = uniform(N * C, 15), dw0 = uniform(C, 16), db0 = uniform(C, 17);
      Vec out_ref(N * C), mean_ref(N), rstd_ref(N), dx_ref = dx0, dw_ref = dw0, db_ref = db0;
      const float* bias_h = with_bias ? bias.data() : nullptr;
      cpu::layernorm_forward_ref(out_ref.data(), mean_ref.data(), rstd_ref.data(), x.data(), w.data(), bias_h, N, C,
                                 1e-5f);
      cpu::layernorm_backward_ref(dx_ref.data(), dw_ref.data(), db_ref.data(), dout.data(), x.data(), w.data(),
                                  mean_ref.data(), rstd_ref.data(), N, C);

      DeviceArray<float> x_d(x), w_d(w), b_d(bias), dout_d(dout), out_d{size_t(N * C)}, mean_d{size_t(N)},
          rstd_d{size_t(N)}, dx_d(dx0), dw_d(dw0), db_d(db0);
      layernorm_forward(out_d.get(), mean_d.get(), rstd_d.get(), x_d.get(), w_d.get(), with_bias ? b_d.get() : nullptr,
                        N, C, 1e-5f);
      expect_close(out_d.host(), out_ref, kReduction, what + " out");
      expect_close(mean_d.host(), mean_ref, kReduction, what + " mean");
      expect_close(rstd_d.host(), rstd_ref, kReduction, what + " rstd");
      layernorm_backward(dx_d.get(), dw_d.get(), db_d.get(), dout_d.get(), x_d.get(), w_d.get(), mean_d.get(),
                         rstd_d.get(), N, C);
      expect_close(dx_d.host(), dx_ref, kReduction, what + " dinp (+=)");
      expect_close(dw_d.host(), dw_ref, kReduction, what + " dweight (+=)");
      expect_close(db_d.host(), db_ref, kReduction, what + " dbias (+=)");

      // Deterministic: a second backward into fresh buffers gives the same bits; frozen
      // parameters (nullptr) leave dinp's result unchanged.
      DeviceArray<float> dw2(dw0), db2(db0), dx2(dx0);
      layernorm_backward(nullptr, dw2.get(), db2.get(), dout_d.get(), x_d.get(), w_d.get(), mean_d.get(),
                         rstd_d.get(), N, C);
      expect_bitwise(dw2.host(), dw_d.host(), what + " dweight twice");
      expect_bitwise(db2.host(), db_d.host(), what + " dbias twice");
      layernorm_backward(dx2.get(), nullptr, nullptr, dout_d.get(), x_d.get(), w_d.get(), mean_d.get(), rstd_d.get(),
                         N, C);
      expect_bitwise(dx2.host(), dx_d.host(), what + " dinp alone");
    }
}

TEST_F(CudaKernels, RmsNormForwardBackward) {
  const int64_t N = 257, C = 1000;
  const Vec x = uniform(N * C, 21, -2.0f, 3.0f), w = uniform(C, 22), dout = uniform(N * C, 23);
  const Vec dx0 = uniform(N * C, 24), dw0 = uniform(C, 25);
  Vec out_ref(N * C), rstd_ref(N), dx_ref = dx0, dw_ref = dw0;
  cpu::rmsnorm_forward_ref(out_ref.data(), rstd_ref.data(), x.data(), w.data(), N, C, 1e-6f);
  cpu::rmsnorm_backward_ref(dx_ref.data(), dw_ref.data(), dout.data(), x.data(), w.data(), rstd_ref.data(), N, C);

  DeviceArray<float> x_d(x), w_d(w), dout_d(dout), out_d{size_t(N * C)}, rstd_d{size_t(N)}, dx_d(dx0), dw_d(dw0);
  rmsnorm_forward(out_d.get(), rstd_d.get(), x_d.get(), w_d.get(), N, C, 1e-6f);
  rmsnorm_backward(dx_d.get(), dw_d.get(), dout_d.get(), x_d.get(), w_d.get(), rstd_d.get(), N, C);
  expect_close(out_d.host(), out_ref, kReduction, "rmsnorm out");
  expect_close(rstd_d.host(), rstd_ref, kReduction, "rmsnorm rstd");
  expect_close(dx_d.host(), dx_ref, kReduction, "rmsnorm dinp (+=)");
  expect_close(dw_d.host(), dw_ref, kReduction, "rmsnorm dweight (+=)");
}

// ---- activations ------------------------------------------------------------------------

TEST_F(CudaKernels, Activations) {
  const int64_t n = 10000;
  const Vec x = uniform(n, 31, -6.0f, 6.0f), up = uniform(n, 32), dout = uniform(n, 33);
  const Vec d0 = uniform(n, 34), d1 = uniform(n, 35);
  DeviceArray<float> x_d(x), up_d(up), dout_d(dout), out_d{size_t(n)};
  for (const bool tanh_approx : {true, false}) {
    const std::string what = tanh_approx ? "gelu tanh" : "gelu erf";
    Vec out_ref(n), dx_ref = d0;
    cpu::gelu_forward_ref(out_ref.data(), x.data(), n, tanh_approx);
    cpu::gelu_backward_ref(dx_ref.data(), dout.data(), x.data(), n, tanh_approx);
    DeviceArray<float> dx_d(d0);
    gelu_forward(out_d.get(), x_d.get(), n, tanh_approx);
    gelu_backward(dx_d.get(), dout_d.get(), x_d.get(), n, tanh_approx);
    expect_close(out_d.host(), out_ref, kPointwise, what + " forward");
    expect_close(dx_d.host(), dx_ref, kPointwise, what + " backward (+=)");
  }
  {
    Vec out_ref(n), dx_ref = d0;
    cpu::silu_forward_ref(out_ref.data(), x.data(), n);
    cpu::silu_backward_ref(dx_ref.data(), dout.data(), x.data(), n);
    DeviceArray<float> dx_d(d0);
    silu_forward(out_d.get(), x_d.get(), n);
    silu_backward(dx_d.get(), dout_d.get(), x_d.get(), n);
    expect_close(out_d.host(), out_ref, kPointwise, "silu forward");
    expect_close(dx_d.host(), dx_ref, kPointwise, "silu backward (+=)");
  }
  {
    Vec out_ref(n), dg_ref = d0, du_ref = d1;
    cpu::swiglu_forward_ref(out_ref.data(), x.data(), up.data(), n);
    cpu::swiglu_backward_ref(dg_ref.data(), du_ref.data(), dout.data(), x.data(), up.data(), n);
    DeviceArray<float> dg_d(d0), du_d(d1);
    swiglu_forward(out_d.get(), x_d.get(), up_d.get(), n);
    swiglu_backward(dg_d.get(), du_d.get(), dout_d.get(), x_d.get(), up_d.get(), n);
    expect_close(out_d.host(), out_ref, kPointwise, "swiglu forward");
    expect_close(dg_d.host(), dg_ref, kPointwise, "swiglu dgate (+=)");
    expect_close(du_d.host(), du_ref, kPointwise, "swiglu dup (+=)");
    swiglu_backward(nullptr, du_d.get(), dout_d.get(), x_d.get(), up_d.get(), n);  // dgate frozen
    Vec du_twice = du_ref;
    cpu::swiglu_backward_ref(nullptr, du_twice.data(), dout.data(), x.data(), up.data(), n);
    expect_close(du_d.host(), du_twice, kPointwise, "swiglu dup alone");
  }
}

// ---- softmax and cross-entropy ----------------------------------------------------------

TEST_F(CudaKernels, SoftmaxAndLogSoftmax) {
  for (const int64_t C : {int64_t(5), int64_t(3001)}) {
    const int64_t N = 40;
    const std::string what = "C=" + std::to_string(C);
    const Vec x = uniform(N * C, 41, -8.0f, 8.0f), dout = uniform(N * C, 42), dx0 = uniform(N * C, 43);
    DeviceArray<float> x_d(x), dout_d(dout), y_d{size_t(N * C)};

    Vec y_ref(N * C), dx_ref = dx0;
    cpu::softmax_forward_ref(y_ref.data(), x.data(), N, C);
    cpu::softmax_backward_ref(dx_ref.data(), dout.data(), y_ref.data(), N, C);
    DeviceArray<float> dx_d(dx0);
    softmax_forward(y_d.get(), x_d.get(), N, C);
    expect_close(y_d.host(), y_ref, kReduction, what + " softmax");
    softmax_backward(dx_d.get(), dout_d.get(), y_d.get(), N, C);
    expect_close(dx_d.host(), dx_ref, kReduction, what + " softmax backward (+=)");

    Vec ly_ref(N * C), ldx_ref = dx0;
    cpu::log_softmax_forward_ref(ly_ref.data(), x.data(), N, C);
    cpu::log_softmax_backward_ref(ldx_ref.data(), dout.data(), ly_ref.data(), N, C);
    DeviceArray<float> ldx_d(dx0);
    log_softmax_forward(y_d.get(), x_d.get(), N, C);
    expect_close(y_d.host(), ly_ref, kReduction, what + " log_softmax");
    log_softmax_backward(ldx_d.get(), dout_d.get(), y_d.get(), N, C);
    expect_close(ldx_d.host(), ldx_ref, kReduction, what + " log_softmax backward (+=)");
  }
}

TEST_F(CudaKernels, CrossEntropyWithIgnoredRows) {
  const int64_t N = 64, V = 5003;
  const int32_t ignore = -100;
  std::vector<int32_t> targets = random_ids(N, int32_t(V), 51);
  for (int64_t n = 0; n < N; n += 5) targets[n] = ignore;
  targets[1] = 0;
  targets[2] = int32_t(V - 1);
  const Vec logits = uniform(N * V, 52, -10.0f, 10.0f), dlosses = uniform(N, 53), dx0 = uniform(N * V, 54);
  Vec losses_ref(N), lse_ref(N), dx_ref = dx0;
  cpu::cross_entropy_forward_ref(losses_ref.data(), lse_ref.data(), logits.data(), targets.data(), N, V, ignore);
  cpu::cross_entropy_backward_ref(dx_ref.data(), dlosses.data(), logits.data(), lse_ref.data(), targets.data(), N, V,
                                  ignore);

  DeviceArray<int32_t> t_d(targets);
  DeviceArray<float> x_d(logits), dl_d(dlosses), losses_d{size_t(N)}, lse_d{size_t(N)}, dx_d(dx0);
  cross_entropy_forward(losses_d.get(), lse_d.get(), x_d.get(), t_d.get(), N, V, ignore);
  cross_entropy_backward(dx_d.get(), dl_d.get(), x_d.get(), lse_d.get(), t_d.get(), N, V, ignore);
  expect_close(losses_d.host(), losses_ref, kReduction, "losses");
  expect_close(lse_d.host(), lse_ref, kReduction, "lse");
  expect_close(dx_d.host(), dx_ref, kReduction, "dlogits (+=)");
  const Vec dx = dx_d.host();
  for (int64_t v = 0; v < V; ++v) ASSERT_EQ(dx[v], dx0[v]) << "ignored row 0 must be untouched";
}

// ---- rope --------------------------------------------------------------------------------

TEST_F(CudaKernels, RopeBothLayoutsWithOffsetAndInPlace) {
  const int64_t B = 2, T = 9, NH = 3, HD = 16, pos0 = 5, T_max = 32, n = B * T * NH * HD;
  Vec cos_t(T_max * HD / 2), sin_t(T_max * HD / 2);
  cpu::rope_table(cos_t.data(), sin_t.data(), T_max, HD, 10000.0f);
  const Vec x = uniform(n, 61), dout = uniform(n, 62), dx0 = uniform(n, 63);
  DeviceArray<float> cos_d(cos_t), sin_d(sin_t), dout_d(dout), out_d{size_t(n)};
  for (const bool interleaved : {false, true}) {
    const std::string what = interleaved ? "interleaved" : "half-split";
    Vec out_ref(n), dx_ref = dx0;
    cpu::rope_forward_ref(out_ref.data(), x.data(), cos_t.data(), sin_t.data(), B, T, NH, HD, pos0, interleaved);
    cpu::rope_backward_ref(dx_ref.data(), dout.data(), cos_t.data(), sin_t.data(), B, T, NH, HD, pos0, interleaved);
    DeviceArray<float> x_d(x), dx_d(dx0);
    rope_forward(out_d.get(), x_d.get(), cos_d.get(), sin_d.get(), B, T, NH, HD, pos0, interleaved);
    expect_close(out_d.host(), out_ref, kPointwise, what + " forward");
    rope_forward(x_d.get(), x_d.get(), cos_d.get(), sin_d.get(), B, T, NH, HD, pos0, interleaved);
    expect_bitwise(x_d.host(), out_d.host(), what + " in place");
    rope_backward(dx_d.get(), dout_d.get(), cos_d.get(), sin_d.get(), B, T, NH, HD, pos0, interleaved);
    expect_close(dx_d.host(), dx_ref, kPointwise, what + " backward (+=)");
  }
}

// ---- AdamW -------------------------------------------------------------------------------

TEST_F(CudaKernels, AdamWMatchesTheReferenceOverSteps) {
  const int64_t n = 5000;
  Vec p = uniform(n, 71), m(n, 0.0f), v(n, 0.0f);
  DeviceArray<float> p_d(p), m_d(m), v_d(v);
  for (int64_t step = 1; step <= 5; ++step) {
    const Vec g = uniform(n, uint32_t(71 + step), -0.1f, 0.1f);
    cpu::adamw_update_ref(p.data(), g.data(), m.data(), v.data(), n, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, step);
    DeviceArray<float> g_d(g);
    adamw_update(p_d.get(), g_d.get(), m_d.get(), v_d.get(), n, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, step);
  }
  // Five steps of a few float operations each (the update divides by sqrt(v)+eps, which can
  // amplify an ulp of v when v is tiny): the pointwise bound relative to the largest value.
  expect_close(p_d.host(), p, kPointwise, "param");
  expect_close(m_d.host(), m, kPointwise, "m");
  expect_close(v_d.host(), v, kPointwise, "v");
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
