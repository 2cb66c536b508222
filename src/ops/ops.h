// Differentiable ops: each checks its inputs (shape/dtype errors with hints), runs the
// kernel for the tensors' device, and, when an input requires grad, records a Node whose
// backward calls the mirrored backward kernel. Weight gradients of frozen parameters
// (requires_grad=false) are never computed: the kernel gets nullptr for them.
//
// All float tensors are f32. Shapes use the legend of kernels/kernels.h.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ops/packed_weight.h"
#include "tensor/tensor.h"

namespace sllm::ops {

// ---- linear algebra (ops/matmul.cpp)
// a (..., M, K) @ b (..., K, N) with optional transposes of the last two dims of each;
// batch dims (all but the last two) must match exactly, or b may be 2-D (shared weight).
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// x (..., in) @ weightᵀ (weight is (out, in), PyTorch nn.Linear layout) + bias (out).
// bias may be an undefined Tensor. A bf16 x (CUDA) gives a bf16 output from the fp32
// weight rounded to bf16, the weight's gradient in fp32 (ops/mixed_precision.h).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
// LoRA's adapted Linear in one node (ops/lora_linear.cpp), f32 on either device:
//   y = x·Wᵀ + b + scale · dropout(x)·Aᵀ·Bᵀ,   A (r, in), B (out, r),
// through the thin (…, r) product, never forming B·A. Dropout (inverted, p in [0, 1); 0 =
// off) draws its mask from (dropout_seed, element index) like ops::dropout. Backward gives
// dx, dA and dB, and dW and db only for a W or b that requires grad: a frozen base costs no
// weight-gradient GEMM.
Tensor lora_linear(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& A, const Tensor& B,
                   float scale, float dropout_p, uint64_t dropout_seed);
// The same over a packed frozen base (QLoRA: an NF4 weight, ops/packed_weight.h): W is
// dequantized inside the products, so backward gives dx, dA, dB (and db) only.
Tensor lora_linear(const Tensor& x, const std::shared_ptr<const PackedWeight>& weight, const Tensor& bias,
                   const Tensor& A, const Tensor& B, float scale, float dropout_p, uint64_t dropout_seed);
// y = x·deq(W)ᵀ + b with a packed frozen W (ops/packed_linear.cpp): f32 on either device,
// or bf16 x on CUDA (mixed precision, returning bf16 like ops::linear). Backward gives dx
// = g·deq(W) and db; the weight has no gradient. x is not saved: a frozen W's backward
// needs only the upstream gradient.
Tensor packed_linear(const Tensor& x, const std::shared_ptr<const PackedWeight>& weight, const Tensor& bias = Tensor());

// ---- elementwise with trailing-dimension broadcasting (ops/elementwise.cpp)
// b's shape must equal a trailing suffix of a's shape (e.g. a (B,T,C), b (C) or (T,C)).
// On CUDA either may be bf16: f32 a with bf16 b gives f32, bf16 with bf16 gives bf16.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, float s);
Tensor sum(const Tensor& a);   // scalar, shape (1)
Tensor mean(const Tensor& a);  // scalar, shape (1)

// ---- neural-network ops (ops/nn_ops.cpp, ops/activations.cpp)
Tensor embedding(const Tensor& ids /*i32 (...)*/, const Tensor& table /*(V, C)*/);  // (..., C)
// Norms read f32 x; out_dtype BF16 (CUDA) writes the bf16 input of the next matmul.
Tensor layernorm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps = 1e-5f,
                 DType out_dtype = DType::F32);
Tensor rmsnorm(const Tensor& x, const Tensor& weight, float eps = 1e-6f, DType out_dtype = DType::F32);
// Activations, softmax-free attention and RoPE keep their input's dtype (f32, or bf16 on CUDA).
Tensor gelu(const Tensor& x, bool tanh_approx = true);
Tensor silu(const Tensor& x);
Tensor swiglu(const Tensor& gate, const Tensor& up);  // silu(gate) * up
Tensor softmax(const Tensor& x);      // over the last dim
Tensor log_softmax(const Tensor& x);  // over the last dim
// logits (..., V) f32 or bf16 (CUDA), targets i32 (...). Mean over the targets !=
// ignore_index (0 if none); the loss is f32 either way.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int32_t ignore_index = -100);
// The LM head and its loss in one op: cross_entropy(linear(x, weight), targets) for x
// (..., C), weight (V, C). For bf16 x on CUDA it pads the vocabulary to a multiple of 128
// internally (fast GEMMs) and writes dlogits once over the logits (ops/loss.cpp).
Tensor linear_cross_entropy(const Tensor& x, const Tensor& weight, const Tensor& targets, int32_t ignore_index = -100);
// Per-token losses (...), 0 at ignored targets; used by RL/score paths.
Tensor cross_entropy_per_token(const Tensor& logits, const Tensor& targets, int32_t ignore_index = -100);
// Inverted dropout. Identity when !training or p == 0. The mask is a pure function of
// (seed, offset + element index).
Tensor dropout(const Tensor& x, float p, bool training, uint64_t seed, uint64_t offset);

// ---- attention (ops/attention.cpp)
// q (B, T, NH*HD), k and v (B, Tk, NKV*HD) → (B, T, NH*HD); causal with q_offset (see
// kernels.h); scale defaults to 1/sqrt(HD) when <= 0.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t n_head, int64_t n_kv_head,
                 int64_t q_offset = 0, float scale = 0.0f);
// The same over a packed projection qkv (B, T, (NH+2*NKV)*HD) = [q heads | k heads | v heads]
// (q_offset 0) → (B, T, NH*HD). In bf16 on CUDA the kernels read the packed rows in place
// and the backward writes one fresh (B, T, (NH+2*NKV)*HD) gradient; elsewhere it is exactly
// attention(slice(q), slice(k), slice(v)).
Tensor attention_qkv(const Tensor& qkv, int64_t n_head, int64_t n_kv_head, float scale = 0.0f);
// x (B, T, NH*HD) rotated at positions pos0 + t; cos/sin tables (T_max, HD/2) from kernels::rope_table.
Tensor rope(const Tensor& x, const Tensor& cos, const Tensor& sin, int64_t n_head, int64_t pos0, bool interleaved);

// Per-row variants for a ragged batch (KVCache::row_length: batched generation, where rows
// sit at different positions). Row b's first n_new[b] query rows (of T) are at positions
// pos0[b] + t; attention_rows lets them see keys [0, pos0[b] + t] of k and v (B, Tk, NKV*HD),
// rope_rows rotates them at those positions; the other query rows (padding) come out 0. Each
// row runs the kernel on its own (B = 1), so row b's output is bit-for-bit what attention()
// and rope() give for that row alone. f32, or bf16 on CUDA (the bf16 KV cache). Inference only (generation runs without
// gradients; training batches are right-padded, where plain causal attention is exact):
// sllm::Error if a gradient is required.
Tensor attention_rows(const Tensor& q, const Tensor& k, const Tensor& v, int64_t n_head, int64_t n_kv_head,
                      const std::vector<int64_t>& pos0, const std::vector<int64_t>& n_new);
Tensor rope_rows(const Tensor& x, const Tensor& cos, const Tensor& sin, int64_t n_head, const std::vector<int64_t>& pos0,
                 const std::vector<int64_t>& n_new, bool interleaved);

// ---- dtype (ops/mixed_precision.cpp)
// f32 <-> bf16 (round to nearest even), differentiable: the gradient is cast back.
Tensor cast(const Tensor& x, DType dtype);

// ---- shapes (ops/shape_ops.cpp); transpose/concat/slice copy
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end);
// Rows of x (N, ...) picked by ids i32 (M) → (M, ...).
Tensor index_select(const Tensor& x, const Tensor& ids);
// out[i] = x[i, ids[i]] for x (N, C), ids i32 (N) → (N).
Tensor gather(const Tensor& x, const Tensor& ids);

// The names of every differentiable op above. The gradient-check test walks this list and
// fails for an op without a gradcheck entry, so a new op cannot skip its gradient check.
const std::vector<std::string>& differentiable_ops();

}  // namespace sllm::ops
