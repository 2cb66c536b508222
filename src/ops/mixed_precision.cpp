// The bf16 (mixed-precision) linear and mixed-dtype binary op (see mixed_precision.h for
// the recipe), and ops::cast, the explicit f32 <-> bf16 conversion.
#include "ops/mixed_precision.h"

#include "tensor/bf16_shadow.h"

#include "ops/op_common.h"
#include "ops/ops.h"

namespace sllm::ops {

using detail::bf;
using detail::mutable_bf;
using detail::ptr;

#if SLLM_HAVE_CUDA
namespace cu = kernels::cuda;

namespace detail {

Tensor linear_bf16(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const Device dev = x.device();
  const int64_t N = rows_of(x), in = weight.dim(1), out_features = weight.dim(0);
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  // The fp32 master weight rounded to bf16: its cached shadow (tensor/bf16_shadow.h), kept
  // current by the CUDA AdamW, so no cast runs in steady training. Backward's dx GEMM reads
  // the same copy (the product the forward used; the optimizer steps after backward).
  Tensor w16 = bf16_shadow(weight);  // (out, in)
  Tensor out = Tensor::empty(out_shape, DType::BF16, dev);
  bf16* y = out.mutable_data<bf16>();  // (N, out)
  const bool has_bias = bias.defined() && N * out_features > 0;
  // The bias in bf16, added to the GEMM's fp32 sum before its one rounding: in cuBLASLt's
  // epilogue when it has an algorithm for the shape, else by pre-filling the output with the
  // bias rows and letting the GEMM add x·Wᵀ (beta = 1), the same arithmetic.
  bool fused = false;
  if (has_bias && in > 0) {
    const Tensor b16 = bf16_shadow(bias);
    fused = cu::gemm_bias(false, true, N, out_features, in, bf(x), in, bf(w16), in, bf(b16), y, out_features);
  }
  if (!fused) {
    float beta = 0.0f;
    if (has_bias) {
      cu::broadcast_rows(y, bias.f32(), N, out_features);
      beta = 1.0f;
    }
    cu::gemm(false, true, N, out_features, in, 1.0f, bf(x), in, bf(w16), in, beta, y, out_features);
  }
  if (autograd::needs_grad({x, weight, bias})) {
    autograd::SavedTensor sx(x, "linear");
    Tensor bias_in = bias;
    autograd::record(out, "linear", {x, weight, bias}, [sx, w16, weight, bias_in, N, in, out_features](const Tensor& g) {
      const Tensor& X = sx.get();
      // dx (bf16) and dW (fp32, the master's gradient) are written by GEMM with beta = 0.
      Tensor dx = grad_buffer_for(X), dw = grad_buffer_for(weight), db = grad_buffer_for(bias_in);
      if (dx.defined())  // dx (N, in) = g (N, out) · W (out, in)
        cu::gemm(false, false, N, in, out_features, 1.0f, bf(g), out_features, bf(w16), in, 0.0f, mutable_bf(dx), in);
      // dW (out, in) = gᵀ · X, accumulated in fp32 and kept fp32; dbias = the column sums of g,
      // in the same cuBLASLt call when both are wanted.
      const bool sizes = N > 0 && in > 0 && out_features > 0;
      const bool fused_db = sizes && dw.defined() && db.defined() &&
                            cu::gemm_bias_grad(true, false, out_features, in, N, bf(g), out_features, bf(X), in,
                                               dw.mutable_f32(), in, db.mutable_f32());
      if (dw.defined() && !fused_db)
        cu::gemm(true, false, out_features, in, N, 1.0f, bf(g), out_features, bf(X), in, 0.0f, dw.mutable_f32(), in);
      if (db.defined() && !fused_db) {
        cu::memset_zero(db.mutable_f32(), size_t(out_features) * sizeof(float));
        if (N * out_features > 0)  // dbias (fp32) += column sums of g
          cu::binary_backward(kernels::BinaryOp::Add, static_cast<bf16*>(nullptr), db.mutable_f32(), bf(g), bf(g),
                              bias_in.f32(), N * out_features, out_features);
      }
      return std::vector<Tensor>{dx, dw, db};
    });
  }
  return out;
}

Tensor binary_mixed(kernels::BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  const Device dev = a.device();
  const int64_t n = a.numel(), nb = b.numel();
  // fp32 a with a bf16 b gives fp32 (the residual stream plus a bf16 branch); bf16 with
  // bf16 stays bf16. A bf16 a with an fp32 b would promote to fp32 with a on the narrow
  // side, a kernel combination nothing needs: ask for an explicit cast instead.
  SLLM_CHECK(!(is_bf16(a) && !is_bf16(b)),
             str(name, ": a bf16 first operand with an f32 second one"),
             "put the f32 operand first (add(x_f32, y_bf16) gives f32), or cast one side with ops::cast");
  const DType out_dtype = a.dtype();
  Tensor out = Tensor::empty(a.shape(), out_dtype, dev);
  if (nb > 0) {
    if (out_dtype == DType::F32) cu::binary_forward(op, out.mutable_f32(), a.f32(), bf(b), n, nb);
    else cu::binary_forward(op, out.mutable_data<bf16>(), bf(a), bf(b), n, nb);
  }
  if (autograd::needs_grad({a, b})) {
    // The residual add (f32 a, same-shape bf16 b) reads no operand in backward, so it saves
    // none: the branch's bf16 output is freed once nothing else holds it.
    const bool residual_add = op == kernels::BinaryOp::Add && nb == n && a.dtype() == DType::F32;
    autograd::SavedTensor sa, sb;
    if (!residual_add) sa = autograd::SavedTensor(a, name), sb = autograd::SavedTensor(b, name);
    const bool a_grad = a.requires_grad(), b_grad = b.requires_grad();
    const Shape b_shape = b.shape();
    autograd::record(out, name, {a, b}, [op, sa, sb, residual_add, a_grad, b_grad, b_shape, n, nb](const Tensor& g) {
      if (residual_add) {
        // a's gradient is g, b's is g rounded to bf16, written in one pass (no zero-fill and
        // read-back of an accumulating kernel).
        Tensor db;
        if (b_grad) {
          db = Tensor::empty(b_shape, DType::BF16, g.device());
          cu::cast_forward(db.mutable_data<bf16>(), g.f32(), n);
        }
        return std::vector<Tensor>{a_grad ? g : Tensor(), db};
      }
      const Tensor& A = sa.get();
      const Tensor& B = sb.get();
      // d(a + b)/da = 1: a's gradient is g itself (same dtype as a), as in ops::add's fp32 path.
      const bool pass_through = op == kernels::BinaryOp::Add && A.requires_grad();
      Tensor da = pass_through ? g : grad_for(A), db = grad_for(B);
      if (nb > 0 && (!pass_through || db.defined())) {
        if (A.dtype() == DType::F32)
          cu::binary_backward(op, pass_through ? nullptr : ptr(da), mutable_bf(db), g.f32(), A.f32(), bf(B), n, nb);
        else
          cu::binary_backward(op, pass_through ? nullptr : mutable_bf(da), mutable_bf(db), bf(g), bf(A), bf(B), n, nb);
      }
      return std::vector<Tensor>{da, db};
    });
  }
  return out;
}

}  // namespace detail

#else  // no CUDA backend: no tensor can be on CUDA, so check_bf16 rejected every bf16 input

namespace detail {
[[noreturn]] static void no_bf16() {
  fail("bf16 compute needs the CUDA backend", "this build has none: keep activations in f32 (--precision fp32)");
}
Tensor linear_bf16(const Tensor&, const Tensor&, const Tensor&) { no_bf16(); }
Tensor binary_mixed(kernels::BinaryOp, const char*, const Tensor&, const Tensor&) { no_bf16(); }
}  // namespace detail

#endif

// f32 <-> bf16, differentiable: the gradient comes back converted to the input's dtype.
// On the CPU through Tensor::to (exact RNE, bit for bit the GPU's cast_forward).
Tensor cast(const Tensor& x, DType dtype) {
  SLLM_CHECK(x.defined(), "cast: undefined tensor", "pass a tensor");
  const DType from = x.dtype();
  if (from == dtype) return x;
  SLLM_CHECK((from == DType::F32 && dtype == DType::BF16) || (from == DType::BF16 && dtype == DType::F32),
             str("cast: ", dtype_name(from), " -> ", dtype_name(dtype), " is not supported"),
             "ops::cast converts between f32 and bf16 (Tensor::to(DType) converts any dtype, without gradients)");
  Tensor out;
  if (x.device() == Device::CPU) {
    out = x.to(dtype);
  } else {
#if SLLM_HAVE_CUDA
    out = Tensor::empty(x.shape(), dtype, x.device());
    if (dtype == DType::BF16) kernels::cuda::cast_forward(out.mutable_data<bf16>(), x.f32(), x.numel());
    else kernels::cuda::cast_forward(out.mutable_f32(), bf(x), x.numel());
#endif
  }
  if (autograd::needs_grad({x}))
    autograd::record(out, "cast", {x}, [from](const Tensor& g) { return std::vector<Tensor>{cast(g, from)}; });
  return out;
}

}  // namespace sllm::ops
