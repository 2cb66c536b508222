// add/sub/mul/div with trailing-dimension broadcasting, scale, sum and mean.
#include "kernels/kernels.h"
#include "ops/mixed_precision.h"
#include "ops/op_common.h"
#include "ops/ops.h"

namespace sllm::ops {

using detail::check_f32;
using detail::grad_for;
using detail::ptr;
using kernels::BinaryOp;

namespace {

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
    case BinaryOp::Div: return "div";
  }
  return "?";
}

// b broadcasts over a when b's shape is a trailing suffix of a's (numpy rules restricted to
// the case the models need: a bias or a per-position table repeated over leading dims).
void check_broadcast(const Tensor& a, const Tensor& b, const char* op) {
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  bool ok = sb.size() <= sa.size();
  for (size_t i = 0; ok && i < sb.size(); ++i) ok = sb[sb.size() - 1 - i] == sa[sa.size() - 1 - i];
  if (sb.size() == 1 && sb[0] == 1) ok = true;  // a scalar-shaped (1) tensor broadcasts to anything
  SLLM_CHECK(ok, str(op, ": cannot broadcast ", shape_str(sb), " onto ", shape_str(sa)),
             "the second operand's shape must equal the trailing dims of the first (e.g. (C) onto (B, T, C))");
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_name(op);
  const Device dev = a.device();
  detail::check_float(a, str(name, " a"), dev);
  detail::check_float(b, str(name, " b"), dev);
  check_broadcast(a, b, name);
  if (detail::is_bf16(a) || detail::is_bf16(b)) return detail::binary_mixed(op, name, a, b);
  const int64_t n = a.numel(), nb = b.numel();
  Tensor out = Tensor::empty(a.shape(), DType::F32, dev);
  if (nb > 0) SLLM_KERNEL(dev, binary_forward, op, out.mutable_f32(), a.f32(), b.f32(), n, nb);
  if (autograd::needs_grad({a, b})) {
    // Add and Sub have gradients ±g: their backward reads no operand, so it saves none (a
    // residual add then does not keep its branch's output alive until backward). The
    // kernels still take operand pointers; g, n >= nb floats, stands in for both.
    const bool reads_values = op == BinaryOp::Mul || op == BinaryOp::Div;
    autograd::SavedTensor sa, sb;
    if (reads_values) sa = autograd::SavedTensor(a, name), sb = autograd::SavedTensor(b, name);
    const bool a_grad = a.requires_grad(), b_grad = b.requires_grad();
    const Shape b_shape = b.shape();
    autograd::record(out, name, {a, b}, [op, sa, sb, reads_values, a_grad, b_grad, b_shape, n, nb, dev](const Tensor& g) {
      const float* A = reads_values ? sa.get().f32() : g.f32();
      const float* B = reads_values ? sb.get().f32() : g.f32();
      if (op == BinaryOp::Add) {
        // d(a + b)/da = 1: a's gradient is g itself, and so is b's when b is not broadcast.
        // Passing g through (instead of zero-filling and accumulating copies) saves two
        // passes over memory per residual add; autograd copies a gradient that more than
        // one holder shares before it ever adds into it.
        Tensor da = a_grad ? g : Tensor(), db;
        if (b_grad) {
          if (nb == n) {
            db = g.reshape(b_shape);
          } else {
            db = Tensor::zeros(b_shape, DType::F32, dev);
            if (nb > 0) SLLM_KERNEL(dev, binary_backward, op, nullptr, ptr(db), g.f32(), A, B, n, nb);
          }
        }
        return std::vector<Tensor>{da, db};
      }
      Tensor da = a_grad ? Tensor::zeros(g.shape(), DType::F32, dev) : Tensor();
      Tensor db = b_grad ? Tensor::zeros(b_shape, DType::F32, dev) : Tensor();
      if (nb > 0) SLLM_KERNEL(dev, binary_backward, op, ptr(da), ptr(db), g.f32(), A, B, n, nb);
      return std::vector<Tensor>{da, db};
    });
  }
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Div, a, b); }

Tensor scale(const Tensor& a, float s) {
  const Device dev = a.device();
  check_f32(a, "scale", dev);
  Tensor out = Tensor::empty(a.shape(), DType::F32, dev);
  SLLM_KERNEL(dev, scale_forward, out.mutable_f32(), a.f32(), s, a.numel());
  if (autograd::needs_grad({a})) {
    autograd::record(out, "scale", {a}, [s, dev](const Tensor& g) {
      Tensor da = Tensor::empty(g.shape(), DType::F32, dev);
      SLLM_KERNEL(dev, scale_forward, da.mutable_f32(), g.f32(), s, g.numel());
      return std::vector<Tensor>{da};
    });
  }
  return out;
}

static Tensor reduce_all(const Tensor& a, bool average) {
  const char* name = average ? "mean" : "sum";
  const Device dev = a.device();
  check_f32(a, name, dev);
  const int64_t n = a.numel();
  SLLM_CHECK(!average || n > 0, "mean of an empty tensor", "mean needs at least one element");
  const float factor = average ? 1.0f / static_cast<float>(n) : 1.0f;
  // The sum comes back to the host (on a GPU that waits for it) and the (1) result goes to
  // the op's device: the same float arithmetic on both devices.
  Tensor out = Tensor::full({1}, SLLM_KERNEL(dev, sum_forward, a.f32(), n) * factor).to(dev);
  if (autograd::needs_grad({a})) {
    Shape shape = a.shape();
    autograd::record(out, name, {a}, [shape, factor, dev](const Tensor& g) {
      return std::vector<Tensor>{Tensor::full(shape, g.item() * factor).to(dev)};
    });
  }
  return out;
}

Tensor sum(const Tensor& a) { return reduce_all(a, false); }
Tensor mean(const Tensor& a) { return reduce_all(a, true); }

}  // namespace sllm::ops
