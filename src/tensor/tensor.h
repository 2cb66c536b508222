// Tensor: a shape, a dtype and a view into shared Storage. Always contiguous row-major;
// reshape is a view (shares storage), transpose/slice/concat are explicit copies (in ops/).
// A Tensor is a cheap handle (shared_ptr); copies alias the same tensor.
//
// The autograd fields (requires_grad, grad, grad_fn) live here so every layer can carry
// them, but only src/autograd knows what a Node is.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/storage.h"

namespace sllm {

namespace autograd {
struct Node;
}

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "(2, 3, 4)"
int64_t shape_numel(const Shape& s);

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::F32;
  // autograd
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;               // accumulated gradient of a leaf
  std::shared_ptr<autograd::Node> grad_fn;        // the op that produced this tensor
  std::string name;                               // parameter name, for messages
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Factories. empty() leaves bytes uninitialized.
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, float value);
  static Tensor from_floats(const std::vector<float>& values, const Shape& shape);
  static Tensor from_ints(const std::vector<int32_t>& values, const Shape& shape);
  // Wraps memory owned elsewhere (e.g. an mmap'd file); `keep_alive` is held until released.
  static Tensor wrap(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> keep_alive);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t ndim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t dim(int64_t i) const;  // negative counts from the end
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }

  // Raw data. Read access is const; mutable access bumps the storage version (see Storage).
  const void* raw() const;
  void* mutable_raw();
  const float* f32() const;
  float* mutable_f32();
  const int32_t* i32() const;
  int32_t* mutable_i32();
  template <typename T>
  const T* data() const { return static_cast<const T*>(raw()); }
  template <typename T>
  T* mutable_data() { return static_cast<T*>(mutable_raw()); }
  uint64_t version() const { return impl().storage->version(); }

  // A view with another shape and the same elements (one dim may be -1). No autograd
  // history: use ops::reshape inside a differentiable computation.
  Tensor reshape(const Shape& shape) const;
  Tensor clone() const;                 // deep copy, no autograd history
  Tensor detach() const;                // same storage, no autograd history
  Tensor to(DType dtype) const;         // conversion (f32 <-> bf16/f16, int widening)
  Tensor to(Device device) const;       // host <-> device copy
  std::vector<float> to_floats() const; // any float dtype, as f32 values on the host
  float item() const;                   // the value of a one-element tensor
  void zero_();
  void fill_(float value);
  void copy_from(const Tensor& src);    // same shape and dtype

  // autograd
  bool requires_grad() const { return impl_ && impl().requires_grad; }
  Tensor& set_requires_grad(bool on);
  Tensor grad() const;                  // undefined Tensor until backward reached this leaf
  void zero_grad();                     // drops the accumulated gradient
  void set_grad(const Tensor& g);
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }
  void set_grad_fn(std::shared_ptr<autograd::Node> fn) { impl().grad_fn = std::move(fn); }
  const std::string& name() const { return impl().name; }
  Tensor& set_name(std::string name);

  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same_as(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Shape/dtype checks for op inputs: sllm::Error "what: expected X, got Y" with a hint.
void check_shape(const Tensor& t, const Shape& expected, const std::string& what);
void check_dtype(const Tensor& t, DType expected, const std::string& what);
void check_ndim(const Tensor& t, int64_t ndim, const std::string& what);
void check_defined(const Tensor& t, const std::string& what);

}  // namespace sllm
