// The simulator's GEMM arithmetic, shared by its cuBLAS (cublas.cpp) and cuBLASLt
// (cublas_lt.cpp) stand-ins: column-major operands, fp32 accumulation in k order.
#pragma once
#include <cstdint>

#include "kernels/cuda_sim/include/cublas_v2.h"

namespace sllm::cudasim::blas {

float load(const void* p, cudaDataType type, int64_t i);       // element i as float
void store(void* p, cudaDataType type, int64_t i, float v);   // rounded to the type (bf16: RNE)
bool supported(cudaDataType t);                                // f32 or bf16
// sum over l < k of op(A)[i, l] * op(B)[l, j], in l order.
float product_sum(cublasOperation_t ta, cublasOperation_t tb, int i, int j, int k, const void* A, cudaDataType at,
                  int lda, const void* B, cudaDataType bt, int ldb, bool tf32);
// C = alpha op(A) op(B) + beta C (C not read when beta == 0).
void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const void* A,
          cudaDataType at, int lda, const void* B, cudaDataType bt, int ldb, float beta, void* C, cudaDataType ct,
          int ldc, bool tf32);

}  // namespace sllm::cudasim::blas
