// The f32 pieces of ops::linear (ops/matmul.cpp), shared with ops::lora_linear
// (ops/lora_linear.cpp), whose fused node computes the same base product and gradients.
#pragma once
#include "ops/packed_weight.h"
#include "tensor/tensor.h"

namespace sllm::ops::detail {

// x (..., in) f32 or bf16 (CUDA), weight (out, in) f32, bias (out) f32 or undefined, all on
// `dev`: sllm::Error with a hint otherwise.
void check_linear_operands(const Tensor& x, const Tensor& weight, const Tensor& bias, Device dev);

// y (..., out) = x·Wᵀ + b for f32 x, without recording a graph node.
Tensor linear_forward_f32(const Tensor& x, const Tensor& weight, const Tensor& bias);

// The gradients of y = X·Wᵀ + b for upstream g: each undefined where its input does not
// require grad (a frozen W gets no buffer and no GEMM).
struct LinearGrads {
  Tensor dx, dw, db;
};
LinearGrads linear_backward_f32(const Tensor& g, const Tensor& X, const Tensor& W, const Tensor& bias);

// db (out) += the column sums of g (N, out), f32 on either device, in a fixed order;
// add_bias_grad also takes a bf16 g (CUDA mixed precision).
void add_bias_grad_f32(Tensor& db, const Tensor& g, const Tensor& bias);
void add_bias_grad(Tensor& db, const Tensor& g, const Tensor& bias);

// The packed-weight pieces of ops::packed_linear (ops/packed_linear.cpp), shared with
// ops::lora_linear over a packed base: the operand checks, and y = x·deq(W)ᵀ + b in x's
// dtype without a graph node.
void check_packed_linear_operands(const Tensor& x, const PackedWeight& w, const Tensor& bias);
Tensor packed_linear_forward(const Tensor& x, const PackedWeight& w, const Tensor& bias);

// The rows of one logits chunk of the frozen-head loss (ops/loss.cpp) for a vocabulary of
// V: what it holds in forward is one (rows, V) f32 chunk; train/memory_estimate.cpp counts it.
int64_t lm_head_chunk_rows(int64_t V);

}  // namespace sllm::ops::detail
