// The bf16 (mixed-precision) paths of the ops, on CUDA. Ops whose bf16 path differs only
// in the kernel overload they call (norms, activations, attention, RoPE, cross-entropy,
// slice/concat) branch on the dtype in their own file (SLLM_KERNEL_BF16, op_common.h); the
// two whose bf16 path is its own computation live here: linear and the mixed-dtype binary op.
// The recipe (Micikevicius et al. 2018, "Mixed Precision Training"; the one PyTorch's
// autocast applies to a transformer):
//  - parameters, their gradients and the optimizer state stay fp32 ("master weights");
//  - linear casts its fp32 weight to bf16 for the GEMM (fp32 accumulation) and returns bf16;
//    its weight gradient is produced in fp32 directly (bf16 x bf16 -> fp32 GEMM);
//  - the residual stream stays fp32: fp32 + bf16 -> fp32, and the norms read it in fp32 and
//    write the bf16 input of the next matmul;
//  - attention, GELU / SiLU / SwiGLU and RoPE take and return bf16, computing in fp32;
//  - cross-entropy reads bf16 logits and returns an fp32 loss.
// bf16 has fp32's exponent range, so no loss scaling is needed (unlike fp16).
// Gradients have the dtype of their tensor; every kernel rounds once when it stores bf16.
#pragma once
#include "kernels/kernels.h"
#include "tensor/tensor.h"

namespace sllm::ops::detail {

Tensor linear_bf16(const Tensor& x, const Tensor& weight, const Tensor& bias);
// a op b with at least one bf16 operand (see ops::add for the result dtype).
Tensor binary_mixed(kernels::BinaryOp op, const char* name, const Tensor& a, const Tensor& b);

}  // namespace sllm::ops::detail
