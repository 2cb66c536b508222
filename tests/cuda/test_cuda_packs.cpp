// The 16-byte-pack paths of the pointwise kernels (kernels/cuda/pack.cuh): same-shape
// binary ops, casts and activations take packs when every pointer is 16-byte aligned and
// finish the n % P tail one element at a time; otherwise every element goes one by one.
// Either way each element's expression is the one-element kernel's, so results must equal
// the CPU kernel's (fp32) or its rounding (bf16) bit for bit, for aligned pointers, pointers
// one element off, and lengths that leave every possible tail.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/kernels.h"
#include "tensor/dtype.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

class CudaPacks : public CudaTest {};

std::vector<uint16_t> bf16_bits(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = f32_to_bf16(v[i]);
  return out;
}

TEST_F(CudaPacks, SameShapeBinaryOpsAndCastsEqualTheCpuAtEveryTailAndOffset) {
  for (const int64_t n : {1, 3, 4, 7, 8, 9, 15, 16, 17, 1000}) {
    for (const int64_t off : {0, 1}) {  // 1: every pointer one element past 16-byte alignment
      const std::string what = "n=" + std::to_string(n) + " offset=" + std::to_string(off);
      const std::vector<float> a = uniform(n + off, 1), b = uniform(n + off, 2, 0.5f, 2.0f);
      // fp32 = fp32 + fp32 (autograd's gradient sums): bitwise the CPU kernel.
      for (const BinaryOp op : {BinaryOp::Add, BinaryOp::Mul, BinaryOp::Div}) {
        std::vector<float> want(size_t(n + off));
        sllm::kernels::binary_forward(op, want.data() + off, a.data() + off, b.data() + off, n, n);
        DeviceArray<float> da(a), db(b), dout(size_t(n + off));
        cuda::binary_forward(op, dout.get() + off, da.get() + off, db.get() + off, n, n);
        const std::vector<float> got = dout.host();
        expect_bitwise(std::vector<float>(got.begin() + off, got.end()),
                       std::vector<float>(want.begin() + off, want.end()), what + " fp32 op");
      }
      // fp32 = fp32 + bf16 (the residual add): the exact sum of a and the bf16 b, rounded once.
      const std::vector<uint16_t> b16 = bf16_bits(b);
      DeviceArray<float> da(a), dsum(size_t(n + off));
      DeviceArray<uint16_t> db16(b16);
      cuda::binary_forward(BinaryOp::Add, dsum.get() + off, da.get() + off, reinterpret_cast<const bf16*>(db16.get()) + off,
                     n, n);
      const std::vector<float> sum = dsum.host();
      for (int64_t i = off; i < n + off; ++i)
        ASSERT_EQ(sum[size_t(i)], a[size_t(i)] + bf16_to_f32(b16[size_t(i)])) << what << " mixed add " << i;
      // Casts both ways: f32_to_bf16 bit for bit, and back exactly.
      DeviceArray<uint16_t> dcast(size_t(n + off));
      cuda::cast_forward(reinterpret_cast<bf16*>(dcast.get()) + off, da.get() + off, n);
      const std::vector<uint16_t> cast = dcast.host();
      DeviceArray<float> dback(size_t(n + off));
      cuda::cast_forward(dback.get() + off, reinterpret_cast<const bf16*>(dcast.get()) + off, n);
      const std::vector<float> back = dback.host();
      for (int64_t i = off; i < n + off; ++i) {
        ASSERT_EQ(cast[size_t(i)], f32_to_bf16(a[size_t(i)])) << what << " cast " << i;
        ASSERT_EQ(back[size_t(i)], bf16_to_f32(cast[size_t(i)])) << what << " cast back " << i;
      }
    }
  }
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
