// LoRA's adapted Linear as one autograd node (Hu et al. 2021, "LoRA", equation 3):
//   y = x·Wᵀ + b + s · h·Aᵀ·Bᵀ,   h = dropout(x),   u = h·Aᵀ  (N, r)
// Gradients, for upstream g = dL/dy (N, out) and gu = s · g·B (N, r):
//   dB = s · gᵀ·u        (out, r)
//   dA = guᵀ·h           (r, in)
//   dx = g·W + mask ∘ (gu·A) / (1 - p)      (only the first term without dropout)
//   dW = gᵀ·x, db = Σ_rows g                 (only when W, b require grad)
// Composing the same thing from ops::dropout, two ops::linear, ops::scale and ops::add (the
// bf16 path in lora/lora_layer.cpp) costs passes a fused node skips: the (N, out) `up`
// tensor and the add that reads it back, a scaled copy of B, a saved f32 copy of h per
// layer, and the separate accumulation of the adapter's dx into the base's. Here u·Bᵀ is
// accumulated straight onto the base product (GEMM with beta = 1), the adapter's dx onto
// the base dx (beta = 1, or dropout_backward's +=), and only the (N, r) u and the dropout
// mask (N·in bytes) are saved; h is rebuilt from x and the mask in backward.
// The base may be a dense W or a packed frozen one (QLoRA's NF4, ops/packed_weight.h): the
// same node, with the base's product and dx computed by the PackedWeight.
#include "autograd/autograd.h"
#include "ops/linear_detail.h"
#include "ops/op_common.h"
#include "ops/ops.h"

namespace sllm::ops {

using detail::check_f32;

namespace {

// The base product of the adapted Linear: a dense W (ops::linear's f32 pieces; W and b may
// train) or a packed frozen W (QLoRA; only b may train).
struct DenseBase {
  Tensor weight;
  int64_t in() const { return weight.dim(1); }
  int64_t out() const { return weight.dim(0); }
  std::vector<Tensor> inputs(const Tensor& x, const Tensor& bias) const { return {x, weight, bias}; }
  Tensor forward(const Tensor& x, const Tensor& bias) const { return detail::linear_forward_f32(x, weight, bias); }
  detail::LinearGrads backward(const Tensor& g, const Tensor& X, const Tensor& bias) const {
    return detail::linear_backward_f32(g, X, weight, bias);  // dx = g·W, dW, db
  }
  static std::vector<Tensor> grads(const detail::LinearGrads& b, const Tensor& dA, const Tensor& dB) {
    return {b.dx, b.dw, b.db, dA, dB};
  }
};

struct PackedBase {
  std::shared_ptr<const PackedWeight> weight;
  int64_t in() const { return weight->in_features(); }
  int64_t out() const { return weight->out_features(); }
  std::vector<Tensor> inputs(const Tensor& x, const Tensor& bias) const { return {x, bias}; }
  Tensor forward(const Tensor& x, const Tensor& bias) const { return detail::packed_linear_forward(x, *weight, bias); }
  detail::LinearGrads backward(const Tensor& g, const Tensor& X, const Tensor& bias) const {
    detail::LinearGrads r{detail::grad_buffer_for(X), Tensor(), detail::grad_for(bias)};
    if (r.dx.defined()) weight->backward_dx(g, r.dx, 0.0f);  // dx = g·deq(W)
    if (r.db.defined()) detail::add_bias_grad_f32(r.db, g, bias);
    return r;
  }
  static std::vector<Tensor> grads(const detail::LinearGrads& b, const Tensor& dA, const Tensor& dB) {
    return {b.dx, b.db, dA, dB};
  }
};

template <class Base>
Tensor lora_linear_on(const Base& base, const Tensor& x, const Tensor& bias, const Tensor& A, const Tensor& B,
                      float scale, float dropout_p, uint64_t dropout_seed) {
  const Device dev = x.device();
  check_f32(x, "lora_linear input", dev);
  check_f32(A, "lora_linear A", dev);
  check_f32(B, "lora_linear B", dev);
  const int64_t in = base.in(), out_features = base.out();
  SLLM_CHECK(A.ndim() == 2 && A.dim(1) == in && A.dim(0) > 0,
             str("lora_linear: A is ", shape_str(A.shape()), ", expected (r, ", in, ")"), "A is (r, in_features)");
  const int64_t r = A.dim(0);
  check_shape(B, {out_features, r}, "lora_linear B (out, r)");
  SLLM_CHECK(dropout_p >= 0.0f && dropout_p < 1.0f, str("lora_linear: dropout p = ", dropout_p, " is outside [0, 1)"),
             "use a probability like 0.05");

  const int64_t N = detail::rows_of(x), n = x.numel();
  Tensor out = base.forward(x, bias);
  Tensor h = x, mask;  // h = dropout(x): a temporary, rebuilt in backward from x and mask
  if (dropout_p > 0.0f) {
    h = Tensor::empty(x.shape(), DType::F32, dev);
    mask = Tensor::empty(x.shape(), DType::U8, dev);
    SLLM_KERNEL(dev, dropout_forward, h.mutable_f32(), mask.mutable_data<uint8_t>(), x.f32(), n, dropout_p,
                dropout_seed, 0);
  }
  Tensor u = Tensor::empty({N, r}, DType::F32, dev);  // u = h·Aᵀ
  SLLM_KERNEL(dev, sgemm, false, true, N, r, in, 1.0f, h.f32(), in, A.f32(), in, 0.0f, u.mutable_f32(), r);
  // y += s · u·Bᵀ
  SLLM_KERNEL(dev, sgemm, false, true, N, out_features, r, scale, u.f32(), r, B.f32(), r, 1.0f, out.mutable_f32(),
              out_features);

  std::vector<Tensor> inputs = base.inputs(x, bias);
  inputs.push_back(A);
  inputs.push_back(B);
  if (autograd::needs_grad(inputs)) {
    autograd::SavedTensor sx(x, "lora_linear"), sa(A, "lora_linear"), sb(B, "lora_linear");
    Tensor bias_in = bias;
    autograd::record(out, "lora_linear", std::move(inputs),
                     [base, sx, sa, sb, bias_in, u, mask, scale, dropout_p, N, n, in, out_features, r](const Tensor& g) {
      const Device dev = g.device();
      const Tensor& X = sx.get();
      const Tensor& Av = sa.get();
      const Tensor& Bv = sb.get();
      detail::LinearGrads bg = base.backward(g, X, bias_in);  // dx = g·W, dW, db
      Tensor dA = detail::grad_buffer_for(Av), dB = detail::grad_buffer_for(Bv);
      if (dB.defined())  // dB = s · gᵀ·u
        SLLM_KERNEL(dev, sgemm, true, false, out_features, r, N, scale, g.f32(), out_features, u.f32(), r, 0.0f,
                    dB.mutable_f32(), r);
      if (!dA.defined() && !bg.dx.defined()) return Base::grads(bg, dA, dB);
      Tensor gu = Tensor::empty({N, r}, DType::F32, dev);  // gu = s · g·B
      SLLM_KERNEL(dev, sgemm, false, false, N, r, out_features, scale, g.f32(), out_features, Bv.f32(), r, 0.0f,
                  gu.mutable_f32(), r);
      Tensor h = X;
      if (dropout_p > 0.0f && dA.defined()) {  // h = x ∘ mask / (1 - p), dropout_backward's += onto zeros
        h = Tensor::zeros(X.shape(), DType::F32, dev);
        SLLM_KERNEL(dev, dropout_backward, h.mutable_f32(), X.f32(), mask.data<uint8_t>(), n, dropout_p);
      } else if (dropout_p > 0.0f) {
        h = Tensor::empty(X.shape(), DType::F32, dev);  // only the scratch for gu·A below
      }
      if (dA.defined())  // dA = guᵀ·h
        SLLM_KERNEL(dev, sgemm, true, false, r, in, N, 1.0f, gu.f32(), r, h.f32(), in, 0.0f, dA.mutable_f32(), in);
      if (bg.dx.defined()) {
        if (dropout_p == 0.0f) {  // dx += gu·A
          SLLM_KERNEL(dev, sgemm, false, false, N, in, r, 1.0f, gu.f32(), r, Av.f32(), in, 1.0f,
                      bg.dx.mutable_f32(), in);
        } else {  // dx += mask ∘ (gu·A) / (1 - p), reusing h's buffer for gu·A
          SLLM_KERNEL(dev, sgemm, false, false, N, in, r, 1.0f, gu.f32(), r, Av.f32(), in, 0.0f, h.mutable_f32(), in);
          SLLM_KERNEL(dev, dropout_backward, bg.dx.mutable_f32(), h.f32(), mask.data<uint8_t>(), n, dropout_p);
        }
      }
      return Base::grads(bg, dA, dB);
    });
  }
  return out;
}

}  // namespace

Tensor lora_linear(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& A, const Tensor& B,
                   float scale, float dropout_p, uint64_t dropout_seed) {
  detail::check_linear_operands(x, weight, bias, x.device());
  return lora_linear_on(DenseBase{weight}, x, bias, A, B, scale, dropout_p, dropout_seed);
}

Tensor lora_linear(const Tensor& x, const std::shared_ptr<const PackedWeight>& weight, const Tensor& bias,
                   const Tensor& A, const Tensor& B, float scale, float dropout_p, uint64_t dropout_seed) {
  SLLM_CHECK(weight != nullptr, "lora_linear: no packed weight", "pass the Linear's packed weight");
  detail::check_packed_linear_operands(x, *weight, bias);
  return lora_linear_on(PackedBase{weight}, x, bias, A, B, scale, dropout_p, dropout_seed);
}

}  // namespace sllm::ops
