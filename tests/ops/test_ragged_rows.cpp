// ops::attention_rows and ops::rope_rows (a ragged batch: each row at its own position, with
// its own number of real query rows) against the naive references (kernels::
// attention_forward_ref, rope_forward_ref) run on each row alone; padding rows come out 0,
// and asking for a gradient is an error (they are inference-only ops).
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/kernels.h"
#include "ops/ops.h"

namespace sllm::ops {
namespace {

Tensor random_tensor(const Shape& shape, uint64_t seed) {
  Rng rng(seed);
  Tensor t = Tensor::empty(shape, DType::F32);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_f32()[i] = static_cast<float>(rng.normal());
  return t;
}

TEST(RaggedRows, AttentionRowsMatchesTheReferenceOnEachRowAlone) {
  // 3 rows, T = 4 query rows, a cache of Tk = 40 keys; GQA 6 query heads over 2 kv heads, HD 8.
  const int64_t B = 3, T = 4, Tk = 40, NH = 6, NKV = 2, HD = 8, C = NH * HD, kvC = NKV * HD;
  const std::vector<int64_t> pos0 = {0, 17, 35}, n_new = {4, 1, 3};
  const Tensor q = random_tensor({B, T, C}, 1), k = random_tensor({B, Tk, kvC}, 2), v = random_tensor({B, Tk, kvC}, 3);
  autograd::NoGradGuard no_grad;
  const Tensor out = attention_rows(q, k, v, NH, NKV, pos0, n_new);
  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t p = pos0[size_t(b)], n = n_new[size_t(b)];
    std::vector<float> want(static_cast<size_t>(n * C)), lse(static_cast<size_t>(NH * n));
    kernels::attention_forward_ref(want.data(), lse.data(), q.f32() + b * T * C, k.f32() + b * Tk * kvC,
                                   v.f32() + b * Tk * kvC, 1, n, p + n, NH, NKV, HD, p, scale);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) {
        const float got = out.f32()[(b * T + t) * C + c];
        if (t < n)
          EXPECT_NEAR(got, want[size_t(t * C + c)], 1e-5f) << "row " << b << " query " << t;
        else
          EXPECT_EQ(got, 0.0f) << "padding query " << t << " of row " << b;
      }
  }
}

TEST(RaggedRows, RopeRowsMatchesTheReferenceAtEachRowsPositions) {
  const int64_t B = 2, T = 3, NH = 2, HD = 8, C = NH * HD, T_max = 32;
  std::vector<float> cos(size_t(T_max * HD / 2)), sin(cos.size());
  kernels::rope_table(cos.data(), sin.data(), T_max, HD, 10000.0f);
  const Tensor tc = Tensor::from_floats(cos, {T_max, HD / 2}), ts = Tensor::from_floats(sin, {T_max, HD / 2});
  const Tensor x = random_tensor({B, T, C}, 4);
  const std::vector<int64_t> pos0 = {5, 28}, n_new = {3, 2};
  autograd::NoGradGuard no_grad;
  const Tensor out = rope_rows(x, tc, ts, NH, pos0, n_new, false);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = n_new[size_t(b)];
    std::vector<float> want(static_cast<size_t>(n * C));
    kernels::rope_forward_ref(want.data(), x.f32() + b * T * C, cos.data(), sin.data(), 1, n, NH, HD, pos0[size_t(b)], false);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) {
        const float got = out.f32()[(b * T + t) * C + c];
        if (t < n)
          EXPECT_NEAR(got, want[size_t(t * C + c)], 1e-6f) << "row " << b << " position " << t;
        else
          EXPECT_EQ(got, 0.0f) << "padding position " << t << " of row " << b;
      }
  }
}

TEST(RaggedRows, BadRowsAndGradientsAreErrors) {
  const Tensor q = random_tensor({2, 1, 8}, 1), k = random_tensor({2, 5, 8}, 2), v = random_tensor({2, 5, 8}, 3);
  {
    autograd::NoGradGuard no_grad;
    EXPECT_THROW(attention_rows(q, k, v, 2, 2, {0}, {1}), Error);         // one entry per row
    EXPECT_THROW(attention_rows(q, k, v, 2, 2, {0, 5}, {1, 1}), Error);   // position 5 needs 6 keys
    EXPECT_THROW(attention_rows(q, k, v, 2, 2, {0, 0}, {1, 2}), Error);   // 2 new of T = 1
  }
  Tensor qg = q.detach();
  qg.set_requires_grad(true);
  EXPECT_THROW(attention_rows(qg, k, v, 2, 2, {0, 0}, {1, 1}), Error);
}

}  // namespace
}  // namespace sllm::ops
