// The bf16 (mixed-precision) overloads of kernels/cuda_kernels.h against the CPU `_ref`
// kernels. The reference is fed the bf16-rounded inputs (what the GPU kernel reads), so the
// only differences left are the fp32 arithmetic (the fp32 tolerances of cuda_test_support.h)
// and the one rounding of each bf16 store. Gradient buffers start non-zero, so the += of a
// bf16 gradient (in fp32, rounded once) is checked too. Sizes are awkward on purpose (C not
// a multiple of 32, a single row, a single element). All tests skip without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/kernels.h"
#include "tensor/dtype.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

class CudaBf16 : public CudaTest {};

using Vec = std::vector<float>;
using Bf16Vec = std::vector<bf16>;
namespace cpu = sllm::kernels;

// ---- tolerances (each with its reason) ----------------------------------------------------
// A bf16 store rounds the fp32 result once to nearest even. bf16 keeps 8 significant bits
// (7 stored + the implicit one), so values in [2^e, 2^(e+1)) are 2^(e-7) apart and rounding
// moves a value by at most half that: a relative error of at most 2^-8 (= 3.9e-3). The fp32
// part of each bound is the fp32 kernel's own tolerance for the same computation.
constexpr double kBf16Rounding = 1.0 / 256.0;
// Pointwise kernels (activations, rope, binary ops) that store bf16.
constexpr Tolerance kPointwiseBf16{kPointwise.abs, kPointwise.rel + kBf16Rounding};
// Row reductions (norms, GEMM dot products) that store bf16.
constexpr Tolerance kReductionBf16{kReduction.abs, kReduction.rel + kBf16Rounding};
// GEMM with bf16 inputs and a bf16 C: the fp32-accumulation bound of kBf16FromRoundedInputs
// plus the final rounding of C.
constexpr Tolerance kGemmBf16Out{kBf16FromRoundedInputs.abs, kBf16FromRoundedInputs.rel + kBf16Rounding};

// ---- host-side bf16 helpers ------------------------------------------------------------------
Bf16Vec to_bf16(const Vec& v) {
  Bf16Vec out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = bf16{f32_to_bf16(v[i])};
  return out;
}
Vec to_f32(const Bf16Vec& v) {
  Vec out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = bf16_to_f32(v[i].bits);
  return out;
}
// What a bf16 buffer filled from v holds, widened back to float: the reference's input.
Vec rounded(const Vec& v) { return to_f32(to_bf16(v)); }

uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ---- cast ------------------------------------------------------------------------------------

TEST_F(CudaBf16, CastToBf16IsBitwiseTheHostRounding) {
  Vec x = {0.0f, -0.0f, 1.0f, -1.0f, std::numeric_limits<float>::infinity(),
           -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::max(),   // rounds up to +inf
           -std::numeric_limits<float>::max(), std::numeric_limits<float>::min(),        // smallest normal
           std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::denorm_min(), 1e-40f, -3e-39f};
  for (const uint32_t bits : {
           0x7FC00000u, 0xFFC00000u,  // quiet NaNs
           0x7F800001u, 0xFF800001u,  // signalling NaNs: stay NaN (quiet bit forced), not infinity
           0x7FBFFFFFu, 0x7F80FFFFu,  // payload only in the low half: must not round into infinity
           0x3F808000u,               // exactly halfway between 1 and 1 + 2^-7, even below: down
           0x3F818000u,               // halfway, odd below: up to even
           0x3F808001u, 0x3F807FFFu,  // just above / below halfway
           0x7F7F8000u,               // halfway below the largest bf16's next step: rounds to +inf
           0x00008000u, 0x00018000u,  // ties among denormals
           0x007FFFFFu, 0x807FFFFFu,  // largest denormals: round up to the smallest normal
       })
    x.push_back(f32_from_bits(bits));
  std::mt19937 rng(1);
  for (int i = 0; i < 3000; ++i) x.push_back(f32_from_bits(rng()));  // every exponent, NaNs included
  const int64_t n = int64_t(x.size());

  DeviceArray<float> x_d(x);
  DeviceArray<bf16> y_d{size_t(n)};
  cast_forward(y_d.get(), x_d.get(), n);
  const Bf16Vec got = y_d.host();
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i)
    if (got[i].bits != f32_to_bf16(x[i]) && ++bad <= 5)
      ADD_FAILURE() << "bits 0x" << std::hex << f32_bits(x[i]) << " -> 0x" << got[i].bits << ", want 0x"
                    << f32_to_bf16(x[i]);
  EXPECT_EQ(bad, 0);
  // Spot checks of the rule itself, independent of f32_to_bf16: ties to even, overflow to
  // infinity, NaN stays NaN.
  const auto got_for = [&](uint32_t bits) {
    const auto at = std::find_if(x.begin(), x.end(), [&](float f) { return f32_bits(f) == bits; });
    return got[size_t(at - x.begin())].bits;
  };
  EXPECT_EQ(got_for(0x3F808000u), 0x3F80u) << "tie, even below: down";
  EXPECT_EQ(got_for(0x3F818000u), 0x3F82u) << "tie, odd below: up";
  EXPECT_EQ(got_for(0x3F808001u), 0x3F81u) << "above the tie: up";
  EXPECT_EQ(got_for(f32_bits(std::numeric_limits<float>::max())), 0x7F80u) << "FLT_MAX rounds to +inf";
  EXPECT_EQ(got_for(0x7F800001u), 0x7FC0u) << "a signalling NaN stays NaN, quiet";
  EXPECT_EQ(got_for(0x7F80FFFFu), 0x7FC0u) << "a NaN with a low payload does not become infinity";
}

TEST_F(CudaBf16, CastToF32IsExactForEveryBf16AndRoundTrips) {
  Bf16Vec all(1 << 16);
  for (uint32_t b = 0; b < (1u << 16); ++b) all[b] = bf16{uint16_t(b)};
  DeviceArray<bf16> all_d(all);
  DeviceArray<float> wide_d{all.size()};
  cast_forward(wide_d.get(), all_d.get(), int64_t(all.size()));
  const Vec wide = wide_d.host();
  int64_t bad = 0;
  for (uint32_t b = 0; b < (1u << 16); ++b)
    if (f32_bits(wide[b]) != b << 16 && ++bad <= 5)  // the top half, NaN payloads included
      ADD_FAILURE() << "bf16 0x" << std::hex << b << " -> 0x" << f32_bits(wide[b]);
  EXPECT_EQ(bad, 0);
  // Narrowing what was widened gives the same bits back, except that a signalling NaN
  // comes back quiet (f32_to_bf16 forces the quiet bit).
  DeviceArray<bf16> back_d{all.size()};
  cast_forward(back_d.get(), wide_d.get(), int64_t(all.size()));
  const Bf16Vec back = back_d.host();
  for (uint32_t b = 0; b < (1u << 16); ++b) {
    const bool nan = (b & 0x7FFFu) > 0x7F80u;
    ASSERT_EQ(back[b].bits, nan ? (b | 0x0040u) : b) << "bf16 0x" << std::hex << b;
  }
}

// ---- GEMM ------------------------------------------------------------------------------------

struct GemmShape {
  bool ta, tb;
  int64_t M, N, K, pad;  // pad: extra elements per stored row
  float alpha, beta;
};
const GemmShape kGemmShapes[] = {
    {false, false, 33, 17, 65, 0, 1.0f, 0.0f},  // beta == 0: C write-only (NaN planted)
    {true, false, 1, 70, 9, 3, 0.5f, 1.0f},     // a single row
    {false, true, 45, 1, 31, 1, 1.0f, -0.5f},   // a single column
    {true, true, 20, 30, 40, 2, 2.0f, 0.25f},
    {false, false, 8, 8, 0, 0, 1.0f, 0.5f},     // K == 0: C = beta C
};

// The reference: sgemm_ref on the bf16-rounded A, B and C.
struct GemmInputs {
  int64_t lda, ldb, ldc;
  Vec A, B, C;  // bf16-rounded
};
GemmInputs gemm_inputs(const GemmShape& g, uint32_t seed) {
  GemmInputs d;
  const int64_t a_rows = g.ta ? g.K : g.M, b_rows = g.tb ? g.N : g.K;
  d.lda = (g.ta ? g.M : g.K) + g.pad;
  d.ldb = (g.tb ? g.K : g.N) + g.pad;
  d.ldc = g.N + g.pad;
  d.A = rounded(uniform(a_rows * d.lda, seed));
  d.B = rounded(uniform(b_rows * d.ldb, seed + 1));
  d.C = rounded(uniform(g.M * d.ldc, seed + 2));
  if (g.beta == 0.0f) d.C[0] = std::numeric_limits<float>::quiet_NaN();
  return d;
}

TEST_F(CudaBf16, BroadcastRowsRepeatsTheRoundedRow) {
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {37, 45}, {3, 1000}}) {
    const Vec row = uniform(cols, uint32_t(cols), -3.0f, 3.0f);
    DeviceArray<float> row_d(row);
    DeviceArray<bf16> out(size_t(rows * cols));
    broadcast_rows(out.get(), row_d.get(), rows, cols);
    const Bf16Vec got = out.host();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        ASSERT_EQ(got[size_t(r * cols + c)].bits, f32_to_bf16(row[size_t(c)])) << "row " << r << " col " << c;
  }
}

TEST_F(CudaBf16, GemmWithFp32AndBf16Output) {
  uint32_t seed = 500;
  for (const GemmShape& g : kGemmShapes) {
    const std::string what = "M=" + std::to_string(g.M) + " N=" + std::to_string(g.N) + " K=" + std::to_string(g.K);
    const GemmInputs d = gemm_inputs(g, seed += 10);
    Vec want = d.C;
    cpu::sgemm_ref(g.ta, g.tb, g.M, g.N, g.K, g.alpha, d.A.data(), d.lda, d.B.data(), d.ldb, g.beta, want.data(),
                   d.ldc);
    DeviceArray<bf16> A(to_bf16(d.A)), B(to_bf16(d.B)), C16(to_bf16(d.C));
    DeviceArray<float> C32(d.C);
    gemm(g.ta, g.tb, g.M, g.N, g.K, g.alpha, A.get(), d.lda, B.get(), d.ldb, g.beta, C32.get(), d.ldc);
    gemm(g.ta, g.tb, g.M, g.N, g.K, g.alpha, A.get(), d.lda, B.get(), d.ldb, g.beta, C16.get(), d.ldc);
    expect_close(C32.host(), want, kBf16FromRoundedInputs, what + " fp32 C");
    expect_close(to_f32(C16.host()), want, kGemmBf16Out, what + " bf16 C");
  }
}

TEST_F(CudaBf16, GemmBatchedWithFp32AndBf16Output) {
  const GemmShape g{true, false, 19, 23, 37, 1, 1.0f, 0.5f};
  const int64_t batch = 3;
  std::vector<GemmInputs> per;
  for (int64_t b = 0; b < batch; ++b) per.push_back(gemm_inputs(g, uint32_t(600 + 10 * b)));
  const int64_t sa = int64_t(per[0].A.size()), sb = int64_t(per[0].B.size()), sc = int64_t(per[0].C.size());
  Vec A, B, C;
  for (const auto& d : per) {
    A.insert(A.end(), d.A.begin(), d.A.end());
    B.insert(B.end(), d.B.begin(), d.B.end());
    C.insert(C.end(), d.C.begin(), d.C.end());
  }
  Vec want = C;
  for (int64_t b = 0; b < batch; ++b)
    cpu::sgemm_ref(g.ta, g.tb, g.M, g.N, g.K, g.alpha, A.data() + b * sa, per[0].lda, B.data() + b * sb, per[0].ldb,
                   g.beta, want.data() + b * sc, per[0].ldc);
  DeviceArray<bf16> A_d(to_bf16(A)), B_d(to_bf16(B)), C16(to_bf16(C));
  DeviceArray<float> C32(C);
  gemm_batched(g.ta, g.tb, batch, g.M, g.N, g.K, g.alpha, A_d.get(), per[0].lda, sa, B_d.get(), per[0].ldb, sb,
               g.beta, C32.get(), per[0].ldc, sc);
  gemm_batched(g.ta, g.tb, batch, g.M, g.N, g.K, g.alpha, A_d.get(), per[0].lda, sa, B_d.get(), per[0].ldb, sb,
               g.beta, C16.get(), per[0].ldc, sc);
  expect_close(C32.host(), want, kBf16FromRoundedInputs, "batched fp32 C");
  expect_close(to_f32(C16.host()), want, kGemmBf16Out, "batched bf16 C");
}

// ---- elementwise -------------------------------------------------------------------------

// One mixed combo of binary_forward / binary_backward: out, a, b (and their gradients) are
// bf16 where the flags say so. Runs the GPU kernels and the fp32 reference on the rounded
// values; each output is compared with the tolerance of its dtype.
template <bool OutBf16, bool ABf16, bool BBf16>
void check_binary_combo(BinaryOp op, int64_t n, int64_t nb, const std::string& what) {
  // Each buffer as its dtype holds it (rounded when bf16), as the reference reads it.
  const auto as_stored = [](bool is_bf16, const Vec& v) { return is_bf16 ? rounded(v) : v; };
  const Vec a = as_stored(ABf16, uniform(n, 1)), b = as_stored(BBf16, uniform(nb, 2, 0.5f, 2.0f));
  const Vec dout = as_stored(OutBf16, uniform(n, 3));
  const Vec da0 = as_stored(ABf16, uniform(n, 4)), db0 = as_stored(BBf16, uniform(nb, 5));
  Vec out_ref(n), da_ref = da0, db_ref = db0;
  cpu::binary_forward_ref(op, out_ref.data(), a.data(), b.data(), n, nb);
  cpu::binary_backward_ref(op, da_ref.data(), db_ref.data(), dout.data(), a.data(), b.data(), n, nb);

  // A device buffer of element type bf16 or float, read back as floats.
  const auto up = [](auto tag, const Vec& v) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bf16>) return std::make_unique<DeviceArray<bf16>>(to_bf16(v));
    else return std::make_unique<DeviceArray<float>>(v);
  };
  const auto down = [](const auto& arr) {
    if constexpr (std::is_same_v<std::decay_t<decltype(*arr->get())>, bf16>) return to_f32(arr->host());
    else return arr->host();
  };
  using TO = std::conditional_t<OutBf16, bf16, float>;
  using TA = std::conditional_t<ABf16, bf16, float>;
  using TB = std::conditional_t<BBf16, bf16, float>;
  auto a_d = up(TA{}, a), da_d = up(TA{}, da0), b_d = up(TB{}, b), db_d = up(TB{}, db0);
  auto dout_d = up(TO{}, dout), out_d = up(TO{}, Vec(n, 0.0f));
  binary_forward(op, out_d->get(), a_d->get(), b_d->get(), n, nb);
  binary_backward(op, da_d->get(), db_d->get(), dout_d->get(), a_d->get(), b_d->get(), n, nb);
  expect_close(down(out_d), out_ref, OutBf16 ? kPointwiseBf16 : kPointwise, what + " forward");
  expect_close(down(da_d), da_ref, ABf16 ? kPointwiseBf16 : kPointwise, what + " da (+=)");
  // db's sum over rows runs in fp32 like the fp32 kernel's; a bf16 db adds the one rounding.
  expect_close(down(db_d), db_ref, BBf16 ? kReductionBf16 : kReduction, what + " db (+=)");
}

TEST_F(CudaBf16, BinaryMixedCombos) {
  const int64_t n = 5 * 77;
  for (const int64_t nb : {int64_t(1), int64_t(77), n})
    for (const BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div}) {
      const std::string what = "op " + std::to_string(int(op)) + " nb " + std::to_string(nb);
      check_binary_combo<false, false, true>(op, n, nb, what + " (f32 = f32, bf16)");
      check_binary_combo<true, true, true>(op, n, nb, what + " (bf16 = bf16, bf16)");
      check_binary_combo<true, true, false>(op, n, nb, what + " (bf16 = bf16, f32)");
    }
}

TEST_F(CudaBf16, BinaryBackwardOneGradientAtATimeAndDeterministicDb) {
  const int64_t n = 300 * 33, nb = 33;  // 300 rows: several 64-row partials
  const Vec a = rounded(uniform(n, 11)), dout = rounded(uniform(n, 12)), db0 = uniform(nb, 13);
  const Vec b = uniform(nb, 14);
  DeviceArray<bf16> a_d(to_bf16(a)), dout_d(to_bf16(dout)), da_d(to_bf16(a));
  DeviceArray<float> b_d(b), db1(db0), db2(db0);
  binary_backward(BinaryOp::Add, nullptr, db1.get(), dout_d.get(), a_d.get(), b_d.get(), n, nb);
  binary_backward(BinaryOp::Add, nullptr, db2.get(), dout_d.get(), a_d.get(), b_d.get(), n, nb);
  expect_bitwise(db1.host(), db2.host(), "db twice: same bits");
  binary_backward(BinaryOp::Add, da_d.get(), nullptr, dout_d.get(), a_d.get(), b_d.get(), n, nb);
  Vec da_ref = a;
  for (int64_t i = 0; i < n; ++i) da_ref[i] += dout[i];  // d(a + b)/da = 1
  expect_close(to_f32(da_d.host()), da_ref, kPointwiseBf16, "da alone (+=)");
}

TEST_F(CudaBf16, ScaleAndSumRows) {
  const int64_t rows = 7, cols = 45, n = rows * cols;
  const Vec a = rounded(uniform(n, 21));
  DeviceArray<bf16> a_d(to_bf16(a)), out_d{size_t(n)};
  DeviceArray<float> rows_d{size_t(rows)};
  scale_forward(out_d.get(), a_d.get(), -1.5f, n);
  // One fp32 product (exact: 8-bit x 2-bit mantissas) rounded once: the host rounding, bitwise.
  const Bf16Vec got = out_d.host();
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[i].bits, f32_to_bf16(a[i] * -1.5f)) << i;
  Vec rows_ref(rows);
  cpu::sum_rows_forward(rows_ref.data(), a.data(), rows, cols);  // double per row on both sides
  sum_rows_forward(rows_d.get(), a_d.get(), rows, cols);
  expect_close(rows_d.host(), rows_ref, kReduction, "sum_rows of bf16");
}

// ---- norms -----------------------------------------------------------------------------------

TEST_F(CudaBf16, LayerNormBf16OutputAndBf16Dout) {
  for (const int64_t N : {int64_t(1), int64_t(74)})
    for (const int64_t C : {int64_t(5), int64_t(96), int64_t(150)}) {
      const std::string what = "N=" + std::to_string(N) + " C=" + std::to_string(C);
      const Vec x = uniform(N * C, 31, -2.0f, 3.0f), w = uniform(C, 32), bias = uniform(C, 33);
      const Vec dout = rounded(uniform(N * C, 34));
      const Vec dx0 = uniform(N * C, 35), dw0 = uniform(C, 36), db0 = uniform(C, 37);
      Vec out_ref(N * C), mean_ref(N), rstd_ref(N), dx_ref = dx0, dw_ref = dw0, db_ref = db0;
      cpu::layernorm_forward_ref(out_ref.data(), mean_ref.data(), rstd_ref.data(), x.data(), w.data(), bias.data(), N,
                                 C, 1e-5f);
      cpu::layernorm_backward_ref(dx_ref.data(), dw_ref.data(), db_ref.data(), dout.data(), x.data(), w.data(),
                                  mean_ref.data(), rstd_ref.data(), N, C);

      DeviceArray<float> x_d(x), w_d(w), b_d(bias), mean_d{size_t(N)}, rstd_d{size_t(N)}, dx_d(dx0), dw_d(dw0),
          db_d(db0);
      DeviceArray<bf16> out_d{size_t(N * C)}, dout_d(to_bf16(dout));
      layernorm_forward(out_d.get(), mean_d.get(), rstd_d.get(), x_d.get(), w_d.get(), b_d.get(), N, C, 1e-5f);
      expect_close(to_f32(out_d.host()), out_ref, kReductionBf16, what + " out (bf16)");
      expect_close(mean_d.host(), mean_ref, kReduction, what + " mean (fp32)");
      expect_close(rstd_d.host(), rstd_ref, kReduction, what + " rstd (fp32)");
      layernorm_backward(dx_d.get(), dw_d.get(), db_d.get(), dout_d.get(), x_d.get(), w_d.get(), mean_d.get(),
                         rstd_d.get(), N, C);
      // bf16 dout, everything else fp32: the reference reads the same dout, so fp32 bounds.
      expect_close(dx_d.host(), dx_ref, kReduction, what + " dinp (+=)");
      expect_close(dw_d.host(), dw_ref, kReduction, what + " dweight (+=)");
      expect_close(db_d.host(), db_ref, kReduction, what + " dbias (+=)");
    }
}

TEST_F(CudaBf16, RmsNormBf16OutputAndBf16Dout) {
  for (const int64_t N : {int64_t(1), int64_t(131)})
    for (const int64_t C : {int64_t(7), int64_t(96), int64_t(100)}) {
      const std::string what = "N=" + std::to_string(N) + " C=" + std::to_string(C);
      const Vec x = uniform(N * C, 41, -2.0f, 3.0f), w = uniform(C, 42), dout = rounded(uniform(N * C, 43));
      const Vec dx0 = uniform(N * C, 44), dw0 = uniform(C, 45);
      Vec out_ref(N * C), rstd_ref(N), dx_ref = dx0, dw_ref = dw0;
      cpu::rmsnorm_forward_ref(out_ref.data(), rstd_ref.data(), x.data(), w.data(), N, C, 1e-6f);
      cpu::rmsnorm_backward_ref(dx_ref.data(), dw_ref.data(), dout.data(), x.data(), w.data(), rstd_ref.data(), N, C);

      DeviceArray<float> x_d(x), w_d(w), rstd_d{size_t(N)}, dx_d(dx0), dw_d(dw0);
      DeviceArray<bf16> out_d{size_t(N * C)}, dout_d(to_bf16(dout));
      rmsnorm_forward(out_d.get(), rstd_d.get(), x_d.get(), w_d.get(), N, C, 1e-6f);
      rmsnorm_backward(dx_d.get(), dw_d.get(), dout_d.get(), x_d.get(), w_d.get(), rstd_d.get(), N, C);
      expect_close(to_f32(out_d.host()), out_ref, kReductionBf16, what + " out (bf16)");
      expect_close(rstd_d.host(), rstd_ref, kReduction, what + " rstd (fp32)");
      expect_close(dx_d.host(), dx_ref, kReduction, what + " dinp (+=)");
      expect_close(dw_d.host(), dw_ref, kReduction, what + " dweight (+=)");
    }
}

// ---- activations -------------------------------------------------------------------------

TEST_F(CudaBf16, ActivationsAllBf16) {
  for (const int64_t n : {int64_t(1), int64_t(1000)}) {
    const std::string size = " n=" + std::to_string(n);
    const Vec x = rounded(uniform(n, 51, -6.0f, 6.0f)), up = rounded(uniform(n, 52)), dout = rounded(uniform(n, 53));
    const Vec d0 = rounded(uniform(n, 54)), d1 = rounded(uniform(n, 55));
    DeviceArray<bf16> x_d(to_bf16(x)), up_d(to_bf16(up)), dout_d(to_bf16(dout)), out_d{size_t(n)};
    for (const bool tanh_approx : {true, false}) {
      const std::string what = (tanh_approx ? "gelu tanh" : "gelu erf") + size;
      Vec out_ref(n), dx_ref = d0;
      cpu::gelu_forward_ref(out_ref.data(), x.data(), n, tanh_approx);
      cpu::gelu_backward_ref(dx_ref.data(), dout.data(), x.data(), n, tanh_approx);
      DeviceArray<bf16> dx_d(to_bf16(d0));
      gelu_forward(out_d.get(), x_d.get(), n, tanh_approx);
      gelu_backward(dx_d.get(), dout_d.get(), x_d.get(), n, tanh_approx);
      expect_close(to_f32(out_d.host()), out_ref, kPointwiseBf16, what + " forward");
      expect_close(to_f32(dx_d.host()), dx_ref, kPointwiseBf16, what + " backward (+=)");
    }
    {
      Vec out_ref(n), dx_ref = d0;
      cpu::silu_forward_ref(out_ref.data(), x.data(), n);
      cpu::silu_backward_ref(dx_ref.data(), dout.data(), x.data(), n);
      DeviceArray<bf16> dx_d(to_bf16(d0));
      silu_forward(out_d.get(), x_d.get(), n);
      silu_backward(dx_d.get(), dout_d.get(), x_d.get(), n);
      expect_close(to_f32(out_d.host()), out_ref, kPointwiseBf16, "silu forward" + size);
      expect_close(to_f32(dx_d.host()), dx_ref, kPointwiseBf16, "silu backward (+=)" + size);
    }
    {
      Vec out_ref(n), dg_ref = d0, du_ref = d1;
      cpu::swiglu_forward_ref(out_ref.data(), x.data(), up.data(), n);
      cpu::swiglu_backward_ref(dg_ref.data(), du_ref.data(), dout.data(), x.data(), up.data(), n);
      DeviceArray<bf16> dg_d(to_bf16(d0)), du_d(to_bf16(d1));
      swiglu_forward(out_d.get(), x_d.get(), up_d.get(), n);
      swiglu_backward(dg_d.get(), du_d.get(), dout_d.get(), x_d.get(), up_d.get(), n);
      expect_close(to_f32(out_d.host()), out_ref, kPointwiseBf16, "swiglu forward" + size);
      expect_close(to_f32(dg_d.host()), dg_ref, kPointwiseBf16, "swiglu dgate (+=)" + size);
      expect_close(to_f32(du_d.host()), du_ref, kPointwiseBf16, "swiglu dup (+=)" + size);
      // A frozen gate (nullptr) leaves dgate alone and still accumulates dup.
      const Bf16Vec dg_now = dg_d.host();
      swiglu_backward(nullptr, du_d.get(), dout_d.get(), x_d.get(), up_d.get(), n);
      expect_bitwise(dg_d.host(), dg_now, "swiglu dgate untouched" + size);
    }
  }
}

// ---- rope --------------------------------------------------------------------------------

TEST_F(CudaBf16, RopeBf16BothLayoutsInPlace) {
  const int64_t B = 2, T = 7, NH = 3, HD = 18, pos0 = 4, T_max = 16, n = B * T * NH * HD;  // HD/2 = 9 pairs
  Vec cos_t(T_max * HD / 2), sin_t(T_max * HD / 2);
  cpu::rope_table(cos_t.data(), sin_t.data(), T_max, HD, 10000.0f);
  const Vec x = rounded(uniform(n, 61)), dout = rounded(uniform(n, 62)), dx0 = rounded(uniform(n, 63));
  DeviceArray<float> cos_d(cos_t), sin_d(sin_t);
  DeviceArray<bf16> dout_d(to_bf16(dout)), out_d{size_t(n)};
  for (const bool interleaved : {false, true}) {
    const std::string what = interleaved ? "interleaved" : "half-split";
    Vec out_ref(n), dx_ref = dx0;
    cpu::rope_forward_ref(out_ref.data(), x.data(), cos_t.data(), sin_t.data(), B, T, NH, HD, pos0, interleaved);
    cpu::rope_backward_ref(dx_ref.data(), dout.data(), cos_t.data(), sin_t.data(), B, T, NH, HD, pos0, interleaved);
    DeviceArray<bf16> x_d(to_bf16(x)), dx_d(to_bf16(dx0));
    rope_forward(out_d.get(), x_d.get(), cos_d.get(), sin_d.get(), B, T, NH, HD, pos0, interleaved);
    expect_close(to_f32(out_d.host()), out_ref, kPointwiseBf16, what + " forward");
    rope_forward(x_d.get(), x_d.get(), cos_d.get(), sin_d.get(), B, T, NH, HD, pos0, interleaved);
    expect_bitwise(x_d.host(), out_d.host(), what + " in place");
    rope_backward(dx_d.get(), dout_d.get(), cos_d.get(), sin_d.get(), B, T, NH, HD, pos0, interleaved);
    expect_close(to_f32(dx_d.host()), dx_ref, kPointwiseBf16, what + " backward (+=)");
  }
}

// ---- cross-entropy -----------------------------------------------------------------------

TEST_F(CudaBf16, CrossEntropyBf16LogitsWithIgnoredRows) {
  const int64_t N = 23, V = 1003;
  const int32_t ignore = -100;
  std::vector<int32_t> targets = random_ids(N, int32_t(V), 71);
  for (int64_t n = 0; n < N; n += 5) targets[n] = ignore;
  targets[1] = 0;
  targets[2] = int32_t(V - 1);
  const Vec logits = rounded(uniform(N * V, 72, -10.0f, 10.0f)), dlosses = uniform(N, 73);
  const Vec dx0 = rounded(uniform(N * V, 74, -1e-3f, 1e-3f));  // gradient-sized, so p and the one-hot term matter
  Vec losses_ref(N), lse_ref(N), dx_ref = dx0;
  cpu::cross_entropy_forward_ref(losses_ref.data(), lse_ref.data(), logits.data(), targets.data(), N, V, ignore);
  cpu::cross_entropy_backward_ref(dx_ref.data(), dlosses.data(), logits.data(), lse_ref.data(), targets.data(), N, V,
                                  ignore);

  DeviceArray<int32_t> t_d(targets);
  DeviceArray<float> dl_d(dlosses), losses_d{size_t(N)}, lse_d{size_t(N)};
  DeviceArray<bf16> x_d(to_bf16(logits)), dx_d(to_bf16(dx0));
  cross_entropy_forward(losses_d.get(), lse_d.get(), x_d.get(), t_d.get(), N, V, ignore);
  cross_entropy_backward(dx_d.get(), dl_d.get(), x_d.get(), lse_d.get(), t_d.get(), N, V, ignore);
  expect_close(losses_d.host(), losses_ref, kReduction, "losses (fp32)");
  expect_close(lse_d.host(), lse_ref, kReduction, "lse (fp32)");
  const Vec dx = to_f32(dx_d.host());
  expect_close(dx, dx_ref, kReductionBf16, "dlogits (bf16, +=)");
  for (int64_t v = 0; v < V; ++v) ASSERT_EQ(dx[v], dx0[v]) << "ignored row 0 must be untouched";
}

// The target's element is dx + dl p - dl. With dx = 1 and dl = 1 that is p (~1/V here):
// computed in fp32 and rounded once it is p to 2^-8; had dx + dl p been stored to bf16
// first (ulp 2^-7 near 1), p would be lost to a multiple of 2^-7 before the one-hot term.
TEST_F(CudaBf16, CrossEntropyBf16TargetGradientIsRoundedOnce) {
  const int64_t N = 3, V = 37;
  const std::vector<int32_t> targets = {0, 17, 36};
  const Vec logits = rounded(uniform(N * V, 81)), dlosses(N, 1.0f), dx0(N * V, 1.0f);
  Vec losses_ref(N), lse_ref(N), dx_ref = dx0;
  cpu::cross_entropy_forward_ref(losses_ref.data(), lse_ref.data(), logits.data(), targets.data(), N, V, -100);
  cpu::cross_entropy_backward_ref(dx_ref.data(), dlosses.data(), logits.data(), lse_ref.data(), targets.data(), N, V,
                                  -100);
  DeviceArray<int32_t> t_d(targets);
  DeviceArray<float> dl_d(dlosses), losses_d{size_t(N)}, lse_d{size_t(N)};
  DeviceArray<bf16> x_d(to_bf16(logits)), dx_d(to_bf16(dx0));
  cross_entropy_forward(losses_d.get(), lse_d.get(), x_d.get(), t_d.get(), N, V, -100);
  cross_entropy_backward(dx_d.get(), dl_d.get(), x_d.get(), lse_d.get(), t_d.get(), N, V, -100);
  const Vec dx = to_f32(dx_d.host());
  for (int64_t n = 0; n < N; ++n) {
    const int64_t i = n * V + targets[n];
    // 1e-6: fp32's error on 1 + p (2^-24) and on p itself, far below 2^-7.
    EXPECT_NEAR(dx[i], dx_ref[i], std::fabs(dx_ref[i]) * kBf16Rounding + 1e-6) << "row " << n;
  }
  expect_close(dx, dx_ref, kReductionBf16, "dlogits (bf16, +=)");
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
