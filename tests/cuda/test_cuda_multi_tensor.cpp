// The multi-tensor kernels (kernels/cuda/multi_tensor_*.cu) against the per-tensor CUDA
// kernels and the CPU kernels on the same inputs, over tensors of awkward sizes: empty, one
// element, one chunk exactly (32768), one element past it, and 1000003 (a prime: 31 chunks
// and a ragged tail). AdamW must be bit for bit equal to the per-tensor kernel and to the
// CPU kernel's formula without FMA contraction, with and without decay and with a folded
// clipping scale; the bf16 shadow it writes must equal cast_forward
// of the new params; the sum of squares must be within double rounding of the CPU's.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"
#include "tensor/dtype.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

using Vec = std::vector<float>;

const std::vector<int64_t> kSizes{0, 1, 1000003, 37, 32768, 32769};
constexpr float kLr = 1e-2f, kBeta1 = 0.9f, kBeta2 = 0.95f, kEps = 1e-8f;

float decay_of(size_t i) { return i % 2 ? 0.1f : 0.0f; }  // every other tensor decayed

// A float product rounded on its own: a volatile store cannot be fused into an FMA.
float rounded(float x) {
  volatile float r = x;
  return r;
}

// kernels/cpu/adamw.cpp's scalars and formula lines with no FMA contraction: what its
// AVX-512 path computes (its scalar loop may be contracted by GCC under -march=native, so
// the CPU kernel itself is compared within an ulp-level bound below).
void adamw_unfused(float* param, const float* grad, float* m, float* v, int64_t n, float weight_decay, int64_t step) {
  const double bc1 = 1.0 - std::pow(double(kBeta1), double(step));
  const double bc2 = 1.0 - std::pow(double(kBeta2), double(step));
  const float omb1 = 1.0f - kBeta1, omb2 = 1.0f - kBeta2, decay = 1.0f - kLr * weight_decay;
  const float step_size = float(double(kLr) / bc1), inv_sqrt_bc2 = float(1.0 / std::sqrt(bc2));
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    const float mi = rounded(kBeta1 * m[i]) + rounded(omb1 * g);
    const float vi = rounded(kBeta2 * v[i]) + rounded(omb2 * rounded(g * g));
    m[i] = mi;
    v[i] = vi;
    param[i] = rounded(param[i] * decay) - rounded(step_size * mi) / (rounded(std::sqrt(vi) * inv_sqrt_bc2) + kEps);
  }
}

class CudaMultiTensor : public CudaTest {};

// One tensor's state three ways: host (CPU kernel), device per tensor, device multi-tensor.
struct Param {
  int64_t n;
  Vec p, m, v;     // host, for adamw_unfused
  Vec pc, mc, vc;  // host, for the CPU kernel kernels::adamw_update
  std::unique_ptr<DeviceArray<float>> p1, m1, v1;  // per-tensor adamw_update
  std::unique_ptr<DeviceArray<float>> p2, m2, v2;  // adamw_update_multi
  std::unique_ptr<DeviceArray<bf16>> shadow;       // nullptr for every third tensor
};

std::vector<Param> make_params() {
  std::vector<Param> ps;
  for (size_t i = 0; i < kSizes.size(); ++i) {
    const int64_t n = kSizes[i];
    Param q;
    q.n = n;
    q.p = uniform(n, uint32_t(10 + i));
    q.m = uniform(n, uint32_t(20 + i), -0.01f, 0.01f);
    q.v = uniform(n, uint32_t(30 + i), 0.0f, 1e-4f);
    q.pc = q.p;
    q.mc = q.m;
    q.vc = q.v;
    q.p1 = std::make_unique<DeviceArray<float>>(q.p);
    q.m1 = std::make_unique<DeviceArray<float>>(q.m);
    q.v1 = std::make_unique<DeviceArray<float>>(q.v);
    q.p2 = std::make_unique<DeviceArray<float>>(q.p);
    q.m2 = std::make_unique<DeviceArray<float>>(q.m);
    q.v2 = std::make_unique<DeviceArray<float>>(q.v);
    if (i % 3 != 0) q.shadow = std::make_unique<DeviceArray<bf16>>(size_t(n));
    ps.push_back(std::move(q));
  }
  return ps;
}

void check_adamw(float grad_scale) {
  std::vector<Param> ps = make_params();
  DeviceTable table;
  for (int64_t step = 1; step <= 3; ++step) {
    std::vector<AdamWTensor> tensors;
    std::vector<std::unique_ptr<DeviceArray<float>>> grads;  // kept alive until the launch
    std::vector<Vec> grads_host;
    for (size_t i = 0; i < ps.size(); ++i) {
      Param& q = ps[i];
      Vec g = uniform(q.n, uint32_t(100 * step + i), -0.1f, 0.1f);
      if (q.n > 0) g[0] = 0.0f;  // a zero gradient: only decay and the old moments act
      grads.push_back(std::make_unique<DeviceArray<float>>(g));
      // References: scale the gradient first (the clip pass), then update.
      Vec gs = g;
      if (grad_scale != 1.0f)
        for (float& x : gs) x *= grad_scale;
      adamw_unfused(q.p.data(), gs.data(), q.m.data(), q.v.data(), q.n, decay_of(i), step);
      kernels::adamw_update(q.pc.data(), gs.data(), q.mc.data(), q.vc.data(), q.n, kLr, kBeta1, kBeta2, kEps,
                            decay_of(i), step);
      DeviceArray<float> scaled(size_t(q.n));
      scale_forward(scaled.get(), grads.back()->get(), grad_scale, q.n);
      adamw_update(q.p1->get(), grad_scale != 1.0f ? scaled.get() : grads.back()->get(), q.m1->get(), q.v1->get(),
                   q.n, kLr, kBeta1, kBeta2, kEps, decay_of(i), step);
      tensors.push_back({q.p2->get(), grads.back()->get(), q.m2->get(), q.v2->get(),
                         q.shadow ? q.shadow->get() : nullptr, q.n, decay_of(i)});
      grads_host.push_back(std::move(g));
    }
    adamw_update_multi(table, tensors, kLr, kBeta1, kBeta2, kEps, grad_scale, step);
    for (size_t i = 0; i < ps.size(); ++i)
      expect_bitwise(grads[i]->host(), grads_host[i], "the stored gradient is left unscaled");
  }
  for (size_t i = 0; i < ps.size(); ++i) {
    const Param& q = ps[i];
    const std::string what = str("tensor ", i, " (n=", q.n, ", scale ", grad_scale, ")");
    expect_bitwise(q.p2->host(), q.p1->host(), what + ": param, multi vs per-tensor");
    expect_bitwise(q.m2->host(), q.m1->host(), what + ": m, multi vs per-tensor");
    expect_bitwise(q.v2->host(), q.v1->host(), what + ": v, multi vs per-tensor");
    expect_bitwise(q.p2->host(), q.p, what + ": param, multi vs unfused CPU formula");
    expect_bitwise(q.m2->host(), q.m, what + ": m, multi vs unfused CPU formula");
    expect_bitwise(q.v2->host(), q.v, what + ": v, multi vs unfused CPU formula");
    // An FMA in place of a multiply-add moves a result by at most an ulp or so of the
    // operands, amplified over three steps by the division: kPointwise (a few ulp).
    expect_close(q.p2->host(), q.pc, kPointwise, what + ": param, multi vs CPU kernel");
    expect_close(q.m2->host(), q.mc, kPointwise, what + ": m, multi vs CPU kernel");
    expect_close(q.v2->host(), q.vc, kPointwise, what + ": v, multi vs CPU kernel");
    if (!q.shadow) continue;
    const std::vector<bf16> shadow = q.shadow->host();
    size_t bad = 0;
    for (int64_t j = 0; j < q.n; ++j) bad += shadow[size_t(j)].bits != f32_to_bf16(q.p[size_t(j)]);
    EXPECT_EQ(bad, 0u) << what << ": shadow elements that are not the new param rounded to bf16";
  }
}

TEST_F(CudaMultiTensor, AdamWEqualsPerTensorAndCpuBitForBit) { check_adamw(1.0f); }
TEST_F(CudaMultiTensor, AdamWWithClipScaleEqualsScaleThenStep) { check_adamw(0.37f); }

TEST_F(CudaMultiTensor, TableUploadsOnlyWhenADescriptorChanges) {
  DeviceArray<float> p(uniform(100, 1)), g(uniform(100, 2)), m(size_t(100)), v(size_t(100)), g2(uniform(100, 3));
  DeviceTable table;
  std::vector<AdamWTensor> tensors{{p.get(), g.get(), m.get(), v.get(), nullptr, 100, 0.1f}};
  adamw_update_multi(table, tensors, kLr, kBeta1, kBeta2, kEps, 1.0f, 1);
  adamw_update_multi(table, tensors, kLr, kBeta1, kBeta2, kEps, 1.0f, 2);
  EXPECT_EQ(table.uploads(), 1) << "same buffers: the device table is reused";
  tensors[0].grad = g2.get();
  adamw_update_multi(table, tensors, kLr, kBeta1, kBeta2, kEps, 1.0f, 3);
  EXPECT_EQ(table.uploads(), 2) << "a moved gradient: uploaded again";
  adamw_update_multi(table, {}, kLr, kBeta1, kBeta2, kEps, 1.0f, 4);  // nothing to do
  EXPECT_EQ(table.uploads(), 2);
}

TEST_F(CudaMultiTensor, SumOfSquaresWithinDoubleRoundingOfTheCpu) {
  std::vector<std::unique_ptr<DeviceArray<float>>> arrays;
  std::vector<GradSpan> spans;
  double want = 0.0;  // the CPU's way: double squares, summed in order
  int64_t total_n = 0;
  for (size_t i = 0; i < kSizes.size(); ++i) {
    Vec g = uniform(kSizes[i], uint32_t(40 + i), -3.0f, 3.0f);
    for (float x : g) want += double(x) * double(x);
    total_n += kSizes[i];
    arrays.push_back(std::make_unique<DeviceArray<float>>(g));
    spans.push_back({arrays.back()->get(), kSizes[i]});
  }
  DeviceTable table;
  const double got = sum_of_squares_multi(table, spans);
  // Both sums add the same exact terms (a float squared is exact in double), in different
  // orders; each is within (N - 1) u of the exact sum (u = 2^-53, all terms >= 0; Higham,
  // "Accuracy and Stability of Numerical Algorithms", 2nd ed., (4.4)), so they differ by at
  // most 2 (N - 1) u of it. A dropped or doubled element would be off by ~1/N, 1e9 times more.
  const double bound = 2.0 * double(total_n - 1) * std::ldexp(1.0, -53) * want;
  EXPECT_LE(std::fabs(got - want), bound) << "got " << got << ", want " << want;
  EXPECT_EQ(sum_of_squares_multi(table, spans), got) << "a fixed partition: the same bits every call";
  EXPECT_EQ(table.uploads(), 1);
  EXPECT_EQ(sum_of_squares_multi(table, {}), 0.0);
}

TEST_F(CudaMultiTensor, ScaleEqualsScaleForwardBitForBit) {
  std::vector<std::unique_ptr<DeviceArray<float>>> multi, single;
  std::vector<GradSpan> spans;
  const float s = 0.123f;
  for (size_t i = 0; i < kSizes.size(); ++i) {
    const Vec g = uniform(kSizes[i], uint32_t(50 + i), -3.0f, 3.0f);
    multi.push_back(std::make_unique<DeviceArray<float>>(g));
    single.push_back(std::make_unique<DeviceArray<float>>(g));
    spans.push_back({multi.back()->get(), kSizes[i]});
    scale_forward(single.back()->get(), single.back()->get(), s, kSizes[i]);
  }
  DeviceTable table;
  scale_multi(table, spans, s);
  for (size_t i = 0; i < kSizes.size(); ++i)
    expect_bitwise(multi[i]->host(), single[i]->host(), str("scaled tensor ", i));
}

TEST_F(CudaMultiTensor, BadArgumentsRaiseErrors) {
  DeviceTable table;
  const std::vector<AdamWTensor> null_buffers{{nullptr, nullptr, nullptr, nullptr, nullptr, 5, 0.0f}};
  EXPECT_THROW(adamw_update_multi(table, null_buffers, kLr, kBeta1, kBeta2, kEps, 1.0f, 1), sllm::Error);
  EXPECT_THROW(adamw_update_multi(table, {}, kLr, kBeta1, kBeta2, kEps, 1.0f, 0), sllm::Error);
  const std::vector<GradSpan> negative{{nullptr, -1}};
  EXPECT_THROW(sum_of_squares_multi(table, negative), sllm::Error);
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
