// bf16 (mixed-precision) paths of the ops: see mixed_precision.h for the recipe. The
// public ops (matmul.cpp, norms.cpp, ...) validate shapes and call these for bf16 inputs;
// ops::cast, the explicit conversion, lives here too.
#include "ops/mixed_precision.h"

#include "ops/op_common.h"
#include "ops/ops.h"

namespace sllm::ops {

using detail::bf;
using detail::mutable_bf;
using detail::ptr;

#if SLLM_HAVE_CUDA
namespace cu = kernels::cuda;

namespace {

// A bf16 copy of an fp32 tensor on the GPU (no autograd: the weights' casts inside linear).
Tensor to_bf16(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), DType::BF16, x.device());
  cu::cast_forward(out.mutable_data<bf16>(), x.f32(), x.numel());
  return out;
}

}  // namespace

namespace detail {

Tensor linear_bf16(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const Device dev = x.device();
  const int64_t N = rows_of(x), in = weight.dim(1), out_features = weight.dim(0);
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  // The fp32 master weight, rounded to bf16 once per forward; the copy is what backward's
  // dx GEMM reads too (the product the forward used).
  Tensor w16 = to_bf16(weight);  // (out, in)
  Tensor out = Tensor::empty(out_shape, DType::BF16, dev);
  bf16* y = out.mutable_data<bf16>();  // (N, out)
  float beta = 0.0f;
  if (bias.defined() && N * out_features > 0) {
    // Start from the bias rows (rounded to bf16) and let the GEMM add x·Wᵀ in its fp32 sum:
    // one rounding of the result, as the CPU path's beta = 1 and cuBLASLt's bias epilogue.
    cu::broadcast_rows(y, bias.f32(), N, out_features);
    beta = 1.0f;
  }
  cu::gemm(false, true, N, out_features, in, 1.0f, bf(x), in, bf(w16), in, beta, y, out_features);
  if (autograd::needs_grad({x, weight, bias})) {
    autograd::SavedTensor sx(x, "linear");
    Tensor bias_in = bias;
    autograd::record(out, "linear", {x, weight, bias}, [sx, w16, weight, bias_in, N, in, out_features](const Tensor& g) {
      const Tensor& X = sx.get();
      // dx (bf16) and dW (fp32, the master's gradient) are written by GEMM with beta = 0.
      Tensor dx = grad_buffer_for(X), dw = grad_buffer_for(weight), db = grad_for(bias_in);
      if (dx.defined())  // dx (N, in) = g (N, out) · W (out, in)
        cu::gemm(false, false, N, in, out_features, 1.0f, bf(g), out_features, bf(w16), in, 0.0f, mutable_bf(dx), in);
      if (dw.defined())  // dW (out, in) = gᵀ · X, accumulated in fp32 and kept fp32
        cu::gemm(true, false, out_features, in, N, 1.0f, bf(g), out_features, bf(X), in, 0.0f, dw.mutable_f32(), in);
      if (db.defined() && N * out_features > 0)  // dbias (fp32) += column sums of g
        cu::binary_backward(kernels::BinaryOp::Add, static_cast<bf16*>(nullptr), db.mutable_f32(), bf(g), bf(g),
                            bias_in.f32(), N * out_features, out_features);
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
    autograd::SavedTensor sa(a, name), sb(b, name);
    autograd::record(out, name, {a, b}, [op, sa, sb, n, nb](const Tensor& g) {
      const Tensor& A = sa.get();
      const Tensor& B = sb.get();
      if (op == kernels::BinaryOp::Add && nb == n && A.dtype() == DType::F32) {
        // The residual add: a's gradient is g, b's is g rounded to bf16, written in one pass
        // (no zero-fill and read-back of an accumulating kernel).
        Tensor db;
        if (B.requires_grad()) {
          db = Tensor::empty(B.shape(), DType::BF16, g.device());
          cu::cast_forward(db.mutable_data<bf16>(), g.f32(), n);
        }
        return std::vector<Tensor>{A.requires_grad() ? g : Tensor(), db};
      }
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

Tensor layernorm_to_bf16(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  const int64_t N = rows_of(x), C = x.dim(-1);
  const Device dev = x.device();
  Tensor out = Tensor::empty(x.shape(), DType::BF16, dev), mean = Tensor::empty({N}, DType::F32, dev),
         rstd = Tensor::empty({N}, DType::F32, dev);
  cu::layernorm_forward(out.mutable_data<bf16>(), mean.mutable_f32(), rstd.mutable_f32(), x.f32(), weight.f32(),
                        bias.defined() ? bias.f32() : nullptr, N, C, eps);
  if (autograd::needs_grad({x, weight, bias})) {
    autograd::SavedTensor sx(x, "layernorm"), sw(weight, "layernorm");
    Tensor b = bias;
    autograd::record(out, "layernorm", {x, weight, bias}, [sx, sw, b, mean, rstd, N, C](const Tensor& g) {
      const Tensor& X = sx.get();
      const Tensor& W = sw.get();
      Tensor dx = grad_for(X), dw = grad_for(W), db = grad_for(b);
      cu::layernorm_backward(ptr(dx), ptr(dw), ptr(db), bf(g), X.f32(), W.f32(), mean.f32(), rstd.f32(), N, C);
      return std::vector<Tensor>{dx, dw, db};
    });
  }
  return out;
}

Tensor rmsnorm_to_bf16(const Tensor& x, const Tensor& weight, float eps) {
  const int64_t N = rows_of(x), C = x.dim(-1);
  const Device dev = x.device();
  Tensor out = Tensor::empty(x.shape(), DType::BF16, dev), rstd = Tensor::empty({N}, DType::F32, dev);
  cu::rmsnorm_forward(out.mutable_data<bf16>(), rstd.mutable_f32(), x.f32(), weight.f32(), N, C, eps);
  if (autograd::needs_grad({x, weight})) {
    autograd::SavedTensor sx(x, "rmsnorm"), sw(weight, "rmsnorm");
    autograd::record(out, "rmsnorm", {x, weight}, [sx, sw, rstd, N, C](const Tensor& g) {
      const Tensor& X = sx.get();
      const Tensor& W = sw.get();
      Tensor dx = grad_for(X), dw = grad_for(W);
      cu::rmsnorm_backward(ptr(dx), ptr(dw), bf(g), X.f32(), W.f32(), rstd.f32(), N, C);
      return std::vector<Tensor>{dx, dw};
    });
  }
  return out;
}

Tensor gelu_bf16(const Tensor& x, bool tanh_approx) {
  Tensor out = Tensor::empty(x.shape(), DType::BF16, x.device());
  cu::gelu_forward(out.mutable_data<bf16>(), bf(x), x.numel(), tanh_approx);
  if (autograd::needs_grad({x})) {
    autograd::SavedTensor sx(x, "gelu");
    autograd::record(out, "gelu", {x}, [sx, tanh_approx](const Tensor& g) {
      const Tensor& X = sx.get();
      Tensor dx = grad_for(X);
      cu::gelu_backward(mutable_bf(dx), bf(g), bf(X), X.numel(), tanh_approx);
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

Tensor silu_bf16(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), DType::BF16, x.device());
  cu::silu_forward(out.mutable_data<bf16>(), bf(x), x.numel());
  if (autograd::needs_grad({x})) {
    autograd::SavedTensor sx(x, "silu");
    autograd::record(out, "silu", {x}, [sx](const Tensor& g) {
      const Tensor& X = sx.get();
      Tensor dx = grad_for(X);
      cu::silu_backward(mutable_bf(dx), bf(g), bf(X), X.numel());
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

Tensor swiglu_bf16(const Tensor& gate, const Tensor& up) {
  Tensor out = Tensor::empty(gate.shape(), DType::BF16, gate.device());
  cu::swiglu_forward(out.mutable_data<bf16>(), bf(gate), bf(up), gate.numel());
  if (autograd::needs_grad({gate, up})) {
    autograd::SavedTensor sg(gate, "swiglu"), su(up, "swiglu");
    autograd::record(out, "swiglu", {gate, up}, [sg, su](const Tensor& g) {
      const Tensor &G = sg.get(), &U = su.get();
      Tensor dgate = grad_for(G), dup = grad_for(U);
      cu::swiglu_backward(mutable_bf(dgate), mutable_bf(dup), bf(g), bf(G), bf(U), G.numel());
      return std::vector<Tensor>{dgate, dup};
    });
  }
  return out;
}

Tensor rope_bf16(const Tensor& x, const Tensor& cos, const Tensor& sin, int64_t NH, int64_t pos0, bool interleaved) {
  const int64_t B = x.dim(0), T = x.dim(1), HD = x.dim(2) / NH;
  Tensor out = Tensor::empty(x.shape(), DType::BF16, x.device());
  cu::rope_forward(out.mutable_data<bf16>(), bf(x), cos.f32(), sin.f32(), B, T, NH, HD, pos0, interleaved);
  if (autograd::needs_grad({x})) {
    autograd::record(out, "rope", {x}, [cos, sin, B, T, NH, HD, pos0, interleaved](const Tensor& g) {
      Tensor dx = Tensor::zeros(g.shape(), DType::BF16, g.device());
      cu::rope_backward(dx.mutable_data<bf16>(), bf(g), cos.f32(), sin.f32(), B, T, NH, HD, pos0, interleaved);
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

Tensor attention_bf16(const Tensor& q, const Tensor& k, const Tensor& v, int64_t NH, int64_t NKV, int64_t q_offset,
                      float scale) {
  const int64_t B = q.dim(0), T = q.dim(1), HD = q.dim(2) / NH, Tk = k.dim(1);
  const Device dev = q.device();
  if (HD % 16 != 0 || HD > 128) {
    // The tensor-core kernel tiles the head dim by 16 (kernels/cuda/attention_bf16.cu); other
    // head dims (tiny test models) run the fp32 kernel on fp32 copies, which costs two casts
    // each way but keeps every model trainable in bf16.
    Tensor o = attention(cast(q, DType::F32), cast(k, DType::F32), cast(v, DType::F32), NH, NKV, q_offset, scale);
    return cast(o, DType::BF16);
  }
  Tensor out = Tensor::empty(q.shape(), DType::BF16, dev), lse = Tensor::empty({B, NH, T}, DType::F32, dev);
  cu::attention_forward(out.mutable_data<bf16>(), lse.mutable_f32(), bf(q), bf(k), bf(v), B, T, Tk, NH, NKV, HD,
                        q_offset, scale);
  if (autograd::needs_grad({q, k, v})) {
    autograd::SavedTensor sq(q, "attention"), sk(k, "attention"), sv(v, "attention"), so(out.detach(), "attention");
    autograd::record(out, "attention", {q, k, v},
                     [sq, sk, sv, so, lse, B, T, Tk, NH, NKV, HD, q_offset, scale](const Tensor& g) {
                       const Tensor &Q = sq.get(), &K = sk.get(), &V = sv.get(), &O = so.get();
                       Tensor dq = grad_for(Q), dk = grad_for(K), dv = grad_for(V);
                       cu::attention_backward(mutable_bf(dq), mutable_bf(dk), mutable_bf(dv), bf(g), bf(Q), bf(K),
                                              bf(V), bf(O), lse.f32(), B, T, Tk, NH, NKV, HD, q_offset, scale);
                       return std::vector<Tensor>{dq, dk, dv};
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
Tensor layernorm_to_bf16(const Tensor&, const Tensor&, const Tensor&, float) { no_bf16(); }
Tensor rmsnorm_to_bf16(const Tensor&, const Tensor&, float) { no_bf16(); }
Tensor gelu_bf16(const Tensor&, bool) { no_bf16(); }
Tensor silu_bf16(const Tensor&) { no_bf16(); }
Tensor swiglu_bf16(const Tensor&, const Tensor&) { no_bf16(); }
Tensor rope_bf16(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, bool) { no_bf16(); }
Tensor attention_bf16(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, int64_t, float) { no_bf16(); }
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
