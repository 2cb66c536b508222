// The bf16 shadow of a weight (tensor/bf16_shadow.h) on host tensors: the caching and
// staleness rules that the CUDA AdamW relies on, without a GPU. (The shadow lives in the
// tensor layer; it is tested here beside the optimizer, its one writer besides itself.)
// tests/cuda/test_cuda_optim_step.cpp covers CUDA tensors and AdamW's in-place refresh.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "core/error.h"
#include "optim/adamw.h"
#include "tensor/bf16_shadow.h"

namespace sllm {
namespace {

std::vector<uint16_t> rounded(const Tensor& w) {
  std::vector<uint16_t> out;
  for (float x : w.to_floats()) out.push_back(f32_to_bf16(x));
  return out;
}
std::vector<uint16_t> bits(const Tensor& b) {
  const auto* p = b.data<uint16_t>();
  return std::vector<uint16_t>(p, p + b.numel());
}
Tensor weight(int64_t rows, int64_t cols, float base) {
  std::vector<float> v(size_t(rows * cols));
  for (size_t i = 0; i < v.size(); ++i) v[i] = base + 1e-3f * float(i) + 1e-7f * float(i % 13);  // needs rounding
  return Tensor::from_floats(v, {rows, cols});
}

TEST(Bf16Shadow, IsTheRoundedWeightAndIsCachedUntilTheWeightChanges) {
  Tensor w = weight(5, 7, 0.3f);
  const Tensor s = bf16_shadow(w);
  EXPECT_EQ(s.dtype(), DType::BF16);
  EXPECT_EQ(s.shape(), w.shape());
  EXPECT_EQ(bits(s), rounded(w));
  const uint64_t version = s.version();
  const Tensor again = bf16_shadow(w);
  EXPECT_EQ(again.raw(), s.raw()) << "cached: the same buffer";
  EXPECT_EQ(again.version(), version) << "and not cast again";
  EXPECT_EQ(bf16_shadow(w.detach()).raw(), s.raw()) << "shared by every handle of the storage";
}

TEST(Bf16Shadow, AnyWriteToTheWeightForcesARecast) {
  Tensor w = weight(5, 7, 0.3f);
  const Tensor s = bf16_shadow(w);
  w.copy_from(weight(5, 7, -2.0f));
  EXPECT_EQ(bits(bf16_shadow(w)), rounded(w)) << "after copy_from";
  w.mutable_f32()[3] = 1234.5678f;  // a poke through a mutable pointer
  EXPECT_EQ(bits(bf16_shadow(w)), rounded(w)) << "after a poke";
  Tensor view = w.reshape({7, 5});
  view.fill_(0.1f);
  EXPECT_EQ(bits(bf16_shadow(w)), rounded(w)) << "after a write through a view";
  EXPECT_EQ(bits(s), rounded(w)) << "the old handle shares the re-cast buffer";
}

TEST(Bf16Shadow, PaddedRowsAreZeroAndSmallerRequestsViewTheSameBuffer) {
  Tensor w = weight(5, 7, 0.3f);
  const Tensor padded = bf16_shadow(w, 8);
  EXPECT_EQ(padded.shape(), (Shape{8, 7}));
  std::vector<uint16_t> want = rounded(w);
  want.resize(8 * 7, 0);
  EXPECT_EQ(bits(padded), want);
  const Tensor plain = bf16_shadow(w);  // fewer rows: a view of the padded buffer
  EXPECT_EQ(plain.shape(), w.shape());
  EXPECT_EQ(plain.raw(), padded.raw());
  w.mutable_f32()[0] = -5.0f;
  want = rounded(w);
  want.resize(8 * 7, 0);
  EXPECT_EQ(bits(bf16_shadow(w, 8)), want) << "a recast leaves the padding zero";
  EXPECT_EQ(bf16_shadow(w, 5).shape(), w.shape()) << "padded_rows == rows: no padding";
}

TEST(Bf16Shadow, AWriteIntoTheShadowItselfRebuildsIt) {
  Tensor w = weight(5, 7, 0.3f);
  Tensor padded = bf16_shadow(w, 8);
  padded.mutable_data<uint16_t>()[8 * 7 - 1] = 0x3F80;  // 1.0 in the padding
  std::vector<uint16_t> want = rounded(w);
  want.resize(8 * 7, 0);
  EXPECT_EQ(bits(bf16_shadow(w, 8)), want);
}

TEST(Bf16Shadow, IsFreedWithItsWeight) {
  std::weak_ptr<Bf16Shadow> slot;
  std::weak_ptr<Storage> buffer;
  {
    Tensor w = weight(5, 7, 0.3f);
    buffer = bf16_shadow(w).impl().storage;
    slot = w.impl().storage->bf16_shadow_slot();
    EXPECT_FALSE(slot.expired());
  }
  EXPECT_TRUE(slot.expired());
  EXPECT_TRUE(buffer.expired());
}

TEST(Bf16Shadow, RejectsWhatItCannotShadow) {
  EXPECT_THROW(bf16_shadow(Tensor()), Error);
  EXPECT_THROW(bf16_shadow(weight(2, 2, 0.f).to(DType::BF16)), Error);
  EXPECT_THROW(bf16_shadow(Tensor::full({}, 1.0f)), Error);
  EXPECT_THROW(bf16_shadow(weight(5, 7, 0.f), 4), Error) << "fewer padded rows than rows";
}

TEST(Bf16Shadow, AHostAdamWStepMakesItStaleAndTheNextRequestRecasts) {
  Tensor w = weight(5, 7, 0.3f);
  w.set_requires_grad(true);
  const Tensor before = bf16_shadow(w);
  const std::vector<uint16_t> old_bits = bits(before);
  w.set_grad(weight(5, 7, 0.01f));
  optim::AdamW opt({{"w", w, true}}, optim::AdamWConfig{});
  opt.step(1e-2f);
  EXPECT_EQ(bits(bf16_shadow(w)), rounded(w));
  EXPECT_NE(bits(bf16_shadow(w)), old_bits);
}

}  // namespace
}  // namespace sllm
