// The GPU's transpose, index_select, gather (kernels/cuda/shape.cu) and dropout
// (kernels/cuda/dropout.cu) against the CPU: the kernels against the CPU loops of
// src/ops/shape_ops.cpp (run through ops:: on host tensors) and kernels::dropout_*; then the
// ops themselves on Device::CUDA, forward and autograd backward, against the same ops on
// the CPU. Every comparison is bitwise: forwards copy elements, each backward adds the same
// floats in the same order (repeated ids included), and the dropout mask comes from the one
// counter-based RNG both devices share (kernels/dropout_rng.h). The one exception, with its
// reason, is dropout's backward into a non-zero gradient.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "core/error.h"
#include "ops/device.h"
#include "ops/ops.h"
#include "tensor/dtype.h"
#include "tensor/tensor.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

// dropout's backward into a gradient that already holds values: dinp + dout * scale may be
// one fused multiply-add on the GPU (nvcc contracts by default; so may the host compiler of
// the simulator) where the CPU kernel rounds the product first. The two then differ by at
// most the product's rounding, half an ulp of |dout * scale| <= 4/3 here: < 1e-7 absolute,
// however much dinp and the product cancel (so the bound is absolute, not relative). 1e-6
// is still far below a wrong mask or scale (off by ~|dout|, 0.5 on average).
constexpr Tolerance kMaybeFused{1e-6, 0.0};

std::vector<bf16> to_bf16(const std::vector<float>& v) {
  std::vector<bf16> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = bf16{f32_to_bf16(v[i])};
  return out;
}
std::vector<float> to_f32(const std::vector<bf16>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = bf16_to_f32(v[i].bits);
  return out;
}

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// ---- CPU references: the ops' own host loops ---------------------------------------------
std::vector<float> cpu_transpose(const std::vector<float>& x, const Shape& shape, int64_t d0, int64_t d1) {
  return ops::transpose(Tensor::from_floats(x, shape), d0, d1).to_floats();
}
std::vector<float> cpu_index_select(const std::vector<float>& x, const Shape& shape, const std::vector<int32_t>& ids) {
  return ops::index_select(Tensor::from_floats(x, shape), Tensor::from_ints(ids, {int64_t(ids.size())})).to_floats();
}
std::vector<float> cpu_gather(const std::vector<float>& x, int64_t N, int64_t C, const std::vector<int32_t>& ids) {
  return ops::gather(Tensor::from_floats(x, {N, C}), Tensor::from_ints(ids, {N})).to_floats();
}
// index_select's backward loop (shape_ops.cpp) on a pre-filled gradient: ids in order.
std::vector<float> scatter_rows(std::vector<float> dinp, const std::vector<float>& dout, const std::vector<int32_t>& ids,
                                int64_t inner) {
  for (size_t i = 0; i < ids.size(); ++i)
    for (int64_t j = 0; j < inner; ++j) dinp[ids[i] * inner + j] += dout[i * inner + j];
  return dinp;
}

// Shapes and dim pairs with awkward sizes: odd, prime, not multiples of 32, a size-1 dim,
// equal dims (a copy), negative-free (the kernels take normalized dims).
struct TransposeCase {
  Shape shape;
  int64_t d0, d1;
};
const std::vector<TransposeCase>& transpose_cases() {
  static const std::vector<TransposeCase> cases = {
      {{33, 47}, 0, 1},       {{2, 37, 3, 5}, 1, 3}, {{2, 37, 3, 5}, 0, 3}, {{2, 37, 3, 5}, 3, 1},
      {{2, 37, 3, 5}, 1, 2},  {{5, 1, 7}, 0, 2},     {{4, 9}, 1, 1},        {{17}, 0, 0}};
  return cases;
}

std::string label(const TransposeCase& c) {
  return str("transpose ", shape_str(c.shape), " dims ", c.d0, ",", c.d1);
}

class CudaShapeKernels : public CudaTest {};

TEST_F(CudaShapeKernels, TransposeForwardMatchesCpuBitwise) {
  for (const auto& c : transpose_cases()) {
    const auto x = uniform(numel(c.shape), 1);
    DeviceArray<float> dx(x), dout(x.size());
    transpose_forward(dout.get(), dx.get(), c.shape.data(), int64_t(c.shape.size()), c.d0, c.d1);
    expect_bitwise(dout.host(), cpu_transpose(x, c.shape, c.d0, c.d1), label(c));
  }
}

TEST_F(CudaShapeKernels, TransposeForwardBf16MovesBits) {
  for (const auto& c : transpose_cases()) {
    const auto x = to_bf16(uniform(numel(c.shape), 2));
    DeviceArray<bf16> dx(x), dout(x.size());
    transpose_forward(dout.get(), dx.get(), c.shape.data(), int64_t(c.shape.size()), c.d0, c.d1);
    // bf16 values are exact in f32, so the f32 transpose rounded back gives the same bits.
    expect_bitwise(dout.host(), to_bf16(cpu_transpose(to_f32(x), c.shape, c.d0, c.d1)), label(c) + " bf16");
  }
}

TEST_F(CudaShapeKernels, TransposeBackwardAccumulatesTheInverse) {
  for (const auto& c : transpose_cases()) {
    Shape out_shape = c.shape;
    std::swap(out_shape[c.d0], out_shape[c.d1]);
    const int64_t n = numel(c.shape);
    const auto dout = uniform(n, 3), prior = uniform(n, 4);
    // dinp has the input's shape: the output-shaped dout transposed back, added to prior.
    const auto want = plus(prior, cpu_transpose(dout, out_shape, c.d0, c.d1));
    DeviceArray<float> d_dout(dout), d_dinp(prior);
    transpose_backward(d_dinp.get(), d_dout.get(), c.shape.data(), int64_t(c.shape.size()), c.d0, c.d1);
    expect_bitwise(d_dinp.host(), want, label(c) + " backward");

    const auto dout16 = to_bf16(dout), prior16 = to_bf16(prior);
    // One fp32 add of the bf16 values, rounded once.
    const auto want16 = to_bf16(plus(to_f32(prior16), cpu_transpose(to_f32(dout16), out_shape, c.d0, c.d1)));
    DeviceArray<bf16> b_dout(dout16), b_dinp(prior16);
    transpose_backward(b_dinp.get(), b_dout.get(), c.shape.data(), int64_t(c.shape.size()), c.d0, c.d1);
    expect_bitwise(b_dinp.host(), want16, label(c) + " backward bf16");
  }
}

// (N, rows of the input; inner; M ids): many repeats (M >> N), inner above one block of
// threads (two column blocks), and N > inner so the backward splits rows into slices.
struct SelectCase {
  int64_t N, inner, M;
};
const std::vector<SelectCase>& select_cases() {
  static const std::vector<SelectCase> cases = {{13, 111, 300}, {13, 300, 40}, {200, 3, 517}, {1, 5, 9}, {7, 4, 0}};
  return cases;
}

TEST_F(CudaShapeKernels, IndexSelectForwardMatchesCpuBitwise) {
  for (const auto& c : select_cases()) {
    const auto x = uniform(c.N * c.inner, 5);
    const auto ids = random_ids(c.M, int32_t(c.N), 6);
    DeviceArray<float> dx(x), dout{size_t(c.M * c.inner)};
    DeviceArray<int32_t> dids(ids);
    index_select_forward(dout.get(), dx.get(), dids.get(), c.N, c.M, c.inner);
    const std::string what = str("index_select N=", c.N, " inner=", c.inner, " M=", c.M);
    expect_bitwise(dout.host(), cpu_index_select(x, {c.N, c.inner}, ids), what);

    const auto x16 = to_bf16(x);
    DeviceArray<bf16> bx(x16), bout{size_t(c.M * c.inner)};
    index_select_forward(bout.get(), bx.get(), dids.get(), c.N, c.M, c.inner);
    expect_bitwise(bout.host(), to_bf16(cpu_index_select(to_f32(x16), {c.N, c.inner}, ids)), what + " bf16");
  }
}

TEST_F(CudaShapeKernels, IndexSelectBackwardSumsRepeatsInIdOrder) {
  for (const auto& c : select_cases()) {
    const auto dout = uniform(c.M * c.inner, 7), prior = uniform(c.N * c.inner, 8);
    const auto ids = random_ids(c.M, int32_t(c.N), 9);
    const std::string what = str("index_select backward N=", c.N, " inner=", c.inner, " M=", c.M);
    DeviceArray<float> d_dout(dout), d_dinp(prior);
    DeviceArray<int32_t> dids(ids);
    index_select_backward(d_dinp.get(), d_dout.get(), dids.get(), c.N, c.M, c.inner);
    expect_bitwise(d_dinp.host(), scatter_rows(prior, dout, ids, c.inner), what);

    // bf16: the repeats are summed in fp32 and the result rounded once.
    const auto dout16 = to_bf16(dout), prior16 = to_bf16(prior);
    DeviceArray<bf16> b_dout(dout16), b_dinp(prior16);
    index_select_backward(b_dinp.get(), b_dout.get(), dids.get(), c.N, c.M, c.inner);
    expect_bitwise(b_dinp.host(), to_bf16(scatter_rows(to_f32(prior16), to_f32(dout16), ids, c.inner)), what + " bf16");
  }
}

TEST_F(CudaShapeKernels, GatherForwardAndBackwardMatchCpuBitwise) {
  const int64_t N = 77, C = 129;
  auto ids = random_ids(N, int32_t(C), 10);
  ids[0] = 0;
  ids[N - 1] = int32_t(C - 1);  // both ends of a row
  const auto x = uniform(N * C, 11), dout = uniform(N, 12), prior = uniform(N * C, 13);
  DeviceArray<int32_t> dids(ids);

  DeviceArray<float> dx(x), dy{size_t(N)};
  gather_forward(dy.get(), dx.get(), dids.get(), N, C);
  expect_bitwise(dy.host(), cpu_gather(x, N, C, ids), "gather");
  std::vector<float> want = prior;
  for (int64_t i = 0; i < N; ++i) want[i * C + ids[i]] += dout[i];
  DeviceArray<float> d_dout(dout), d_dinp(prior);
  gather_backward(d_dinp.get(), d_dout.get(), dids.get(), N, C);
  expect_bitwise(d_dinp.host(), want, "gather backward");

  const auto x16 = to_bf16(x), dout16 = to_bf16(dout), prior16 = to_bf16(prior);
  DeviceArray<bf16> bx(x16), by{size_t(N)};
  gather_forward(by.get(), bx.get(), dids.get(), N, C);
  expect_bitwise(by.host(), to_bf16(cpu_gather(to_f32(x16), N, C, ids)), "gather bf16");
  std::vector<float> want16 = to_f32(prior16);
  for (int64_t i = 0; i < N; ++i) want16[i * C + ids[i]] += bf16_to_f32(dout16[i].bits);
  DeviceArray<bf16> b_dout(dout16), b_dinp(prior16);
  gather_backward(b_dinp.get(), b_dout.get(), dids.get(), N, C);
  expect_bitwise(b_dinp.host(), to_bf16(want16), "gather backward bf16");
}

TEST_F(CudaShapeKernels, NullGradientsAreSkipped) {
  const int64_t shape[] = {3, 4};
  DeviceArray<float> g{size_t(12)};
  DeviceArray<int32_t> ids(std::vector<int32_t>{0, 2, 2});
  uint8_t* no_mask = nullptr;
  EXPECT_NO_THROW(transpose_backward(static_cast<float*>(nullptr), g.get(), shape, 2, 0, 1));
  EXPECT_NO_THROW(index_select_backward(static_cast<float*>(nullptr), g.get(), ids.get(), 3, 3, 4));
  EXPECT_NO_THROW(gather_backward(static_cast<float*>(nullptr), g.get(), ids.get(), 3, 4));
  EXPECT_NO_THROW(dropout_backward(static_cast<float*>(nullptr), g.get(), no_mask, 12, 0.5f));
  synchronize();
}

// ---- dropout --------------------------------------------------------------------------

class CudaDropout : public CudaTest {};

TEST_F(CudaDropout, MaskAndOutputEqualTheCpuKernelBitwise) {
  const int64_t n = 10007;  // prime: the last block is partly idle
  const auto x = uniform(n, 14);
  for (const float p : {0.1f, 0.3f, 0.9f, 1.0f})
    for (const uint64_t offset : {uint64_t(0), uint64_t(123457), uint64_t(1) << 40}) {
      const uint64_t seed = 0x5EEDull + uint64_t(p * 100);
      std::vector<float> want(n);
      std::vector<uint8_t> want_mask(n);
      kernels::dropout_forward(want.data(), want_mask.data(), x.data(), n, p, seed, offset);
      DeviceArray<float> dx(x), dout{size_t(n)};
      DeviceArray<uint8_t> dmask{size_t(n)};
      dropout_forward(dout.get(), dmask.get(), dx.get(), n, p, seed, offset);
      const std::string what = str("dropout p=", p, " offset=", offset);
      expect_bitwise(dmask.host(), want_mask, what + " mask");
      expect_bitwise(dout.host(), want, what + " out");

      // bf16: the same mask; survivors are the f32 product of the bf16 value, rounded once.
      const auto x16 = to_bf16(x);
      std::vector<float> want_f(n);
      kernels::dropout_forward(want_f.data(), want_mask.data(), to_f32(x16).data(), n, p, seed, offset);
      DeviceArray<bf16> bx(x16), bout{size_t(n)};
      dropout_forward(bout.get(), dmask.get(), bx.get(), n, p, seed, offset);
      expect_bitwise(dmask.host(), want_mask, what + " bf16 mask");
      expect_bitwise(bout.host(), to_bf16(want_f), what + " bf16 out");
    }
}

TEST_F(CudaDropout, BackwardMatchesTheCpuKernel) {
  const int64_t n = 4099;
  const float p = 0.25f;
  const auto x = uniform(n, 15), dout = uniform(n, 16), prior = uniform(n, 17);
  std::vector<float> y(n);
  std::vector<uint8_t> mask(n);
  kernels::dropout_forward(y.data(), mask.data(), x.data(), n, p, 99, 7);
  DeviceArray<float> d_dout(dout);
  DeviceArray<uint8_t> dmask(mask);

  // Into zeros (what autograd does): 0 + round(dout * scale) is exact either way.
  std::vector<float> want(n, 0.0f);
  kernels::dropout_backward(want.data(), dout.data(), mask.data(), n, p);
  DeviceArray<float> zeros{size_t(n)};
  dropout_backward(zeros.get(), d_dout.get(), dmask.get(), n, p);
  expect_bitwise(zeros.host(), want, "dropout backward into zeros");

  std::vector<float> want_acc = prior;
  kernels::dropout_backward(want_acc.data(), dout.data(), mask.data(), n, p);
  DeviceArray<float> acc(prior);
  dropout_backward(acc.get(), d_dout.get(), dmask.get(), n, p);
  expect_close(acc.host(), want_acc, kMaybeFused, "dropout backward accumulating");

  // bf16: dinp + dout * scale in fp32 (same FMA caveat), rounded once; into zeros: exact.
  const auto dout16 = to_bf16(dout);
  std::vector<float> want16(n, 0.0f);
  kernels::dropout_backward(want16.data(), to_f32(dout16).data(), mask.data(), n, p);
  DeviceArray<bf16> b_dout(dout16), b_dinp{size_t(n)};
  dropout_backward(b_dinp.get(), b_dout.get(), dmask.get(), n, p);
  expect_bitwise(b_dinp.host(), to_bf16(want16), "dropout backward bf16 into zeros");
}

// ---- argument checks: raised on the host before anything reaches a GPU, so these run
// without one -----------------------------------------------------------------------------

TEST(CudaShapeDropoutArgs, BadArgumentsRaiseErrors) {
  const int64_t shape[] = {3, 4};
  float* f = nullptr;
  uint8_t* m = nullptr;
  EXPECT_THROW(transpose_forward(f, f, shape, 2, 0, 2), Error);
  EXPECT_THROW(transpose_forward(f, f, shape, 0, 0, 0), Error);
  EXPECT_THROW(transpose_backward(f, f, shape, 2, -1, 0), Error);
  const int64_t negative[] = {3, -4};
  EXPECT_THROW(transpose_forward(f, f, negative, 2, 0, 1), Error);
  EXPECT_THROW(index_select_forward(f, f, nullptr, -1, 3, 4), Error);
  EXPECT_THROW(index_select_forward(f, f, nullptr, 0, 3, 4), Error);  // ids into no rows
  EXPECT_THROW(gather_forward(f, f, nullptr, 3, 0), Error);           // ids into no columns
  EXPECT_THROW(dropout_forward(f, m, f, 8, 1.5f, 1, 0), Error);
  EXPECT_THROW(dropout_backward(f, f, m, -1, 0.5f), Error);
}

// ---- the ops on Device::CUDA against the same ops on the CPU -----------------------------

class CudaShapeDropoutOps : public CudaTest {
 protected:
  void SetUp() override {
    CudaTest::SetUp();
    if (IsSkipped()) return;
    ops::init_device(Device::CUDA);
  }

  // Runs `op` on a CPU leaf and on its GPU copy, backpropagates sum(out * w) through both
  // (so the op's incoming gradient is w on both devices, exactly), and compares outputs and
  // input gradients bitwise.
  void check(const Shape& shape, uint32_t seed, const std::function<Tensor(const Tensor&)>& op, const std::string& what) {
    const auto xv = uniform(numel(shape), seed);
    Tensor x_cpu = Tensor::from_floats(xv, shape);
    x_cpu.set_requires_grad(true);
    Tensor x_gpu = Tensor::from_floats(xv, shape).to(Device::CUDA);
    x_gpu.set_requires_grad(true);

    Tensor y_cpu = op(x_cpu), y_gpu = op(x_gpu);
    ASSERT_EQ(y_gpu.device(), Device::CUDA) << what;
    ASSERT_EQ(y_gpu.shape(), y_cpu.shape()) << what;
    expect_bitwise(y_gpu.to_floats(), y_cpu.to_floats(), what + " forward");

    const auto wv = uniform(y_cpu.numel(), seed + 1);
    Tensor w_cpu = Tensor::from_floats(wv, y_cpu.shape()), w_gpu = w_cpu.to(Device::CUDA);
    autograd::backward(ops::sum(ops::mul(y_cpu, w_cpu)));
    autograd::backward(ops::sum(ops::mul(y_gpu, w_gpu)));
    ASSERT_TRUE(x_gpu.grad().defined()) << what;
    EXPECT_EQ(x_gpu.grad().device(), Device::CUDA) << what;
    expect_bitwise(x_gpu.grad().to_floats(), x_cpu.grad().to_floats(), what + " gradient");
  }
};

TEST_F(CudaShapeDropoutOps, TransposeRunsOnTheGpu) {
  check({2, 37, 3, 5}, 20, [](const Tensor& x) { return ops::transpose(x, 1, -1); }, "ops::transpose");
  check({33, 47}, 21, [](const Tensor& x) { return ops::transpose(x, 0, 1); }, "ops::transpose 2-d");
}

TEST_F(CudaShapeDropoutOps, IndexSelectRunsOnTheGpuWithRepeatedIds) {
  const Tensor ids = Tensor::from_ints({4, 0, 4, 4, 12, 1, 0, 4}, {8});  // repeats: 4 x3, 0 x2
  check({13, 3, 37}, 22, [&](const Tensor& x) { return ops::index_select(x, ids); }, "ops::index_select");
}

TEST_F(CudaShapeDropoutOps, GatherRunsOnTheGpu) {
  const Tensor ids = Tensor::from_ints(random_ids(37, 97, 23), {37});
  check({37, 97}, 24, [&](const Tensor& x) { return ops::gather(x, ids); }, "ops::gather");
}

TEST_F(CudaShapeDropoutOps, TrainingDropoutRunsOnTheGpuWithTheCpuMask) {
  check({2, 37, 96}, 25, [](const Tensor& x) { return ops::dropout(x, 0.2f, true, 1234, 5678); }, "ops::dropout");
}

TEST_F(CudaShapeDropoutOps, ChainOfShapeOpsBackpropagates) {
  const Tensor rows = Tensor::from_ints({2, 2, 0, 5, 1}, {5}), cols = Tensor::from_ints({34, 0, 6, 17, 1}, {5});
  check({7, 6, 5}, 26,
        [&](const Tensor& x) {
          Tensor t = ops::transpose(ops::dropout(x, 0.5f, true, 7, 0), 0, 2);  // (5, 6, 7)
          t = ops::index_select(ops::transpose(t, 0, 1), rows);               // (6, 5, 7) -> (5, 5, 7)
          return ops::gather(ops::reshape(t, {5, 35}), cols);                 // (5)
        },
        "dropout -> transpose -> index_select -> gather");
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
