// ops::attention_qkv on CUDA in bf16: the kernels read q, k, v straight out of the packed
// projection and the backward writes one fresh gradient in place. It must give exactly the
// bits of the slice + attention path (same kernels, same arithmetic, only the row strides
// differ), and be close to the fp32 op on the CPU. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "autograd/autograd.h"
#include "ops/device.h"
#include "ops/ops.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

class CudaAttentionQkv : public CudaOpsTest {};

struct Result {
  std::vector<float> out, grad;
};

// loss = sum(out * r) through attention_qkv (packed) or slices + attention, on `device`.
Result run_op(bool packed, Device device, DType dtype, const std::vector<float>& xv, const std::vector<float>& rv,
        int64_t B, int64_t T, int64_t NH, int64_t NKV, int64_t HD) {
  const int64_t W = (NH + 2 * NKV) * HD;
  Tensor x = ops::cast(Tensor::from_floats(xv, {B, T, W}).to(device), dtype).detach();
  x.set_requires_grad(true);
  Tensor out = packed ? ops::attention_qkv(x, NH, NKV)
                      : ops::attention(ops::slice(x, 2, 0, NH * HD), ops::slice(x, 2, NH * HD, (NH + NKV) * HD),
                                       ops::slice(x, 2, (NH + NKV) * HD, W), NH, NKV);
  Tensor r = ops::cast(Tensor::from_floats(rv, {B, T, NH * HD}).to(device), dtype);
  autograd::backward(ops::sum(ops::cast(ops::mul(out, r), DType::F32)));
  return {ops::cast(out, DType::F32).to_floats(), ops::cast(x.grad(), DType::F32).to_floats()};
}

TEST_F(CudaAttentionQkv, PackedEqualsSlicesBitwiseAndTracksTheCpu) {
  const int64_t B = 2, T = 37, NH = 4, NKV = 2, HD = 64, W = (NH + 2 * NKV) * HD;
  std::vector<float> xv = uniform(size_t(B * T * W), 71, -2.0f, 2.0f), rv = uniform(size_t(B * T * NH * HD), 72);
  for (float& v : xv) v = bf16_to_f32(f32_to_bf16(v));
  for (float& v : rv) v = bf16_to_f32(f32_to_bf16(v));
  const Result packed = run_op(true, Device::CUDA, DType::BF16, xv, rv, B, T, NH, NKV, HD);
  const Result sliced = run_op(false, Device::CUDA, DType::BF16, xv, rv, B, T, NH, NKV, HD);
  expect_bitwise(packed.out, sliced.out, "out");
  expect_bitwise(packed.grad, sliced.grad, "d qkv");
  // The fp32 CPU op on the same rounded inputs: out and the gradient are rounded to bf16
  // (2^-9 relative) after fp32 sums in which P and dS were rounded once (2^-9 each), so the
  // relative L2 distance stays near 1e-3; 1e-2 still catches a wrong head or region (O(1)).
  const Result cpu = run_op(true, Device::CPU, DType::F32, xv, rv, B, T, NH, NKV, HD);
  EXPECT_LT(relative_l2(packed.out, cpu.out), 1e-2);
  EXPECT_LT(relative_l2(packed.grad, cpu.grad), 1e-2);
  // Each region of the gradient (dq, dk, dv) on its own, so that one region left unwritten
  // or swapped shows even if the others are right.
  for (int64_t region = 0; region < 3; ++region) {
    const int64_t lo = region == 0 ? 0 : region == 1 ? NH * HD : (NH + NKV) * HD;
    const int64_t hi = region == 0 ? NH * HD : region == 1 ? (NH + NKV) * HD : W;
    std::vector<float> got, want;
    for (int64_t row = 0; row < B * T; ++row)
      for (int64_t c = lo; c < hi; ++c) {
        got.push_back(packed.grad[size_t(row * W + c)]);
        want.push_back(cpu.grad[size_t(row * W + c)]);
      }
    EXPECT_LT(relative_l2(got, want), 1e-2) << "region " << region;
  }
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
