// GEMM on the GPU through cuBLAS: fp32 (optionally TF32 tensor cores), and bf16 inputs with
// fp32 accumulation and an fp32 or bf16 C (mixed precision; cuBLAS rounds C once).
// Same row-major contract as kernels/cpu/gemm.cpp:
//   C (M, N) = alpha * op(A) * op(B) + beta * C,  lda/ldb/ldc the row strides as stored.
//
// cuBLAS is column-major. A row-major (R, S) matrix with row stride ld is, read
// column-major, its transpose (S, R) with leading dimension ld. So the row-major product
// C = op(A) op(B) is computed as the column-major product Cᵀ = op(B)ᵀ op(A)ᵀ: pass B first,
// A second, swap M and N, and keep each operand's transpose flag (the "usual operand
// swap"; no data moves). beta == 0: cuBLAS does not read C, so NaNs in C do not propagate.
#include <cublas_v2.h>

#include <atomic>
#include <climits>
#include <string>

#include "kernels/cuda/element.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

std::atomic<bool> g_tf32{false};

void check_cublas(cublasStatus_t status, const char* call) {
  SLLM_CHECK(status == CUBLAS_STATUS_SUCCESS, str("cuBLAS error ", cublasGetStatusString(status), " in ", call),
             status == CUBLAS_STATUS_NOT_INITIALIZED
                 ? "cuBLAS could not start: check that a GPU is visible (nvidia-smi) and has free memory"
                 : "a bad GEMM argument or an earlier kernel failure: rerun with CUDA_LAUNCH_BLOCKING=1");
}

// One handle per process, on the stream of launch.h, created on first use.
cublasHandle_t handle() {
  static const cublasHandle_t h = [] {
    cublasHandle_t created = nullptr;
    check_cublas(cublasCreate(&created), "cublasCreate");
    check_cublas(cublasSetStream(created, stream()), "cublasSetStream");
    return created;
  }();
  return h;
}

// C (M, N) = beta * C, or 0 when beta == 0: the whole result when K == 0 or alpha == 0.
template <class TC>
__global__ void scale_c_kernel(TC* C, int64_t M, int64_t N, int64_t ldc, float beta) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < M * N; i += int64_t(gridDim.x) * blockDim.x) {
    TC& c = C[(i / N) * ldc + i % N];
    c = from_float<TC>(beta == 0.0f ? 0.0f : beta * to_float(c));
  }
}

void check_args(const char* op, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const void* A,
                int64_t lda, const void* B, int64_t ldb, const void* C, int64_t ldc) {
  SLLM_CHECK(M >= 0 && N >= 0 && K >= 0, str(op, ": negative size M=", M, " N=", N, " K=", K), "sizes must be >= 0");
  const int64_t a_cols = trans_a ? M : K, b_cols = trans_b ? K : N;
  SLLM_CHECK(lda >= a_cols, str(op, ": lda=", lda, " < ", a_cols),
             "lda is the row stride of A as stored: >= K (or >= M when trans_a)");
  SLLM_CHECK(ldb >= b_cols, str(op, ": ldb=", ldb, " < ", b_cols),
             "ldb is the row stride of B as stored: >= N (or >= K when trans_b)");
  SLLM_CHECK(ldc >= N, str(op, ": ldc=", ldc, " < N=", N), "ldc is the row stride of C");
  SLLM_CHECK(M * N == 0 || C != nullptr, str(op, ": C is null"), "pass an (M, N) output buffer");
  SLLM_CHECK(M * N * K == 0 || (A != nullptr && B != nullptr), str(op, ": A or B is null"), "pass the input buffers");
  // cuBLAS takes sizes and leading dimensions as int.
  for (const int64_t v : {M, N, K, lda, ldb, ldc})
    SLLM_CHECK(v <= INT_MAX, str(op, ": size or stride ", v, " exceeds cuBLAS's int range"),
               "split the product into smaller GEMMs");
}

// Handles the degenerate shapes as the CPU does; returns true when nothing is left to do.
template <class TC>
bool degenerate(int64_t M, int64_t N, int64_t K, float alpha, float beta, TC* C, int64_t ldc) {
  if (M == 0 || N == 0) return true;
  if (K != 0 && alpha != 0.0f) return false;
  SLLM_LAUNCH(grid_for(M * N), kThreads, 0, scale_c_kernel<TC>)(C, M, N, ldc, beta);
  SLLM_CUDA_CHECK_LAUNCH();
  return true;
}

cublasComputeType_t fp32_compute() {
  return g_tf32.load(std::memory_order_relaxed) ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

const char* type_name(cudaDataType_t t, cublasComputeType_t compute) {
  if (t == CUDA_R_16BF) return "bf16";
  return compute == CUBLAS_COMPUTE_32F_FAST_TF32 ? "tf32" : "f32";
}

// The profile's name of a GEMM (profile.cpp), in the row-major terms of the callers:
// "cublas gemm bf16->f32 NT M=8192 N=768 K=3072", "[batch]" after gemm when batched.
std::string profile_name(const char* what, int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N,
                         int64_t K, cudaDataType_t in_type, cudaDataType_t c_type, cublasComputeType_t compute) {
  return str("cublas ", what, batch > 0 ? str("[", batch, "]") : std::string(), " ", type_name(in_type, compute),
             "->", type_name(c_type, CUBLAS_COMPUTE_32F), " ", trans_a ? "T" : "N", trans_b ? "T" : "N", " M=", M,
             " N=", N, " K=", K);
}

// Row-major C = op(A) op(B) as column-major Cᵀ = op(B)ᵀ op(A)ᵀ (see the top of the file).
void gemm_ex(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const void* A,
             int64_t lda, const void* B, int64_t ldb, cudaDataType_t in_type, float beta, void* C,
             cudaDataType_t c_type, int64_t ldc, cublasComputeType_t compute) {
  const ProfileRange range([&] { return profile_name("gemm", 0, trans_a, trans_b, M, N, K, in_type, c_type, compute); });
  check_cublas(cublasGemmEx(handle(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                            int(N), int(M), int(K), &alpha, B, in_type, int(ldb), A, in_type, int(lda), &beta, C,
                            c_type, int(ldc), compute, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
}

// The strided-batch twin of gemm_ex; the caller has handled batch == 0 and degenerate shapes.
void gemm_strided_batched_ex(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                             float alpha, const void* A, int64_t lda, int64_t stride_a, const void* B, int64_t ldb,
                             int64_t stride_b, cudaDataType_t in_type, float beta, void* C, cudaDataType_t c_type,
                             int64_t ldc, int64_t stride_c, cublasComputeType_t compute) {
  const ProfileRange range(
      [&] { return profile_name("gemm", batch, trans_a, trans_b, M, N, K, in_type, c_type, compute); });
  check_cublas(cublasGemmStridedBatchedEx(handle(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                          trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, int(N), int(M), int(K), &alpha, B,
                                          in_type, int(ldb), stride_b, A, in_type, int(lda), stride_a, &beta, C,
                                          c_type, int(ldc), stride_c, int(batch), compute, CUBLAS_GEMM_DEFAULT),
               "cublasGemmStridedBatchedEx");
}

cudaDataType_t data_type(const float*) { return CUDA_R_32F; }
cudaDataType_t data_type(const __nv_bfloat16*) { return CUDA_R_16BF; }

// bf16 A, B (mixed precision): fp32 accumulation, never TF32 (the inputs already have fewer
// mantissa bits than TF32 keeps), C of either type.
template <class TC>
void gemm_bf16_inputs(const char* op, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const bf16* A, int64_t lda, const bf16* B, int64_t ldb, float beta, TC* C, int64_t ldc) {
  check_args(op, trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (degenerate(M, N, K, alpha, beta, C, ldc)) return;
  gemm_ex(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, CUDA_R_16BF, beta, C, data_type(C), ldc,
          CUBLAS_COMPUTE_32F);
}

// Validates the batch, handles the degenerate shapes per matrix; true when nothing is left.
template <class TC>
bool batched_prologue(const char* op, bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                      float alpha, const void* A, int64_t lda, const void* B, int64_t ldb, float beta, TC* C,
                      int64_t ldc, int64_t stride_c) {
  SLLM_CHECK(batch >= 0 && batch <= INT_MAX, str(op, ": batch=", batch), "batch must be in [0, 2^31)");
  check_args(op, trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (batch == 0 || M == 0 || N == 0) return true;
  if (K != 0 && alpha != 0.0f) return false;
  for (int64_t b = 0; b < batch; ++b) degenerate(M, N, K, alpha, beta, C + b * stride_c, ldc);
  return true;
}

}  // namespace

void set_tf32(bool enabled) { g_tf32.store(enabled, std::memory_order_relaxed); }
bool tf32_enabled() { return g_tf32.load(std::memory_order_relaxed); }

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check_args("sgemm", trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (degenerate(M, N, K, alpha, beta, C, ldc)) return;
  gemm_ex(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, CUDA_R_32F, beta, C, CUDA_R_32F, ldc, fp32_compute());
}

void sgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                   float beta, float* C, int64_t ldc, int64_t stride_c) {
  if (batched_prologue("sgemm_batched", trans_a, trans_b, batch, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                       stride_c))
    return;
  gemm_strided_batched_ex(trans_a, trans_b, batch, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, CUDA_R_32F,
                          beta, C, CUDA_R_32F, ldc, stride_c, fp32_compute());
}

// ---- bf16 inputs (mixed precision) ---------------------------------------------------------

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const bf16* A, int64_t lda,
          const bf16* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_bf16_inputs("gemm", trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const bf16* A, int64_t lda,
          const bf16* B, int64_t ldb, float beta, bf16* C, int64_t ldc) {
  gemm_bf16_inputs("gemm", trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, device_ptr(C), ldc);
}

void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                  const bf16* A, int64_t lda, int64_t stride_a, const bf16* B, int64_t ldb, int64_t stride_b,
                  float beta, float* C, int64_t ldc, int64_t stride_c) {
  if (batched_prologue("gemm_batched", trans_a, trans_b, batch, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                       stride_c))
    return;
  gemm_strided_batched_ex(trans_a, trans_b, batch, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, CUDA_R_16BF,
                          beta, C, CUDA_R_32F, ldc, stride_c, CUBLAS_COMPUTE_32F);
}

void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                  const bf16* A, int64_t lda, int64_t stride_a, const bf16* B, int64_t ldb, int64_t stride_b,
                  float beta, bf16* C, int64_t ldc, int64_t stride_c) {
  if (batched_prologue("gemm_batched", trans_a, trans_b, batch, M, N, K, alpha, A, lda, B, ldb, beta, device_ptr(C),
                       ldc, stride_c))
    return;
  gemm_strided_batched_ex(trans_a, trans_b, batch, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, CUDA_R_16BF,
                          beta, C, CUDA_R_16BF, ldc, stride_c, CUBLAS_COMPUTE_32F);
}

}  // namespace sllm::kernels::cuda
