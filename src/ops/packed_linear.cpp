// y = x·deq(W)ᵀ + b for a frozen packed weight (ops/packed_weight.h; QLoRA's NF4 base).
// W has no gradient, so backward is dx = g·deq(W) and db = Σ_rows g only: unlike
// ops::linear, the node saves nothing of x (its shape and dtype are all dx needs).
// The products themselves are the PackedWeight's (src/quant/quantized_weight.cpp), which
// dequantizes tiles of W into a bounded workspace right before each GEMM.
#include <cstring>

#include "autograd/autograd.h"
#include "ops/linear_detail.h"
#include "ops/op_common.h"
#include "ops/ops.h"

namespace sllm::ops {

namespace detail {

void check_packed_linear_operands(const Tensor& x, const PackedWeight& w, const Tensor& bias) {
  const Device dev = x.device();
  detail::check_float(x, "packed linear input", dev);
  SLLM_CHECK(w.device() == dev,
             str("packed linear: the ", w.format(), " weight is on ", device_name(w.device()), ", the input on ",
                 device_name(dev)),
             "move the model and its inputs to one device");
  SLLM_CHECK(x.ndim() >= 1 && x.dim(-1) == w.in_features(),
             str("packed linear: input ", shape_str(x.shape()), " does not end in in_features = ", w.in_features()),
             "the weight is (out_features, in_features), the nn.Linear layout");
  if (bias.defined()) {
    detail::check_f32(bias, "packed linear bias", dev);
    check_shape(bias, {w.out_features()}, "packed linear bias");
  }
}

// y = x·deq(W)ᵀ + b without a graph node, in x's dtype.
Tensor packed_linear_forward(const Tensor& x, const PackedWeight& w, const Tensor& bias) {
  const Device dev = x.device();
  const int64_t N = detail::rows_of(x), out_features = w.out_features();
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  Tensor y = Tensor::empty(out_shape, x.dtype(), dev);
  if (!bias.defined() || N * out_features == 0) {
    w.forward(x, y, 0.0f);
  } else if (x.dtype() == DType::F32 && dev == Device::CPU) {  // bias rows first, GEMM adds onto them
    float* yp = y.mutable_f32();
    for (int64_t i = 0; i < N; ++i) std::memcpy(yp + i * out_features, bias.f32(), size_t(out_features) * sizeof(float));
    w.forward(x, y, 1.0f);
  } else if (x.dtype() == DType::F32) {  // CUDA f32: GEMM, then the bias added in place (as ops::linear)
    w.forward(x, y, 0.0f);
    SLLM_KERNEL(dev, binary_forward, kernels::BinaryOp::Add, y.mutable_f32(), y.f32(), bias.f32(), N * out_features,
                out_features);
  } else {
#if SLLM_HAVE_CUDA  // bf16 (CUDA only): the bias rows in bf16, then the GEMM adds onto them (as linear_bf16)
    kernels::cuda::broadcast_rows(y.mutable_data<bf16>(), bias.f32(), N, out_features);
    w.forward(x, y, 1.0f);
#endif
  }
  return y;
}

void add_bias_grad(Tensor& db, const Tensor& g, const Tensor& bias) {
  if (g.dtype() == DType::F32) return add_bias_grad_f32(db, g, bias);
#if SLLM_HAVE_CUDA
  const int64_t n = g.numel(), out_features = bias.numel();
  if (n > 0)
    kernels::cuda::binary_backward(kernels::BinaryOp::Add, static_cast<bf16*>(nullptr), db.mutable_f32(),
                                   detail::bf(g), detail::bf(g), bias.f32(), n, out_features);
#endif
}

}  // namespace detail

Tensor packed_linear(const Tensor& x, const std::shared_ptr<const PackedWeight>& weight, const Tensor& bias) {
  SLLM_CHECK(weight != nullptr, "packed_linear: no weight", "pass the Linear's packed weight");
  detail::check_packed_linear_operands(x, *weight, bias);
  Tensor out = detail::packed_linear_forward(x, *weight, bias);
  if (autograd::needs_grad({x, bias})) {
    const bool x_grad = x.requires_grad();
    const Shape x_shape = x.shape();
    const DType x_dtype = x.dtype();
    Tensor bias_in = bias;
    autograd::record(out, "packed_linear", {x, bias},
                     [weight, bias_in, x_grad, x_shape, x_dtype](const Tensor& g) {
      Tensor dx, db = detail::grad_for(bias_in);
      if (x_grad) {  // dx (N, in) = g (N, out) · deq(W) (out, in), written whole (beta = 0)
        dx = Tensor::empty(x_shape, x_dtype, g.device());
        weight->backward_dx(g, dx, 0.0f);
      }
      if (db.defined()) detail::add_bias_grad(db, g, bias_in);
      return std::vector<Tensor>{dx, db};
    });
  }
  return out;
}
}  // namespace sllm::ops
