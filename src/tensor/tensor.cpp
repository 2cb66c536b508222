#include "tensor/tensor.h"

#include <cstring>

#include "core/error.h"

namespace sllm {

std::string shape_str(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

static void check_valid_shape(const Shape& shape) {
  for (int64_t d : shape)
    SLLM_CHECK(d >= 0, str("invalid tensor shape ", shape_str(shape), ": negative dimension"),
               "every dimension must be >= 0");
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_valid_shape(shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.zero_();
  return t;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_floats(const std::vector<float>& values, const Shape& shape) {
  SLLM_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
             str("from_floats: ", values.size(), " values do not fill shape ", shape_str(shape)),
             "the number of values must equal the product of the shape");
  Tensor t = empty(shape);
  std::memcpy(t.mutable_raw(), values.data(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::from_ints(const std::vector<int32_t>& values, const Shape& shape) {
  SLLM_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
             str("from_ints: ", values.size(), " values do not fill shape ", shape_str(shape)),
             "the number of values must equal the product of the shape");
  Tensor t = empty(shape, DType::I32);
  std::memcpy(t.mutable_raw(), values.data(), values.size() * sizeof(int32_t));
  return t;
}

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> keep_alive) {
  check_valid_shape(shape);
  auto impl = std::make_shared<TensorImpl>();
  const size_t nbytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  impl->storage = std::make_shared<Storage>(data, nbytes, Device::CPU, [keep_alive]() {});
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

TensorImpl& Tensor::impl() const {
  SLLM_CHECK(impl_ != nullptr, "use of an undefined (empty) tensor",
             "the tensor was never assigned; for a gradient, run backward() first");
  return *impl_;
}

int64_t Tensor::dim(int64_t i) const {
  const int64_t n = ndim();
  const int64_t j = i < 0 ? i + n : i;
  SLLM_CHECK(j >= 0 && j < n, str("dimension ", i, " out of range for a tensor of shape ", shape_str(shape())),
             str("valid dimensions are ", -n, " .. ", n - 1));
  return impl().shape[static_cast<size_t>(j)];
}

const void* Tensor::raw() const {
  const auto& m = impl();
  return static_cast<const char*>(m.storage->data()) + m.offset * static_cast<int64_t>(dtype_size(m.dtype));
}

void* Tensor::mutable_raw() {
  auto& m = impl();
  m.storage->bump_version();
  return static_cast<char*>(m.storage->data()) + m.offset * static_cast<int64_t>(dtype_size(m.dtype));
}

const float* Tensor::f32() const {
  check_dtype(*this, DType::F32, "f32()");
  return static_cast<const float*>(raw());
}
float* Tensor::mutable_f32() {
  check_dtype(*this, DType::F32, "mutable_f32()");
  return static_cast<float*>(mutable_raw());
}
const int32_t* Tensor::i32() const {
  check_dtype(*this, DType::I32, "i32()");
  return static_cast<const int32_t*>(raw());
}
int32_t* Tensor::mutable_i32() {
  check_dtype(*this, DType::I32, "mutable_i32()");
  return static_cast<int32_t*>(mutable_raw());
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      SLLM_CHECK(infer < 0, str("reshape to ", shape_str(shape), ": more than one -1"), "at most one dimension may be -1");
      infer = static_cast<int64_t>(i);
    } else {
      SLLM_CHECK(s[i] >= 0, str("reshape to ", shape_str(shape), ": negative dimension"), "dimensions must be >= 0 or -1");
      known *= s[i];
    }
  }
  if (infer >= 0) {
    SLLM_CHECK(known > 0 && numel() % known == 0,
               str("reshape: cannot infer -1 in ", shape_str(shape), " for ", numel(), " elements"),
               "the other dimensions must divide the element count");
    s[static_cast<size_t>(infer)] = numel() / known;
  }
  SLLM_CHECK(shape_numel(s) == numel(),
             str("reshape: shape ", shape_str(s), " has ", shape_numel(s),
                 " elements, expected ", numel(), " (from ", shape_str(this->shape()), ")"),
             "reshape keeps the number of elements");
  auto impl = std::make_shared<TensorImpl>(*impl_);
  impl->shape = s;
  impl->grad = nullptr;
  impl->grad_fn = nullptr;  // a raw view has no history; ops::reshape is the differentiable one
  impl->requires_grad = false;
  impl->name.clear();
  return Tensor(std::move(impl));
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape(), dtype(), device());
  t.copy_from(*this);
  return t;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

void Tensor::copy_from(const Tensor& src) {
  check_shape(src, shape(), "copy_from source");
  check_dtype(src, dtype(), "copy_from source");
  if (device() == Device::CPU && src.device() == Device::CPU) {
    std::memcpy(mutable_raw(), src.raw(), nbytes());
  } else if (src.device() == Device::CPU) {
    allocator_for(device()).copy_from_host(mutable_raw(), src.raw(), nbytes());
  } else if (device() == src.device()) {
    allocator_for(device()).copy_within(mutable_raw(), src.raw(), nbytes());
  } else {
    SLLM_CHECK(device() == Device::CPU, "copy between two devices is not supported",
               "copy through the host with .to(Device::CPU)");
    allocator_for(src.device()).copy_to_host(mutable_raw(), src.raw(), nbytes());
  }
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor t = empty(shape(), dtype(), device);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor host = to(Device::CPU);
  Tensor out = empty(shape(), target);
  const int64_t n = numel();
  auto load = [&](int64_t i) -> double {
    switch (host.dtype()) {
      case DType::F32: return host.data<float>()[i];
      case DType::BF16: return bf16_to_f32(host.data<uint16_t>()[i]);
      case DType::F16: return f16_to_f32(host.data<uint16_t>()[i]);
      case DType::I32: return host.data<int32_t>()[i];
      case DType::I64: return static_cast<double>(host.data<int64_t>()[i]);
      case DType::U8: return host.data<uint8_t>()[i];
    }
    return 0;
  };
  void* dst = out.mutable_raw();
  for (int64_t i = 0; i < n; ++i) {
    const double v = load(i);
    switch (target) {
      case DType::F32: static_cast<float*>(dst)[i] = static_cast<float>(v); break;
      case DType::BF16: static_cast<uint16_t*>(dst)[i] = f32_to_bf16(static_cast<float>(v)); break;
      case DType::F16: static_cast<uint16_t*>(dst)[i] = f32_to_f16(static_cast<float>(v)); break;
      case DType::I32: static_cast<int32_t*>(dst)[i] = static_cast<int32_t>(v); break;
      case DType::I64: static_cast<int64_t*>(dst)[i] = static_cast<int64_t>(v); break;
      case DType::U8: static_cast<uint8_t*>(dst)[i] = static_cast<uint8_t>(v); break;
    }
  }
  return out.to(device());
}

std::vector<float> Tensor::to_floats() const {
  Tensor f = to(DType::F32).to(Device::CPU);
  const float* p = f.f32();
  return std::vector<float>(p, p + f.numel());
}

float Tensor::item() const {
  SLLM_CHECK(numel() == 1, str("item() needs a one-element tensor, got shape ", shape_str(shape())),
             "reduce the tensor first (sum/mean) or index one element");
  return to_floats()[0];
}

void Tensor::zero_() { allocator_for(device()).fill_zero(mutable_raw(), nbytes()); }

void Tensor::fill_(float value) {
  SLLM_CHECK(device() == Device::CPU && dtype() == DType::F32, "fill_ supports f32 host tensors",
             "fill on the host, then copy with .to(device)");
  float* p = mutable_f32();
  for (int64_t i = 0; i < numel(); ++i) p[i] = value;
}

Tensor& Tensor::set_requires_grad(bool on) {
  SLLM_CHECK(!on || dtype() == DType::F32 || dtype() == DType::BF16,
             str("requires_grad needs an f32 or bf16 tensor, got ", dtype_name(dtype())),
             "only f32 (and bf16, for mixed-precision activations) tensors can carry gradients; keep f16/int tensors frozen");
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return Tensor(impl().grad); }
void Tensor::zero_grad() { impl().grad = nullptr; }
void Tensor::set_grad(const Tensor& g) { impl().grad = g.impl_ptr(); }

Tensor& Tensor::set_name(std::string name) {
  impl().name = std::move(name);
  return *this;
}

void check_defined(const Tensor& t, const std::string& what) {
  SLLM_CHECK(t.defined(), str(what, ": tensor is undefined"), "pass a tensor that was created or computed");
}

void check_shape(const Tensor& t, const Shape& expected, const std::string& what) {
  check_defined(t, what);
  SLLM_CHECK(t.shape() == expected,
             str(what, ": shape mismatch: expected ", shape_str(expected), ", got ", shape_str(t.shape())),
             "check the tensor sizes passed to this op");
}

void check_dtype(const Tensor& t, DType expected, const std::string& what) {
  check_defined(t, what);
  SLLM_CHECK(t.dtype() == expected,
             str(what, ": dtype mismatch: expected ", dtype_name(expected), ", got ", dtype_name(t.dtype())),
             "convert with .to(DType) first");
}

void check_ndim(const Tensor& t, int64_t ndim, const std::string& what) {
  check_defined(t, what);
  SLLM_CHECK(t.ndim() == ndim,
             str(what, ": expected a ", ndim, "-D tensor, got shape ", shape_str(t.shape())),
             "check the tensor sizes passed to this op");
}

}  // namespace sllm
