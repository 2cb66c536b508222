// GEMMs with a fused epilogue through cuBLASLt, for the bf16 linear layer (mixed precision):
//   gemm_bias:       C (M, N) bf16 = op(A) op(B) + bias,   bias (N) bf16 (CUBLASLT_EPILOGUE_BIAS).
//                    Measured on an H200 (cuBLASLt 13.0): for some shapes the product is
//                    rounded to bf16 before the bias is added (two roundings; the test
//                    MixedPrecision.LinearMatchesFp32OnRoundedInputs saw up to 8 ulps of a
//                    small result after cancellation), for others once. The simulator rounds
//                    once; the tests bound both;
//   gemm_bias_grad:  C (M, N) fp32 = op(A) op(B), and dbias (M) fp32 = the row sums of
//                    op(A) (CUBLASLT_EPILOGUE_BGRADB).
// They replace a bias pre-fill pass (broadcast_rows) plus a GEMM that reads C back (beta = 1),
// and a separate column-sum pass for the bias gradient. Same row-major contract and operand
// swap as gemm.cu: the row-major C = op(A) op(B) is the column-major Cᵀ = op(B)ᵀ op(A)ᵀ, so
// cuBLASLt's "A" is our B and its "B" is our A. In those column-major terms the bias is one
// value per row of Cᵀ (our N columns) and BGRADB sums op(our A)ᵀ over k, one value per column
// of Cᵀ (our M rows): cuBLASLt API reference, cublasLtEpilogue_t.
// The bias vector has D's type (cublasLt.h, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE).
//
// When cuBLASLt offers no algorithm for a shape (its heuristic returns none), both return
// false and the caller takes the plain path; nothing has been written then.
#include <cublasLt.h>

#include <climits>
#include <map>
#include <mutex>
#include <tuple>

#include "kernels/cuda/launch.h"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

void check_lt(cublasStatus_t status, const char* call) {
  SLLM_CHECK(status == CUBLAS_STATUS_SUCCESS, str("cuBLASLt error ", int(status), " in ", call),
             "a bad GEMM argument or an earlier kernel failure: rerun with CUDA_LAUNCH_BLOCKING=1");
}

constexpr size_t kWorkspaceBytes = size_t(32) << 20;  // cuBLASLt's split-k and stream-k scratch

struct Lt {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
};

Lt& lt() {
  static Lt state = [] {
    Lt s;
    check_lt(cublasLtCreate(&s.handle), "cublasLtCreate");
    s.workspace = device_alloc(kWorkspaceBytes);
    return s;
  }();
  return state;
}

// One descriptor set and its chosen algorithm per distinct call (the shapes of a model are few);
// the heuristic runs once per key. Pointers' alignment is part of the key: cuBLASLt picks
// kernels for the alignment it sees at heuristic time.
using Key = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int, int>;
struct Plan {
  bool ok = false;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

int alignment(const void* p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  return v % 16 == 0 ? 16 : v % 8 == 0 ? 8 : v % 4 == 0 ? 4 : 2;
}

// Row-major C (M, N) = op(A) op(B) with the epilogue, as the column-major Cᵀ = op(B)ᵀ op(A)ᵀ.
Plan& plan_for(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc,
               cudaDataType_t c_type, cublasLtEpilogue_t epilogue, const void* A, const void* B, const void* C,
               const void* bias) {
  static std::mutex mutex;
  static std::map<Key, Plan> plans;
  const std::lock_guard<std::mutex> lock(mutex);
  const int align = std::min({alignment(A), alignment(B), alignment(C), alignment(bias)});
  const Key key{trans_a, trans_b, M, N, K, lda, ldb, ldc, int(c_type), int(epilogue), align};
  auto it = plans.find(key);
  if (it != plans.end()) return it->second;
  Plan& p = plans[key];
  const cublasOperation_t op_lt_a = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLASLt's A is our B
  const cublasOperation_t op_lt_b = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  check_lt(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  check_lt(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_lt_a, sizeof(op_lt_a)), "TRANSA");
  check_lt(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_lt_b, sizeof(op_lt_b)), "TRANSB");
  check_lt(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)),
           "EPILOGUE");
  const int32_t bias_type = int32_t(c_type);
  check_lt(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)),
           "BIAS_DATA_TYPE");
  // Column-major layouts as stored: our row-major (R, S) with row stride ld is (S, R), ld.
  check_lt(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, trans_b ? K : N, trans_b ? N : K, ldb), "layout B");
  check_lt(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, trans_a ? M : K, trans_a ? K : M, lda), "layout A");
  check_lt(cublasLtMatrixLayoutCreate(&p.c, c_type, N, M, ldc), "layout C");
  cublasLtMatmulPreference_t pref = nullptr;
  check_lt(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  const size_t ws = kWorkspaceBytes;
  check_lt(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)),
           "MAX_WORKSPACE_BYTES");
  // Split-k partial sums only in fp32 (the workspace), never added up in the output's bf16
  // (the INPLACE and OUTPUT_TYPE schemes would round each partial sum).
  const uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
  check_lt(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes,
                                                sizeof(schemes)),
           "REDUCTION_SCHEME_MASK");
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  const cublasStatus_t st =
      cublasLtMatmulAlgoGetHeuristic(lt().handle, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &returned);
  cublasLtMatmulPreferenceDestroy(pref);
  p.ok = st == CUBLAS_STATUS_SUCCESS && returned > 0;
  if (p.ok) p.algo = result.algo;
  return p;
}

bool run(const char* what, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const bf16* A, int64_t lda,
         const bf16* B, int64_t ldb, void* C, cudaDataType_t c_type, int64_t ldc, cublasLtEpilogue_t epilogue,
         void* bias) {
  SLLM_CHECK(M > 0 && N > 0 && K > 0, str(what, ": sizes M=", M, " N=", N, " K=", K, " must be positive"),
             "handle empty products before calling the epilogue GEMM");
  SLLM_CHECK(A && B && C && bias, str(what, ": null pointer"), "pass every buffer");
  SLLM_CHECK(lda >= (trans_a ? M : K) && ldb >= (trans_b ? K : N) && ldc >= N,
             str(what, ": lda=", lda, " ldb=", ldb, " ldc=", ldc, " too small"), "strides are the rows as stored");
  for (const int64_t v : {M, N, K, lda, ldb, ldc})
    SLLM_CHECK(v <= INT_MAX, str(what, ": size or stride ", v, " exceeds cuBLASLt's int range"),
               "split the product into smaller GEMMs");
  Plan& p = plan_for(trans_a, trans_b, M, N, K, lda, ldb, ldc, c_type, epilogue, A, B, C, bias);
  if (!p.ok) return false;
  const ProfileRange range([&] {
    return str("cublasLt ", what, " ", c_type == CUDA_R_16BF ? "bf16->bf16" : "bf16->f32", " ", trans_a ? "T" : "N",
               trans_b ? "T" : "N", " M=", M, " N=", N, " K=", K);
  });
  check_lt(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)),
           "BIAS_POINTER");
  const float alpha = 1.0f, beta = 0.0f;
  check_lt(cublasLtMatmul(lt().handle, p.desc, &alpha, B, p.a, A, p.b, &beta, C, p.c, C, p.c, &p.algo, lt().workspace,
                          kWorkspaceBytes, stream()),
           "cublasLtMatmul");
  return true;
}

}  // namespace

bool gemm_bias(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const bf16* A, int64_t lda, const bf16* B,
               int64_t ldb, const bf16* bias, bf16* C, int64_t ldc) {
  return run("gemm+bias", trans_a, trans_b, M, N, K, A, lda, B, ldb, C, CUDA_R_16BF, ldc,
             CUBLASLT_EPILOGUE_BIAS, const_cast<bf16*>(bias));
}

bool gemm_bias_grad(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const bf16* A, int64_t lda,
                    const bf16* B, int64_t ldb, float* C, int64_t ldc, float* dbias) {
  return run("gemm+bgrad", trans_a, trans_b, M, N, K, A, lda, B, ldb, C, CUDA_R_32F, ldc, CUBLASLT_EPILOGUE_BGRADB,
             dbias);
}

}  // namespace sllm::kernels::cuda
