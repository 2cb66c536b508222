// bf16 mixed precision at the ops and model level (src/ops/mixed_precision.h): each op's
// bf16 path against the fp32 CPU op fed the same bf16-rounded values, the errors users get
// when bf16 is asked for where it cannot run, and whole training steps of tiny GPT-2 and
// Llama models in bf16 on the GPU against fp32 on the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "core/error.h"
#include "nn/config.h"
#include "nn/transformer.h"
#include "ops/device.h"
#include "ops/ops.h"
#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

// ---- tolerances ---------------------------------------------------------------------------
// One bf16 rounding: bf16 keeps 8 significant bits, so round to nearest is within half an
// ulp, which is 2^-8 = 3.9e-3 of the value just above a power of two (unit roundoff
// u = 2^-8). An op whose inputs are bf16-exact and whose result is rounded once is within u
// of the fp32 result on the same inputs, plus fp32 summation-order noise (~1e-6): 4e-3 of
// each element's magnitude, plus 1e-5 of the tensor's scale for elements near zero.
constexpr Tolerance kOneRounding{1e-5, 4e-3};
// fp32 results computed from bf16-exact inputs (the fp32 weight gradient, the loss): only
// the summation order differs from the CPU.
constexpr Tolerance kFp32FromRounded{1e-5, 1e-5};
// A whole model in bf16 vs fp32 from the same fp32 weights: every matmul input and
// activation is rounded (2^-9 each), a tiny model chains ~15 such roundings per path and
// averages them over 32-128 terms per sum, so the relative L2 distance of logits and
// gradients is below 1% (the simulator printed logits 3.2e-3 / 3.3e-3 and worst gradients
// 6.3e-3 / 7.9e-3 for the GPT-2 / Llama models below). 4e-2 leaves margin
// for the GPU's different summation order while a wrong formula (a dropped residual, a
// transposed weight, an unscaled gradient) is off by O(1).
constexpr double kModelRelL2 = 4e-2;

std::vector<float> rounded_to_bf16(std::vector<float> v) {
  for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
  return v;
}

Tensor host(const std::vector<float>& v, const Shape& shape) { return Tensor::from_floats(v, shape); }

class MixedPrecision : public CudaTest {
 protected:
  void SetUp() override {
    CudaTest::SetUp();
    if (IsSkipped()) return;
    ops::init_device(Device::CUDA);
    set_tf32(false);
  }
};

TEST_F(MixedPrecision, CastRoundsToNearestEvenAndCastsTheGradientBack) {
  const std::vector<float> v = uniform(257, 1, -3.0f, 3.0f);
  Tensor x = host(v, {257}).to(Device::CUDA);
  x.set_requires_grad(true);
  Tensor y = ops::cast(x, DType::BF16);
  ASSERT_EQ(y.dtype(), DType::BF16);
  ASSERT_EQ(y.device(), Device::CUDA);
  const Tensor y_host = y.to(Device::CPU);
  for (int64_t i = 0; i < 257; ++i) ASSERT_EQ(y_host.data<uint16_t>()[i], f32_to_bf16(v[size_t(i)])) << i;
  // loss = sum(2 * cast(y, f32)): dx = 2 everywhere, through bf16 and back to f32.
  autograd::backward(ops::sum(ops::scale(ops::cast(y, DType::F32), 2.0f)));
  ASSERT_EQ(x.grad().dtype(), DType::F32);
  for (float g : x.grad().to_floats()) ASSERT_EQ(g, 2.0f);
}

TEST_F(MixedPrecision, LinearMatchesFp32OnRoundedInputs) {
  const int64_t N = 37, in = 70, out = 45;
  const std::vector<float> xv = rounded_to_bf16(uniform(size_t(N * in), 2, -1.0f, 1.0f));
  const std::vector<float> wv = uniform(size_t(out * in), 3, -0.5f, 0.5f), bv = uniform(size_t(out), 4, -1.0f, 1.0f);
  const std::vector<float> rv = rounded_to_bf16(uniform(size_t(N * out), 5, -1.0f, 1.0f));  // dL/dy

  // CPU reference: fp32 linear on the rounded x, weight and bias (the bias is rounded to
  // bf16 and added inside the GEMM's fp32 sum, as PyTorch's autocast + cuBLASLt epilogue do).
  Tensor x_ref = host(xv, {N, in}), w_ref = host(rounded_to_bf16(wv), {out, in}), b_ref = host(rounded_to_bf16(bv), {out});
  for (Tensor* t : {&x_ref, &w_ref, &b_ref}) t->set_requires_grad(true);
  Tensor y_ref = ops::linear(x_ref, w_ref, b_ref);
  autograd::backward(ops::sum(ops::mul(y_ref, host(rv, {N, out}))));

  // GPU: bf16 x, fp32 master weight and bias.
  Tensor x = ops::cast(host(xv, {N, in}).to(Device::CUDA), DType::BF16).detach();
  Tensor w = host(wv, {out, in}).to(Device::CUDA), b = host(bv, {out}).to(Device::CUDA);
  for (Tensor* t : {&x, &w, &b}) t->set_requires_grad(true);
  Tensor y = ops::linear(x, w, b);
  ASSERT_EQ(y.dtype(), DType::BF16);
  // y = x·Wᵀ + b comes from cuBLASLt's bias epilogue, which on an H200 rounds the product
  // x·Wᵀ to bf16 before adding b for some shapes (kernels/cuda/gemm_lt.cu): two roundings,
  // each within u = 2^-8 of its own value, |y - ref| <= u (|ref - b| + |ref|), plus fp32
  // summation-order noise. After cancellation (|y| << |x·Wᵀ|) that is many ulps of y, so the
  // bound is per element; a dropped or doubled bias, or a wrong row, is off by O(1).
  const std::vector<float> got = y.to_floats(), want = y_ref.to_floats(), bias = b_ref.to_floats();
  for (size_t i = 0; i < want.size(); ++i) {
    const double product = std::fabs(double(want[i]) - bias[i % size_t(out)]);
    const double bound = 3.9e-3 * (product + std::fabs(double(want[i]))) + 1e-5;
    ASSERT_LE(std::fabs(double(got[i]) - want[i]), bound) << "y element " << i;
  }
  Tensor r = ops::cast(host(rv, {N, out}).to(Device::CUDA), DType::BF16);
  autograd::backward(ops::sum(ops::cast(ops::mul(y, r), DType::F32)));
  ASSERT_EQ(x.grad().dtype(), DType::BF16);
  ASSERT_EQ(w.grad().dtype(), DType::F32);
  ASSERT_EQ(b.grad().dtype(), DType::F32);
  // dy = r rounded once more by the bf16 product's backward (r * 1 is exact): dx = dy W is
  // rounded once; dW and db are fp32 sums of bf16-exact products.
  expect_close(x.grad().to_floats(), x_ref.grad().to_floats(), kOneRounding, "dx");
  expect_close(w.grad().to_floats(), w_ref.grad().to_floats(), kFp32FromRounded, "dW");
  expect_close(b.grad().to_floats(), b_ref.grad().to_floats(), kFp32FromRounded, "db");
}

TEST_F(MixedPrecision, ResidualAddKeepsFp32AndRoundsTheBranchGradient) {
  const int64_t n = 300;
  const std::vector<float> av = uniform(n, 6, -2.0f, 2.0f), bv = rounded_to_bf16(uniform(n, 7, -2.0f, 2.0f));
  const std::vector<float> rv = uniform(n, 8, -1.0f, 1.0f);
  Tensor a = host(av, {3, 100}).to(Device::CUDA);
  Tensor b = ops::cast(host(bv, {3, 100}).to(Device::CUDA), DType::BF16).detach();
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  Tensor y = ops::add(a, b);
  ASSERT_EQ(y.dtype(), DType::F32);
  std::vector<float> want(n);
  for (int64_t i = 0; i < n; ++i) want[size_t(i)] = av[size_t(i)] + bv[size_t(i)];
  expect_bitwise(y.to_floats(), want, "a + b");
  autograd::backward(ops::sum(ops::mul(y, host(rv, {3, 100}).to(Device::CUDA))));
  ASSERT_EQ(a.grad().dtype(), DType::F32);
  ASSERT_EQ(b.grad().dtype(), DType::BF16);
  expect_bitwise(a.grad().to_floats(), rv, "da");
  expect_bitwise(b.grad().to_floats(), rounded_to_bf16(rv), "db");
}

TEST_F(MixedPrecision, LayerNormWritesBf16AndTakesItsGradientInFp32) {
  const int64_t N = 9, C = 96;
  const std::vector<float> xv = uniform(size_t(N * C), 9, -2.0f, 2.0f), wv = uniform(C, 10, 0.5f, 1.5f),
                           bv = uniform(C, 11, -0.5f, 0.5f), rv = rounded_to_bf16(uniform(size_t(N * C), 12, -1.0f, 1.0f));
  Tensor x_ref = host(xv, {N, C}), w_ref = host(wv, {C}), b_ref = host(bv, {C});
  for (Tensor* t : {&x_ref, &w_ref, &b_ref}) t->set_requires_grad(true);
  Tensor y_ref = ops::layernorm(x_ref, w_ref, b_ref, 1e-5f);
  autograd::backward(ops::sum(ops::mul(y_ref, host(rv, {N, C}))));

  Tensor x = host(xv, {N, C}).to(Device::CUDA), w = host(wv, {C}).to(Device::CUDA), b = host(bv, {C}).to(Device::CUDA);
  for (Tensor* t : {&x, &w, &b}) t->set_requires_grad(true);
  Tensor y = ops::layernorm(x, w, b, 1e-5f, DType::BF16);
  ASSERT_EQ(y.dtype(), DType::BF16);
  expect_close(y.to_floats(), y_ref.to_floats(), kOneRounding, "layernorm out");
  Tensor r = ops::cast(host(rv, {N, C}).to(Device::CUDA), DType::BF16);
  autograd::backward(ops::sum(ops::cast(ops::mul(y, r), DType::F32)));
  ASSERT_EQ(x.grad().dtype(), DType::F32);
  // dy = r (bf16-exact); the backward reads it and works in fp32 as the CPU does.
  expect_close(x.grad().to_floats(), x_ref.grad().to_floats(), Tolerance{1e-5, 1e-4}, "dx");
  expect_close(w.grad().to_floats(), w_ref.grad().to_floats(), Tolerance{1e-5, 1e-4}, "dweight");
  expect_close(b.grad().to_floats(), b_ref.grad().to_floats(), Tolerance{1e-5, 1e-4}, "dbias");
}

TEST_F(MixedPrecision, CrossEntropyOnBf16LogitsGivesAnFp32Loss) {
  const int64_t N = 13, V = 77;
  const std::vector<float> lv = rounded_to_bf16(uniform(size_t(N * V), 13, -4.0f, 4.0f));
  std::vector<int32_t> tv = random_ids(N, int32_t(V), 14);
  tv[3] = -100;  // an ignored row
  Tensor targets = Tensor::from_ints(tv, {N});
  Tensor l_ref = host(lv, {N, V});
  l_ref.set_requires_grad(true);
  Tensor loss_ref = ops::cross_entropy(l_ref, targets);
  autograd::backward(loss_ref);

  Tensor l = ops::cast(host(lv, {N, V}).to(Device::CUDA), DType::BF16).detach();
  l.set_requires_grad(true);
  Tensor loss = ops::cross_entropy(l, targets);
  ASSERT_EQ(loss.dtype(), DType::F32);
  EXPECT_NEAR(loss.item(), loss_ref.item(), 1e-5 * loss_ref.item());
  autograd::backward(loss);
  ASSERT_EQ(l.grad().dtype(), DType::BF16);
  expect_close(l.grad().to_floats(), l_ref.grad().to_floats(), kOneRounding, "dlogits");
}

TEST_F(MixedPrecision, SliceAndConcatMoveBf16BitsBothWays) {
  // x (2, 5, 6) bf16: slice dim 2 into [0, 2) and [2, 6), concat them back; the gradient of
  // sum(cast(y) * r) through both ops must be r rounded to bf16, in place.
  const std::vector<float> xv = rounded_to_bf16(uniform(60, 15, -2.0f, 2.0f));
  const std::vector<float> rv = rounded_to_bf16(uniform(60, 16, -1.0f, 1.0f));
  Tensor x = ops::cast(host(xv, {2, 5, 6}).to(Device::CUDA), DType::BF16).detach();
  x.set_requires_grad(true);
  Tensor y = ops::concat({ops::slice(x, 2, 0, 2), ops::slice(x, 2, 2, 6)}, 2);
  ASSERT_EQ(y.dtype(), DType::BF16);
  expect_bitwise(y.to_floats(), xv, "concat(slices)");
  autograd::backward(ops::sum(ops::mul(ops::cast(y, DType::F32), host(rv, {2, 5, 6}).to(Device::CUDA))));
  ASSERT_EQ(x.grad().dtype(), DType::BF16);
  expect_bitwise(x.grad().to_floats(), rv, "dx");
}

TEST_F(MixedPrecision, Bf16WhereItCannotRunIsAnErrorWithAHint) {
  Tensor cpu_bf16 = Tensor::from_floats({1.0f, 2.0f}, {1, 2}).to(DType::BF16);
  Tensor w = Tensor::from_floats({1.0f, 2.0f, 3.0f, 4.0f}, {2, 2});
  try {
    ops::linear(cpu_bf16, w);
    FAIL() << "bf16 linear on the CPU ran";
  } catch (const sllm::Error& e) {
    EXPECT_NE(e.hint().find("f32"), std::string::npos) << e.hint();
  }
  Tensor a = ops::cast(Tensor::from_floats({1.0f, 2.0f}, {2}).to(Device::CUDA), DType::BF16);
  Tensor b = Tensor::from_floats({1.0f, 2.0f}, {2}).to(Device::CUDA);
  EXPECT_THROW(ops::add(a, b), sllm::Error);  // bf16 first, f32 second: ask for an explicit cast
  EXPECT_THROW(ops::parse_precision("bf16", Device::CPU), sllm::Error);
  EXPECT_THROW(ops::parse_precision("fp16", Device::CUDA), sllm::Error);
  EXPECT_THROW(ops::parse_precision("tf32", Device::CPU), sllm::Error);
  EXPECT_EQ(ops::parse_precision("auto", Device::CUDA), ops::Precision::BF16);
  EXPECT_EQ(ops::parse_precision("auto", Device::CPU), ops::Precision::FP32);
  EXPECT_EQ(ops::apply_precision(ops::Precision::TF32), DType::F32);
  EXPECT_TRUE(tf32_enabled());
  EXPECT_EQ(ops::apply_precision(ops::Precision::BF16), DType::BF16);
  EXPECT_FALSE(tf32_enabled());
  nn::Transformer model(nn::preset("tiny"));
  EXPECT_THROW(model.set_compute_dtype(DType::BF16), sllm::Error);  // still on the CPU
}

// ---- whole training steps ---------------------------------------------------------------

std::vector<optim::ParamRef> params_of(nn::Transformer& model) {
  std::vector<optim::ParamRef> refs;
  for (auto& p : model.parameters()) refs.push_back({p.name, p.value, optim::default_decay(p.name, p.value)});
  return refs;
}

class MixedPrecisionTrainStep : public MixedPrecision {
 protected:
  // The bf16 GPU model against the fp32 CPU model: logits, loss and every gradient after
  // one step, then the loss over a few AdamW steps on one batch.
  void check(const nn::ModelConfig& config) {
    const int64_t B = 2, T = 24;
    const auto V = static_cast<int32_t>(config.vocab_size);
    Tensor ids = Tensor::from_ints(random_ids(B * T, V, 21), {B, T});
    Tensor targets = Tensor::from_ints(random_ids(B * T, V, 22), {B, T});
    nn::Transformer cpu(config), gpu(config);
    cpu.init(3);
    gpu.init(3);
    gpu.to(Device::CUDA);
    gpu.set_compute_dtype(DType::BF16);
    auto refs_cpu = params_of(cpu), refs_gpu = params_of(gpu);
    const optim::AdamWConfig adam{1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f};
    optim::AdamW opt_cpu(refs_cpu, adam), opt_gpu(refs_gpu, adam);

    std::vector<double> losses_cpu, losses_gpu;
    for (int step = 0; step < 4; ++step) {
      Tensor logits_cpu = cpu.forward(ids), logits_gpu = gpu.forward(ids);
      ASSERT_EQ(logits_gpu.dtype(), DType::BF16);
      Tensor loss_cpu = ops::cross_entropy(logits_cpu, targets), loss_gpu = ops::cross_entropy(logits_gpu, targets);
      ASSERT_EQ(loss_gpu.dtype(), DType::F32);
      losses_cpu.push_back(loss_cpu.item());
      losses_gpu.push_back(loss_gpu.item());
      autograd::backward(loss_cpu);
      autograd::backward(loss_gpu);
      if (step == 0) {
        const double logit_err = relative_l2(logits_gpu.to_floats(), logits_cpu.to_floats());
        EXPECT_LT(logit_err, kModelRelL2) << "logits";
        double worst = 0.0;
        std::string worst_name;
        for (size_t i = 0; i < refs_cpu.size(); ++i) {
          const Tensor g = refs_gpu[i].param.grad();
          ASSERT_TRUE(g.defined()) << refs_gpu[i].name;
          ASSERT_EQ(g.dtype(), DType::F32) << refs_gpu[i].name << ": master gradients are fp32";
          const double err = relative_l2(g.to_floats(), refs_cpu[i].param.grad().to_floats());
          EXPECT_LT(err, kModelRelL2) << "grad " << refs_gpu[i].name;
          if (err > worst) worst = err, worst_name = refs_gpu[i].name;
        }
        std::printf("bf16 vs fp32, %s: logits rel. L2 %.2e, worst gradient %s %.2e\n",
                    config.family == nn::Family::GPT2 ? "gpt2" : "llama", logit_err, worst_name.c_str(), worst);
      }
      optim::clip_grad_norm(refs_cpu, 1.0);
      optim::clip_grad_norm(refs_gpu, 1.0);
      opt_cpu.step(3e-3f);
      opt_gpu.step(3e-3f);
      opt_cpu.zero_grad();
      opt_gpu.zero_grad();
    }
    // The same optimization trajectory: each loss within 1% (the per-step noise above,
    // carried through a few updates), and both go down.
    for (size_t s = 0; s < losses_cpu.size(); ++s)
      EXPECT_NEAR(losses_gpu[s], losses_cpu[s], 1e-2 * losses_cpu[s]) << "step " << s;
    EXPECT_LT(losses_gpu.back(), losses_gpu.front());
  }
};

// The tiny preset's head dim (8) is below the tensor-core tile: attention takes the fp32
// fallback (ops/mixed_precision.cpp), everything else runs in bf16.
TEST_F(MixedPrecisionTrainStep, Gpt2TinyBf16TracksFp32) { check(nn::preset("tiny")); }

// Head dim 16: the bf16 tensor-core attention (kernels/cuda/attention_bf16.cu).
TEST_F(MixedPrecisionTrainStep, LlamaTinyBf16TracksFp32) {
  nn::ModelConfig c{nn::Family::Llama, 512, 64, 64, 2, 4, 2, 128};  // GQA, RoPE, SwiGLU, untied head
  c.tie_embeddings = false;
  c.validate();
  check(c);
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
