// Causal self-attention (fused, GQA) and rotary position embedding.
#include <cmath>

#include "kernels/kernels.h"
#include "ops/op_common.h"
#include "ops/ops.h"

namespace sllm::ops {

using detail::check_f32;
using detail::grad_buffer_for;
using detail::grad_for;
using detail::ptr;
using detail::bf;
using detail::is_bf16;
using detail::mutable_bf;

// The dtype and rank checks attention() and attention_rows() share: q, k, v floats of one
// dtype on q's device, q (B, T, NH*HD) and k (B, Tk, NKV*HD).
static void check_qkv(const std::string& op, const Tensor& q, const Tensor& k, const Tensor& v) {
  const Device dev = q.device();
  detail::check_float(q, op + " q", dev);
  detail::check_float(k, op + " k", dev);
  detail::check_float(v, op + " v", dev);
  check_dtype(k, q.dtype(), op + " k (q's dtype)");
  check_dtype(v, q.dtype(), op + " v (q's dtype)");
  check_ndim(q, 3, op + " q (B, T, NH*HD)");
  check_ndim(k, 3, op + " k (B, Tk, NKV*HD)");
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t NH, int64_t NKV, int64_t q_offset,
                 float scale) {
  const Device dev = q.device();
  check_qkv("attention", q, k, v);
  SLLM_CHECK(NH > 0 && NKV > 0 && NH % NKV == 0,
             str("attention: ", NH, " query heads are not a multiple of ", NKV, " key/value heads"),
             "num_attention_heads must be divisible by num_key_value_heads");
  const int64_t B = q.dim(0), T = q.dim(1), C = q.dim(2);
  SLLM_CHECK(C % NH == 0, str("attention: q width ", C, " is not divisible by ", NH, " heads"),
             "hidden_size must be a multiple of num_attention_heads");
  const int64_t HD = C / NH, Tk = k.dim(1);
  check_shape(k, {B, Tk, NKV * HD}, "attention k");
  check_shape(v, {B, Tk, NKV * HD}, "attention v");
  SLLM_CHECK(q_offset >= 0 && q_offset + T <= Tk,
             str("attention: queries at positions [", q_offset, ", ", q_offset + T, ") need that many keys, have ", Tk),
             "q_offset + T must not exceed the key length");
  if (scale <= 0.0f) scale = 1.0f / std::sqrt(static_cast<float>(HD));
  if (is_bf16(q) && (HD % 16 != 0 || HD > 128)) {
    // The bf16 kernel runs on tensor cores in 16-wide head-dim tiles (kernels/cuda/
    // attention_bf16.cu); other head dims (tiny test models) take the fp32 kernel on fp32
    // copies: two casts each way, but every model stays trainable in bf16.
    Tensor o = attention(cast(q, DType::F32), cast(k, DType::F32), cast(v, DType::F32), NH, NKV, q_offset, scale);
    return cast(o, DType::BF16);
  }
  Tensor out = Tensor::empty(q.shape(), q.dtype(), dev), lse = Tensor::empty({B, NH, T}, DType::F32, dev);
  if (is_bf16(q))
    SLLM_KERNEL_BF16(attention_forward, mutable_bf(out), lse.mutable_f32(), bf(q), bf(k), bf(v), B, T, Tk, NH, NKV, HD,
                     q_offset, scale, NH * HD, NKV * HD, NKV * HD, NH * HD);
  else
    SLLM_KERNEL(dev, attention_forward, out.mutable_f32(), lse.mutable_f32(), q.f32(), k.f32(), v.f32(), B, T, Tk, NH,
                NKV, HD, q_offset, scale);
  if (autograd::needs_grad({q, k, v})) {
    // The output is saved detached (same storage, no grad_fn) so it does not own its own node.
    autograd::SavedTensor sq(q, "attention"), sk(k, "attention"), sv(v, "attention"), so(out.detach(), "attention");
    autograd::record(out, "attention", {q, k, v},
                     [sq, sk, sv, so, lse, B, T, Tk, NH, NKV, HD, q_offset, scale](const Tensor& g) {
                       const Tensor &Q = sq.get(), &K = sk.get(), &V = sv.get(), &O = so.get();
                       if (is_bf16(Q)) {
                         // The bf16 kernel writes every element of fresh buffers (accumulate = false).
                         Tensor dq = grad_buffer_for(Q), dk = grad_buffer_for(K), dv = grad_buffer_for(V);
                         SLLM_KERNEL_BF16(attention_backward, mutable_bf(dq), mutable_bf(dk), mutable_bf(dv), bf(g),
                                          bf(Q), bf(K), bf(V), bf(O), lse.f32(), B, T, Tk, NH, NKV, HD, q_offset, scale,
                                          NH * HD, NKV * HD, NKV * HD, NH * HD, false);
                         return std::vector<Tensor>{dq, dk, dv};
                       }
                       Tensor dq = grad_for(Q), dk = grad_for(K), dv = grad_for(V);
                       SLLM_KERNEL(Q.device(), attention_backward, ptr(dq), ptr(dk), ptr(dv), g.f32(), Q.f32(), K.f32(),
                                   V.f32(), O.f32(), lse.f32(), B, T, Tk, NH, NKV, HD, q_offset, scale);
                       return std::vector<Tensor>{dq, dk, dv};
                     });
  }
  return out;
}

Tensor attention_qkv(const Tensor& qkv, int64_t NH, int64_t NKV, float scale) {
  const Device dev = qkv.device();
  detail::check_float(qkv, "attention_qkv input", dev);
  check_ndim(qkv, 3, "attention_qkv input (B, T, (NH+2*NKV)*HD)");
  SLLM_CHECK(NH > 0 && NKV > 0 && NH % NKV == 0,
             str("attention_qkv: ", NH, " query heads are not a multiple of ", NKV, " key/value heads"),
             "num_attention_heads must be divisible by num_key_value_heads");
  const int64_t B = qkv.dim(0), T = qkv.dim(1), W = qkv.dim(2);
  SLLM_CHECK(W % (NH + 2 * NKV) == 0,
             str("attention_qkv: width ", W, " does not split into ", NH, " query and 2 x ", NKV, " key/value heads"),
             "pass the packed [q heads | k heads | v heads] projection, (NH + 2*NKV) * head_dim wide");
  const int64_t HD = W / (NH + 2 * NKV);
  if (!is_bf16(qkv) || HD % 16 != 0 || HD > 128) {
    // Every other path is exactly the slices and attention (CPU results bit-identical to them).
    return attention(slice(qkv, 2, 0, NH * HD), slice(qkv, 2, NH * HD, (NH + NKV) * HD),
                     slice(qkv, 2, (NH + NKV) * HD, W), NH, NKV, 0, scale);
  }
  // bf16 on CUDA: the kernels read q, k, v straight out of the packed rows (row stride W) and
  // the backward writes dq, dk, dv into their column ranges of one fresh gradient: no slice
  // copies, no concat, no zero-fill.
  if (scale <= 0.0f) scale = 1.0f / std::sqrt(static_cast<float>(HD));
  const int64_t koff = NH * HD, voff = (NH + NKV) * HD;
  Tensor out = Tensor::empty({B, T, NH * HD}, qkv.dtype(), dev), lse = Tensor::empty({B, NH, T}, DType::F32, dev);
  SLLM_KERNEL_BF16(attention_forward, mutable_bf(out), lse.mutable_f32(), bf(qkv), bf(qkv) + koff, bf(qkv) + voff, B, T,
                   T, NH, NKV, HD, 0, scale, W, W, W, NH * HD);
  if (autograd::needs_grad({qkv})) {
    autograd::SavedTensor sx(qkv, "attention_qkv"), so(out.detach(), "attention_qkv");
    autograd::record(out, "attention_qkv", {qkv}, [sx, so, lse, B, T, NH, NKV, HD, W, koff, voff, scale](const Tensor& g) {
      const Tensor &X = sx.get(), &O = so.get();
      Tensor dx = Tensor::empty(X.shape(), X.dtype(), X.device());
      bf16* d = mutable_bf(dx);
      SLLM_KERNEL_BF16(attention_backward, d, d + koff, d + voff, bf(g), bf(X), bf(X) + koff, bf(X) + voff, bf(O),
                       lse.f32(), B, T, T, NH, NKV, HD, 0, scale, W, W, W, NH * HD, false);
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

Tensor rope(const Tensor& x, const Tensor& cos, const Tensor& sin, int64_t NH, int64_t pos0, bool interleaved) {
  const Device dev = x.device();
  detail::check_float(x, "rope input", dev);
  check_ndim(x, 3, "rope input (B, T, NH*HD)");
  const int64_t B = x.dim(0), T = x.dim(1), C = x.dim(2);
  SLLM_CHECK(NH > 0 && C % NH == 0 && (C / NH) % 2 == 0,
             str("rope: width ", C, " does not split into ", NH, " heads of even size"), "head_dim must be even for RoPE");
  const int64_t HD = C / NH;
  check_f32(cos, "rope cos table", dev);
  check_f32(sin, "rope sin table", dev);
  check_ndim(cos, 2, "rope cos table (T_max, HD/2)");
  check_shape(sin, cos.shape(), "rope sin table");
  SLLM_CHECK(cos.dim(1) == HD / 2, str("rope: table width ", cos.dim(1), " != head_dim/2 = ", HD / 2), "rebuild the table");
  SLLM_CHECK(pos0 >= 0 && pos0 + T <= cos.dim(0),
             str("rope: positions up to ", pos0 + T, " exceed the table's ", cos.dim(0)),
             "the sequence is longer than max_position_embeddings");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);
  if (is_bf16(x))
    SLLM_KERNEL_BF16(rope_forward, mutable_bf(out), bf(x), cos.f32(), sin.f32(), B, T, NH, HD, pos0, interleaved);
  else
    SLLM_KERNEL(dev, rope_forward, out.mutable_f32(), x.f32(), cos.f32(), sin.f32(), B, T, NH, HD, pos0, interleaved);
  if (autograd::needs_grad({x})) {
    autograd::record(out, "rope", {x}, [cos, sin, B, T, NH, HD, pos0, interleaved, dev](const Tensor& g) {
      Tensor dx = Tensor::zeros(g.shape(), g.dtype(), dev);
      if (is_bf16(g))
        SLLM_KERNEL_BF16(rope_backward, mutable_bf(dx), bf(g), cos.f32(), sin.f32(), B, T, NH, HD, pos0, interleaved);
      else
        SLLM_KERNEL(dev, rope_backward, dx.mutable_f32(), g.f32(), cos.f32(), sin.f32(), B, T, NH, HD, pos0,
                    interleaved);
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

// ---- ragged batches (generation) ----------------------------------------------------------

// Checks shared by attention_rows and rope_rows: one (pos0, n_new) per row, n_new <= T, and no
// gradient wanted.
static void check_rows(const char* op, const Tensor& x, const std::vector<int64_t>& pos0,
                       const std::vector<int64_t>& n_new) {
  const int64_t B = x.dim(0), T = x.dim(1);
  SLLM_CHECK(static_cast<int64_t>(pos0.size()) == B && static_cast<int64_t>(n_new.size()) == B,
             str(op, ": ", pos0.size(), " positions and ", n_new.size(), " counts for ", B, " rows"), "one of each per row");
  for (int64_t b = 0; b < B; ++b)
    SLLM_CHECK(pos0[size_t(b)] >= 0 && n_new[size_t(b)] >= 0 && n_new[size_t(b)] <= T,
               str(op, ": row ", b, " at position ", pos0[size_t(b)], " with ", n_new[size_t(b)], " of ", T, " queries"),
               "positions >= 0 and 0 <= n_new <= T");
  SLLM_CHECK(!autograd::needs_grad({x}), str(op, " is for inference (generation) only"),
             "run it under autograd::NoGradGuard; training batches use attention()/rope() on right-padded rows");
}

Tensor attention_rows(const Tensor& q, const Tensor& k, const Tensor& v, int64_t NH, int64_t NKV,
                      const std::vector<int64_t>& pos0, const std::vector<int64_t>& n_new) {
  const Device dev = q.device();
  check_qkv("attention_rows", q, k, v);
  check_rows("attention_rows", q, pos0, n_new);
  SLLM_CHECK(!autograd::needs_grad({k, v}), "attention_rows is for inference (generation) only",
             "run it under autograd::NoGradGuard");
  const int64_t B = q.dim(0), T = q.dim(1), C = q.dim(2), Tk = k.dim(1);
  SLLM_CHECK(NH > 0 && NKV > 0 && NH % NKV == 0 && C % NH == 0,
             str("attention_rows: width ", C, " with ", NH, " query and ", NKV, " key/value heads"),
             "hidden_size must split into heads, and num_attention_heads be a multiple of num_key_value_heads");
  const int64_t HD = C / NH, kvC = NKV * HD;
  check_shape(k, {B, Tk, kvC}, "attention_rows k");
  check_shape(v, {B, Tk, kvC}, "attention_rows v");
  if (is_bf16(q) && (HD % 16 != 0 || HD > 128)) {
    // As attention(): the bf16 kernel works in 16-wide head-dim tiles; other head dims run the
    // f32 kernel on f32 copies (bf16 -> f32 -> bf16 is exact for the inputs).
    return cast(attention_rows(cast(q, DType::F32), cast(k, DType::F32), cast(v, DType::F32), NH, NKV, pos0, n_new),
                DType::BF16);
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
  Tensor out = Tensor::zeros(q.shape(), q.dtype(), dev), lse = Tensor::empty({NH, T}, DType::F32, dev);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t p = pos0[size_t(b)], n = n_new[size_t(b)];
    if (n == 0) continue;
    SLLM_CHECK(p + n <= Tk, str("attention_rows: row ", b, " queries up to position ", p + n, " but only ", Tk, " keys"),
               "the cache must hold every position up to the row's last query");
    // Row b alone: its keys are rows [0, p + n) of k[b], so B = 1 and Tk = p + n.
    if (is_bf16(q))
      SLLM_KERNEL_BF16(attention_forward, mutable_bf(out) + b * T * C, lse.mutable_f32(), bf(q) + b * T * C,
                       bf(k) + b * Tk * kvC, bf(v) + b * Tk * kvC, 1, n, p + n, NH, NKV, HD, p, scale, C, kvC, kvC, C);
    else
      SLLM_KERNEL(dev, attention_forward, out.mutable_f32() + b * T * C, lse.mutable_f32(), q.f32() + b * T * C,
                  k.f32() + b * Tk * kvC, v.f32() + b * Tk * kvC, 1, n, p + n, NH, NKV, HD, p, scale);
  }
  return out;
}

Tensor rope_rows(const Tensor& x, const Tensor& cos, const Tensor& sin, int64_t NH, const std::vector<int64_t>& pos0,
                 const std::vector<int64_t>& n_new, bool interleaved) {
  const Device dev = x.device();
  detail::check_float(x, "rope_rows input", dev);
  check_ndim(x, 3, "rope_rows input (B, T, NH*HD)");
  check_rows("rope_rows", x, pos0, n_new);
  const int64_t B = x.dim(0), T = x.dim(1), C = x.dim(2);
  SLLM_CHECK(NH > 0 && C % NH == 0 && (C / NH) % 2 == 0,
             str("rope_rows: width ", C, " does not split into ", NH, " heads of even size"), "head_dim must be even for RoPE");
  const int64_t HD = C / NH;
  check_f32(cos, "rope cos table", dev);
  check_f32(sin, "rope sin table", dev);
  check_shape(sin, cos.shape(), "rope sin table");
  SLLM_CHECK(cos.dim(1) == HD / 2, str("rope_rows: table width ", cos.dim(1), " != head_dim/2 = ", HD / 2), "rebuild the table");
  Tensor out = Tensor::zeros(x.shape(), x.dtype(), dev);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t p = pos0[size_t(b)], n = n_new[size_t(b)];
    if (n == 0) continue;
    SLLM_CHECK(p + n <= cos.dim(0), str("rope_rows: row ", b, " reaches position ", p + n, " past the table's ", cos.dim(0)),
               "the sequence is longer than max_position_embeddings");
    if (is_bf16(x))
      SLLM_KERNEL_BF16(rope_forward, mutable_bf(out) + b * T * C, bf(x) + b * T * C, cos.f32(), sin.f32(), 1, n, NH, HD, p,
                       interleaved);
    else
      SLLM_KERNEL(dev, rope_forward, out.mutable_f32() + b * T * C, x.f32() + b * T * C, cos.f32(), sin.f32(), 1, n, NH,
                  HD, p, interleaved);
  }
  return out;
}

}  // namespace sllm::ops
