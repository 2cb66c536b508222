// gelu, silu, swiglu, softmax, log_softmax, dropout.
#include "kernels/kernels.h"
#include "ops/op_common.h"
#include "ops/ops.h"

namespace sllm::ops {

using detail::check_f32;
using detail::grad_for;
using detail::ptr;
using detail::rows_of;
using detail::bf;
using detail::is_bf16;
using detail::mutable_bf;

Tensor gelu(const Tensor& x, bool tanh_approx) {
  const Device dev = x.device();
  detail::check_float(x, "gelu", dev);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);
  if (is_bf16(x)) SLLM_KERNEL_BF16(gelu_forward, mutable_bf(out), bf(x), x.numel(), tanh_approx);
  else SLLM_KERNEL(dev, gelu_forward, out.mutable_f32(), x.f32(), x.numel(), tanh_approx);
  if (autograd::needs_grad({x})) {
    autograd::SavedTensor sx(x, "gelu");
    autograd::record(out, "gelu", {x}, [sx, tanh_approx](const Tensor& g) {
      const Tensor& X = sx.get();
      // bf16 (CUDA) writes a fresh buffer (accumulate = false); the fp32 kernels accumulate.
      if (is_bf16(X)) {
        Tensor dx = Tensor::empty(X.shape(), X.dtype(), X.device());
        SLLM_KERNEL_BF16(gelu_backward, mutable_bf(dx), bf(g), bf(X), X.numel(), tanh_approx, false);
        return std::vector<Tensor>{dx};
      }
      Tensor dx = Tensor::zeros(X.shape(), X.dtype(), X.device());
      SLLM_KERNEL(X.device(), gelu_backward, dx.mutable_f32(), g.f32(), X.f32(), X.numel(), tanh_approx);
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

Tensor silu(const Tensor& x) {
  const Device dev = x.device();
  detail::check_float(x, "silu", dev);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);
  if (is_bf16(x)) SLLM_KERNEL_BF16(silu_forward, mutable_bf(out), bf(x), x.numel());
  else SLLM_KERNEL(dev, silu_forward, out.mutable_f32(), x.f32(), x.numel());
  if (autograd::needs_grad({x})) {
    autograd::SavedTensor sx(x, "silu");
    autograd::record(out, "silu", {x}, [sx](const Tensor& g) {
      const Tensor& X = sx.get();
      if (is_bf16(X)) {
        Tensor dx = Tensor::empty(X.shape(), X.dtype(), X.device());
        SLLM_KERNEL_BF16(silu_backward, mutable_bf(dx), bf(g), bf(X), X.numel(), false);
        return std::vector<Tensor>{dx};
      }
      Tensor dx = Tensor::zeros(X.shape(), X.dtype(), X.device());
      SLLM_KERNEL(X.device(), silu_backward, dx.mutable_f32(), g.f32(), X.f32(), X.numel());
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  const Device dev = gate.device();
  detail::check_float(gate, "swiglu gate", dev);
  detail::check_float(up, "swiglu up", dev);
  check_shape(up, gate.shape(), "swiglu up (must match gate)");
  check_dtype(up, gate.dtype(), "swiglu up (must match gate)");
  Tensor out = Tensor::empty(gate.shape(), gate.dtype(), dev);
  if (is_bf16(gate)) SLLM_KERNEL_BF16(swiglu_forward, mutable_bf(out), bf(gate), bf(up), gate.numel());
  else SLLM_KERNEL(dev, swiglu_forward, out.mutable_f32(), gate.f32(), up.f32(), gate.numel());
  if (autograd::needs_grad({gate, up})) {
    autograd::SavedTensor sg(gate, "swiglu"), su(up, "swiglu");
    autograd::record(out, "swiglu", {gate, up}, [sg, su](const Tensor& g) {
      const Tensor& G = sg.get();
      const Tensor& U = su.get();
      if (is_bf16(G)) {  // fresh buffers, written (accumulate = false)
        Tensor dgate = detail::grad_buffer_for(G), dup = detail::grad_buffer_for(U);
        SLLM_KERNEL_BF16(swiglu_backward, mutable_bf(dgate), mutable_bf(dup), bf(g), bf(G), bf(U), G.numel(), false);
        return std::vector<Tensor>{dgate, dup};
      }
      Tensor dgate = grad_for(G), dup = grad_for(U);
      SLLM_KERNEL(G.device(), swiglu_backward, ptr(dgate), ptr(dup), g.f32(), G.f32(), U.f32(), G.numel());
      return std::vector<Tensor>{dgate, dup};
    });
  }
  return out;
}

static Tensor softmax_like(const Tensor& x, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  const Device dev = x.device();
  check_f32(x, name, dev);
  SLLM_CHECK(x.ndim() >= 1 && x.dim(-1) > 0, str(name, ": needs a non-empty last dim, got ", shape_str(x.shape())),
             "softmax runs over the last dimension");
  const int64_t N = rows_of(x), C = x.dim(-1);
  Tensor out = Tensor::empty(x.shape(), DType::F32, dev);
  if (log) SLLM_KERNEL(dev, log_softmax_forward, out.mutable_f32(), x.f32(), N, C);
  else SLLM_KERNEL(dev, softmax_forward, out.mutable_f32(), x.f32(), N, C);
  if (autograd::needs_grad({x})) {
    // Save a detached alias of the output: same storage (so in-place changes are still
    // caught), but no grad_fn, so output -> node -> closure -> output is not a cycle.
    autograd::SavedTensor so(out.detach(), name);
    autograd::record(out, name, {x}, [so, log, N, C](const Tensor& g) {
      const Tensor& Y = so.get();
      Tensor dx = Tensor::zeros(Y.shape(), DType::F32, Y.device());
      if (log) SLLM_KERNEL(Y.device(), log_softmax_backward, dx.mutable_f32(), g.f32(), Y.f32(), N, C);
      else SLLM_KERNEL(Y.device(), softmax_backward, dx.mutable_f32(), g.f32(), Y.f32(), N, C);
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

Tensor softmax(const Tensor& x) { return softmax_like(x, false); }
Tensor log_softmax(const Tensor& x) { return softmax_like(x, true); }

Tensor dropout(const Tensor& x, float p, bool training, uint64_t seed, uint64_t offset) {
  const Device dev = x.device();
  check_f32(x, "dropout", dev);
  SLLM_CHECK(p >= 0.0f && p < 1.0f, str("dropout: p = ", p, " is outside [0, 1)"), "use a probability like 0.1");
  if (!training || p == 0.0f) return x;
  const int64_t n = x.numel();
  // The mask is a pure function of (seed, offset + i) on either device (kernels/dropout_rng.h).
  Tensor out = Tensor::empty(x.shape(), DType::F32, dev), mask = Tensor::empty(x.shape(), DType::U8, dev);
  SLLM_KERNEL(dev, dropout_forward, out.mutable_f32(), mask.mutable_data<uint8_t>(), x.f32(), n, p, seed, offset);
  if (autograd::needs_grad({x})) {
    autograd::record(out, "dropout", {x}, [mask, p, n](const Tensor& g) {
      Tensor dx = Tensor::zeros(g.shape(), DType::F32, g.device());
      SLLM_KERNEL(g.device(), dropout_backward, dx.mutable_f32(), g.f32(), mask.data<uint8_t>(), n, p);
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

}  // namespace sllm::ops
