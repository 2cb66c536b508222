// The simulator's cuBLAS: GemmEx and its strided-batch form on the CPU, with cuBLAS's
// column-major contract (element (i, j) of X is X[i + j * ld]), so the operand swap that
// kernels/cuda/gemm.cu does for row-major callers is exercised exactly as on a GPU.
// Accumulation is fp32 in k order (a GPU's order differs; tests budget for that). TF32
// compute rounds fp32 inputs to 10 mantissa bits first (round to nearest, ties away, as
// cvt.rna.tf32.f32); bf16 inputs are exact in fp32.
#include <cstdint>
#include <cstring>

#include "kernels/cuda_sim/cublas_sim.h"
#include "tensor/dtype.h"

struct cublasContext {
  cudaStream_t stream = nullptr;
};

namespace sllm::cudasim::blas {

float load(const void* p, cudaDataType type, int64_t i) {
  if (type == CUDA_R_16BF) return sllm::bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
  return static_cast<const float*>(p)[i];
}

void store(void* p, cudaDataType type, int64_t i, float v) {
  if (type == CUDA_R_16BF) static_cast<uint16_t*>(p)[i] = sllm::f32_to_bf16(v);
  else static_cast<float*>(p)[i] = v;
}

float to_tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7F800000u) != 0x7F800000u) u = (u + 0x1000u) & 0xFFFFE000u;  // finite: round off 13 bits
  std::memcpy(&x, &u, 4);
  return x;
}

bool supported(cudaDataType t) { return t == CUDA_R_32F || t == CUDA_R_16BF; }

float product_sum(cublasOperation_t ta, cublasOperation_t tb, int i, int j, int k, const void* A, cudaDataType at,
                  int lda, const void* B, cudaDataType bt, int ldb, bool tf32) {
  float acc = 0.0f;
  for (int l = 0; l < k; ++l) {
    float a = load(A, at, ta == CUBLAS_OP_N ? i + int64_t(l) * lda : l + int64_t(i) * lda);
    float b = load(B, bt, tb == CUBLAS_OP_N ? l + int64_t(j) * ldb : j + int64_t(l) * ldb);
    if (tf32) a = to_tf32(a), b = to_tf32(b);
    acc += a * b;
  }
  return acc;
}

void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const void* A,
          cudaDataType at, int lda, const void* B, cudaDataType bt, int ldb, float beta, void* C, cudaDataType ct,
          int ldc, bool tf32) {
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      const float acc = product_sum(ta, tb, i, j, k, A, at, lda, B, bt, ldb, tf32);
      const int64_t c = i + int64_t(j) * ldc;
      store(C, ct, c, beta == 0.0f ? alpha * acc : alpha * acc + beta * load(C, ct, c));
    }
}

}  // namespace sllm::cudasim::blas

using namespace sllm::cudasim::blas;

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t) {
  return handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                          int m, int n, int k, const void* alpha, const void* A, cudaDataType Atype,
                                          int lda, long long strideA, const void* B, cudaDataType Btype, int ldb,
                                          long long strideB, const void* beta, void* C, cudaDataType Ctype, int ldc,
                                          long long strideC, int batchCount, cublasComputeType_t computeType,
                                          cublasGemmAlgo_t) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (m < 0 || n < 0 || k < 0 || batchCount < 0) return CUBLAS_STATUS_INVALID_VALUE;
  // cuBLAS's leading-dimension rules (column-major): ld >= rows of the stored matrix.
  if (lda < (transa == CUBLAS_OP_N ? m : k) || ldb < (transb == CUBLAS_OP_N ? k : n) || ldc < m || lda < 1 ||
      ldb < 1 || ldc < 1)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!supported(Atype) || !supported(Btype) || !supported(Ctype) || Atype != Btype)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  const bool tf32 = computeType == CUBLAS_COMPUTE_32F_FAST_TF32;
  if (tf32 && Atype != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  const size_t ea = Atype == CUDA_R_16BF ? 2 : 4, ec = Ctype == CUDA_R_16BF ? 2 : 4;
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  for (int i = 0; i < batchCount; ++i)
    gemm(transa, transb, m, n, k, a, static_cast<const char*>(A) + i * strideA * ea, Atype, lda,
         static_cast<const char*>(B) + i * strideB * ea, Btype, ldb, b, static_cast<char*>(C) + i * strideC * ec, Ctype,
         ldc, tf32);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  return cublasGemmStridedBatchedEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0, beta, C,
                                    Ctype, ldc, 0, 1, computeType, algo);
}
