#include "tensor/bf16_shadow.h"

#include <algorithm>
#include <memory>

#include "core/error.h"

namespace sllm {
namespace {

Bf16CastFn g_cuda_cast = nullptr;

Shape with_rows(Shape shape, int64_t rows) {
  shape[0] = rows;
  return shape;
}

// The slot holds a shadow of exactly w's view (offset and shape) of the storage.
bool shadows_view(const std::shared_ptr<Bf16Shadow>& s, const Tensor& w) {
  return s && s->offset == w.impl().offset && s->shape == w.shape();
}

// out's first w.numel() elements = w rounded to bf16 (out's other rows are left alone).
void cast_into(Tensor& out, const Tensor& w) {
  const int64_t n = w.numel();
  bf16* dst = out.mutable_data<bf16>();  // bumps the shadow's version, which we record next
  if (n == 0) return;
  if (w.device() == Device::CPU) {
    const float* src = w.f32();
    for (int64_t i = 0; i < n; ++i) dst[i].bits = f32_to_bf16(src[i]);
    return;
  }
  SLLM_CHECK(g_cuda_cast != nullptr, "bf16_shadow of a CUDA tensor, but no CUDA cast is registered",
             "call ops::init_device(Device::CUDA) before using CUDA tensors");
  g_cuda_cast(dst, w.f32(), n);
}

void record_versions(Bf16Shadow& s, const Tensor& w) {
  s.weight_version = w.version();
  s.data_version = s.data.version();
}

// The first `rows` rows of data (a view sharing its storage), or data itself.
Tensor first_rows(const Tensor& data, int64_t rows) {
  if (data.dim(0) == rows) return data;
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = data.impl().storage;
  impl->offset = data.impl().offset;
  impl->shape = with_rows(data.shape(), rows);
  impl->dtype = data.dtype();
  return Tensor(std::move(impl));
}

}  // namespace

Tensor bf16_shadow(const Tensor& w, int64_t padded_rows) {
  check_defined(w, "bf16_shadow weight");
  check_dtype(w, DType::F32, "bf16_shadow weight");
  SLLM_CHECK(w.ndim() >= 1, "bf16_shadow of a 0-d tensor", "shadow a weight (a matrix or a vector)");
  const int64_t rows = w.dim(0);
  SLLM_CHECK(padded_rows == 0 || padded_rows >= rows,
             str("bf16_shadow: padded_rows=", padded_rows, " is fewer than the weight's ", rows, " rows"),
             "pass 0 for no padding, or the padded row count (>= the rows)");
  const int64_t want_rows = std::max(rows, padded_rows);
  std::shared_ptr<Bf16Shadow>& slot = w.impl().storage->bf16_shadow_slot();
  // A fresh buffer when there is none for this view, when it has too few rows, or when
  // someone wrote into the shadow itself (its padding rows may not be zero any more).
  if (!shadows_view(slot, w) || slot->data.dim(0) < want_rows || slot->data.version() != slot->data_version) {
    auto s = std::make_shared<Bf16Shadow>();
    const Shape shape = with_rows(w.shape(), want_rows);
    s->data = want_rows > rows ? Tensor::zeros(shape, DType::BF16, w.device()) : Tensor::empty(shape, DType::BF16, w.device());
    s->offset = w.impl().offset;
    s->shape = w.shape();
    cast_into(s->data, w);
    record_versions(*s, w);
    slot = std::move(s);
  } else if (slot->weight_version != w.version()) {  // the weight moved: re-cast in place
    cast_into(slot->data, w);
    record_versions(*slot, w);
  }
  return first_rows(slot->data, want_rows);
}

Tensor existing_bf16_shadow(const Tensor& w) {
  const std::shared_ptr<Bf16Shadow>& slot = w.impl().storage->bf16_shadow_slot();
  return shadows_view(slot, w) ? slot->data : Tensor();
}

void mark_bf16_shadow_current(const Tensor& w) {
  const std::shared_ptr<Bf16Shadow>& slot = w.impl().storage->bf16_shadow_slot();
  SLLM_ASSERT(shadows_view(slot, w));
  record_versions(*slot, w);
}

void register_bf16_cast(Device device, Bf16CastFn fn) {
  SLLM_ASSERT(device == Device::CUDA);
  g_cuda_cast = fn;
}

}  // namespace sllm
