// Tensor handles, storage and views (src/tensor/tensor.h, storage.h).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "core/error.h"
#include "tensor/tensor.h"

namespace sllm {
namespace {

// Runs `fn`, expects an sllm::Error, and returns its what().
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected sllm::Error";
  return "";
}

TEST(Storage, HostBlocksAre64ByteAligned) {
  for (DType dt : {DType::F32, DType::BF16, DType::U8, DType::I64}) {
    for (int64_t n : {0, 1, 3, 17, 63, 64, 65, 1000, 4097}) {
      Tensor t = Tensor::empty({n}, dt);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u) << dtype_name(dt) << " x " << n;
    }
  }
}

TEST(Tensor, ShapeAndNumel) {
  Tensor t = Tensor::zeros({2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.ndim(), 3);
  EXPECT_EQ(t.dim(0), 2);
  EXPECT_EQ(t.dim(-1), 4);
  EXPECT_EQ(t.nbytes(), 24u * 4u);
  EXPECT_THROW(t.dim(3), Error);
  EXPECT_THROW(t.dim(-4), Error);
  EXPECT_EQ(shape_str({2, 3}), "(2, 3)");
  EXPECT_EQ(shape_str({5}), "(5,)");
  for (float v : t.to_floats()) EXPECT_EQ(v, 0.0f);
  EXPECT_THROW(Tensor::empty({2, -1}), Error);
  EXPECT_THROW(Tensor::from_floats({1, 2, 3}, {2, 2}), Error);
}

TEST(Tensor, ReshapeIsAViewWithMinusOneInference) {
  Tensor t = Tensor::from_floats({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 4});
  Tensor v = t.reshape({2, -1, 3});
  EXPECT_EQ(v.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(v.raw(), t.raw()) << "reshape must not copy";
  v.mutable_f32()[5] = 42.0f;
  EXPECT_EQ(t.f32()[5], 42.0f) << "a write through the view is visible in the original";
  EXPECT_EQ(t.reshape({-1}).shape(), (Shape{12}));
  EXPECT_EQ(t.reshape({12, 1}).shape(), (Shape{12, 1}));
}

TEST(Tensor, BadReshapeThrows) {
  Tensor t = Tensor::zeros({3, 4});
  const std::string msg = error_of([&] { t.reshape({5, 2}); });
  EXPECT_NE(msg.find("12"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  EXPECT_THROW(t.reshape({-1, -1}), Error);
  EXPECT_THROW(t.reshape({5, -1}), Error);   // 12 is not a multiple of 5
  EXPECT_THROW(t.reshape({0, -1}), Error);   // -1 cannot be inferred next to a 0
  EXPECT_THROW(t.reshape({-2, 6}), Error);
  EXPECT_THROW(t.reshape({13}), Error);
}

TEST(Tensor, CloneIsDeep) {
  Tensor t = Tensor::from_floats({1, 2, 3, 4}, {2, 2});
  t.set_requires_grad(true);
  Tensor c = t.clone();
  EXPECT_NE(c.raw(), t.raw());
  EXPECT_EQ(c.shape(), t.shape());
  EXPECT_EQ(c.to_floats(), t.to_floats());
  EXPECT_FALSE(c.requires_grad()) << "clone has no autograd history";
  c.mutable_f32()[0] = -7.0f;
  EXPECT_EQ(t.f32()[0], 1.0f) << "writing the clone must not change the original";
  Tensor ids = Tensor::from_ints({5, -6}, {2});
  Tensor ids_copy = ids.clone();
  ids.mutable_i32()[1] = 0;
  EXPECT_EQ(ids_copy.i32()[1], -6);
}

TEST(Tensor, DetachSharesStorageWithoutHistory) {
  Tensor t = Tensor::from_floats({1, 2}, {2});
  t.set_requires_grad(true);
  Tensor d = t.detach();
  EXPECT_EQ(d.raw(), t.raw());
  EXPECT_FALSE(d.requires_grad());
}

TEST(Tensor, MutableAccessBumpsTheVersion) {
  Tensor t = Tensor::zeros({4});
  const uint64_t v0 = t.version();
  (void)t.f32();
  EXPECT_EQ(t.version(), v0) << "read access leaves the version alone";
  t.mutable_f32();
  EXPECT_GT(t.version(), v0);
  Tensor view = t.reshape({2, 2});
  const uint64_t v1 = t.version();
  view.mutable_f32();
  EXPECT_GT(t.version(), v1) << "a view shares the storage and so the version";
}

TEST(Tensor, ToDTypeConversions) {
  // Values exactly representable in bf16 and f16 come back unchanged.
  Tensor t = Tensor::from_floats({1.0f, -2.5f, 0.0f, 0.15625f, 1024.0f}, {5});
  for (DType dt : {DType::BF16, DType::F16}) {
    Tensor h = t.to(dt);
    EXPECT_EQ(h.dtype(), dt);
    EXPECT_EQ(h.nbytes(), 10u);
    EXPECT_EQ(h.to_floats(), t.to_floats()) << dtype_name(dt);
    EXPECT_EQ(h.to(DType::F32).to_floats(), t.to_floats());
  }
  // Rounding happens: 1 + 2^-8 is a bf16 tie (to 1.0) and exact in f16.
  Tensor r = Tensor::from_floats({1.0f + 0x1.0p-8f}, {1});
  EXPECT_EQ(r.to(DType::BF16).data<uint16_t>()[0], 0x3F80);
  EXPECT_EQ(r.to(DType::F16).data<uint16_t>()[0], 0x3C04);
  EXPECT_EQ(r.to(DType::BF16).item(), 1.0f);
  // Integer widening and float -> int (truncation toward zero, like a C cast).
  Tensor ids = Tensor::from_ints({-3, 0, 70000}, {3});
  Tensor wide = ids.to(DType::I64);
  EXPECT_EQ(wide.dtype(), DType::I64);
  EXPECT_EQ(wide.data<int64_t>()[0], -3);
  EXPECT_EQ(wide.data<int64_t>()[2], 70000);
  EXPECT_EQ(ids.to(DType::F32).to_floats(), (std::vector<float>{-3.0f, 0.0f, 70000.0f}));
  Tensor f = Tensor::from_floats({2.75f, -2.75f}, {2});
  EXPECT_EQ(f.to(DType::I32).i32()[0], 2);
  EXPECT_EQ(f.to(DType::I32).i32()[1], -2);
  // Converting to the same dtype is a no-op handle.
  EXPECT_TRUE(t.to(DType::F32).same_as(t));
}

TEST(Tensor, TypedAccessChecksTheDType) {
  Tensor ids = Tensor::from_ints({1}, {1});
  EXPECT_THROW(ids.f32(), Error);
  EXPECT_THROW(Tensor::zeros({1}).i32(), Error);
  EXPECT_THROW(ids.set_requires_grad(true), Error) << "only f32 tensors can be trained";
  EXPECT_THROW(Tensor::zeros({2}).item(), Error);
}

TEST(Tensor, CheckShapeAndDTypeNameExpectedAndGot) {
  Tensor t = Tensor::zeros({3, 2});
  std::string msg = error_of([&] { check_shape(t, {2, 3}, "my weight"); });
  EXPECT_NE(msg.find("my weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected (2, 3)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("got (3, 2)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  EXPECT_NO_THROW(check_shape(t, {3, 2}, "ok"));

  msg = error_of([&] { check_dtype(t, DType::I32, "token ids"); });
  EXPECT_NE(msg.find("token ids"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected i32"), std::string::npos) << msg;
  EXPECT_NE(msg.find("got f32"), std::string::npos) << msg;
  EXPECT_NO_THROW(check_dtype(t, DType::F32, "ok"));

  msg = error_of([&] { check_ndim(t, 3, "activations"); });
  EXPECT_NE(msg.find("3-D"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(3, 2)"), std::string::npos) << msg;
}

TEST(Tensor, UndefinedTensorUseThrows) {
  Tensor u;
  EXPECT_FALSE(u.defined());
  EXPECT_FALSE(u.requires_grad());
  EXPECT_THROW(u.shape(), Error);
  EXPECT_THROW(u.numel(), Error);
  EXPECT_THROW(u.f32(), Error);
  EXPECT_THROW(u.reshape({1}), Error);
  EXPECT_THROW(u.clone(), Error);
  EXPECT_THROW(u.to(DType::BF16), Error);
  EXPECT_THROW(u.grad(), Error);
  const std::string msg = error_of([&] { check_shape(u, {1}, "input x"); });
  EXPECT_NE(msg.find("input x"), std::string::npos) << msg;
  EXPECT_NE(msg.find("undefined"), std::string::npos) << msg;
}

TEST(Tensor, CopyFromAndFill) {
  Tensor a = Tensor::full({2, 2}, 3.5f);
  Tensor b = Tensor::zeros({2, 2});
  b.copy_from(a);
  EXPECT_EQ(b.to_floats(), (std::vector<float>{3.5f, 3.5f, 3.5f, 3.5f}));
  EXPECT_NE(b.raw(), a.raw());
  EXPECT_THROW(b.copy_from(Tensor::zeros({4})), Error);
  EXPECT_THROW(b.copy_from(Tensor::zeros({2, 2}, DType::I32)), Error);
}

TEST(Tensor, WrapKeepsOwnerAliveUntilReleased) {
  auto owner = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3, 4, 5, 6});
  std::weak_ptr<std::vector<float>> watch = owner;
  Tensor t = Tensor::wrap(owner->data(), {2, 3}, DType::F32, owner);
  owner.reset();
  EXPECT_FALSE(watch.expired()) << "the tensor keeps the memory alive";
  EXPECT_EQ(t.f32()[5], 6.0f);
  t = Tensor();
  EXPECT_TRUE(watch.expired()) << "dropping the last tensor releases the owner";
}

}  // namespace
}  // namespace sllm
