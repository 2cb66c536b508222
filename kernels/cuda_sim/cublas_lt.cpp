// The simulator's cuBLASLt: descriptors hold what was set on them, the heuristic returns one
// "algorithm" for every combination this file computes (and none otherwise, as the real
// library does for an unsupported combination), and cublasLtMatmul computes
//   D = alpha op(A) op(B) + beta C,  then the epilogue:
//   BIAS:    D[i, j] += bias[i] before D is rounded to its type (bias: one value per row of D);
//   BGRADB:  bias[j] = sum over l of op(B)[l, j] in l order (one value per column of D),
// with the column-major contract and k-order fp32 sums of kernels/cuda_sim/cublas.cpp.
#include <cstring>

#include "kernels/cuda_sim/cublas_sim.h"
#include "kernels/cuda_sim/include/cublasLt.h"

using namespace sllm::cudasim::blas;

struct cublasLtContext {};
struct cublasLtMatmulDescOpaque {
  cublasComputeType_t compute;
  cublasOperation_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  void* bias = nullptr;
  cudaDataType_t bias_type = cudaDataType_t(-1);  // -1: D's type, as the library defaults
};
struct cublasLtMatrixLayoutOpaque {
  cudaDataType_t type;
  uint64_t rows, cols;
  int64_t ld;
};
struct cublasLtMatmulPreferenceOpaque {
  size_t workspace = 0;
  uint32_t reduction_schemes = 0x7;  // the simulator never splits k: any mask is satisfied
};

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
  *handle = new cublasLtContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute, cudaDataType_t scale) {
  if (scale != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  *desc = new cublasLtMatmulDescOpaque{compute};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
  delete desc;
  return CUBLAS_STATUS_SUCCESS;
}

template <class T>
static cublasStatus_t read_attr(T& dst, const void* buf, size_t size) {
  if (size != sizeof(T)) return CUBLAS_STATUS_INVALID_VALUE;
  std::memcpy(&dst, buf, sizeof(T));
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                              const void* buf, size_t size) {
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA: return read_attr(desc->transa, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSB: return read_attr(desc->transb, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE: return read_attr(desc->epilogue, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return read_attr(desc->bias, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: return read_attr(desc->bias_type, buf, size);
  }
  return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType_t type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
  if (ld < int64_t(rows) || ld < 1) return CUBLAS_STATUS_INVALID_VALUE;
  *layout = new cublasLtMatrixLayoutOpaque{type, rows, cols, ld};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
  delete layout;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
  *pref = new cublasLtMatmulPreferenceOpaque;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  delete pref;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                    size_t size) {
  if (attr == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) return read_attr(pref->workspace, buf, size);
  if (attr == CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK) return read_attr(pref->reduction_schemes, buf, size);
  return CUBLAS_STATUS_INVALID_VALUE;
}

namespace {

// The shapes agree (op(A) m x k, op(B) k x n, C and D m x n), the types are ones we compute,
// and the epilogue is one we implement: what the heuristic and the matmul both check.
bool valid(const cublasLtMatmulDescOpaque& d, const cublasLtMatrixLayoutOpaque& a, const cublasLtMatrixLayoutOpaque& b,
           const cublasLtMatrixLayoutOpaque& c, const cublasLtMatrixLayoutOpaque& dd) {
  const uint64_t m = d.transa == CUBLAS_OP_N ? a.rows : a.cols, k = d.transa == CUBLAS_OP_N ? a.cols : a.rows;
  const uint64_t kb = d.transb == CUBLAS_OP_N ? b.rows : b.cols, n = d.transb == CUBLAS_OP_N ? b.cols : b.rows;
  if (k != kb || c.rows != m || c.cols != n || dd.rows != m || dd.cols != n || c.type != dd.type) return false;
  if (!supported(a.type) || a.type != b.type || !supported(dd.type)) return false;
  if (d.compute != CUBLAS_COMPUTE_32F && d.compute != CUBLAS_COMPUTE_32F_FAST_TF32) return false;
  const bool with_bias = d.epilogue == CUBLASLT_EPILOGUE_BIAS || d.epilogue == CUBLASLT_EPILOGUE_BGRADB;
  if (!with_bias) return d.epilogue == CUBLASLT_EPILOGUE_DEFAULT;
  const cudaDataType_t bias_type = d.bias_type == cudaDataType_t(-1) ? dd.type : d.bias_type;
  return supported(bias_type);
}

}  // namespace

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t, int requested,
                                              cublasLtMatmulHeuristicResult_t* results, int* returned) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (requested < 1) return CUBLAS_STATUS_INVALID_VALUE;
  *returned = 0;
  if (!valid(*desc, *a, *b, *c, *d)) return CUBLAS_STATUS_NOT_SUPPORTED;
  results[0] = {};
  results[0].state = CUBLAS_STATUS_SUCCESS;
  *returned = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                              cublasLtMatrixLayout_t a, const void* B, cublasLtMatrixLayout_t b, const void* beta,
                              const void* C, cublasLtMatrixLayout_t c, void* D, cublasLtMatrixLayout_t d,
                              const cublasLtMatmulAlgo_t*, void*, size_t, cudaStream_t) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!valid(*desc, *a, *b, *c, *d)) return CUBLAS_STATUS_NOT_SUPPORTED;
  const bool bias = desc->epilogue == CUBLASLT_EPILOGUE_BIAS, bgrad = desc->epilogue == CUBLASLT_EPILOGUE_BGRADB;
  if ((bias || bgrad) && !desc->bias) return CUBLAS_STATUS_INVALID_VALUE;
  const cudaDataType_t bias_type = desc->bias_type == cudaDataType_t(-1) ? d->type : desc->bias_type;
  const int m = int(d->rows), n = int(d->cols);
  const int k = int(desc->transa == CUBLAS_OP_N ? a->cols : a->rows);
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  const bool tf32 = desc->compute == CUBLAS_COMPUTE_32F_FAST_TF32;
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      float v = al * product_sum(desc->transa, desc->transb, i, j, k, A, a->type, int(a->ld), B, b->type, int(b->ld),
                                 tf32);
      if (be != 0.0f) v += be * load(C, c->type, i + int64_t(j) * c->ld);
      if (bias) v += load(desc->bias, bias_type, i);
      store(D, d->type, i + int64_t(j) * d->ld, v);
    }
  if (bgrad)  // the column sums of op(B) (k x n), in k order
    for (int j = 0; j < n; ++j) {
      float s = 0.0f;
      for (int l = 0; l < k; ++l)
        s += load(B, b->type, desc->transb == CUBLAS_OP_N ? l + int64_t(j) * b->ld : j + int64_t(l) * b->ld);
      store(desc->bias, bias_type, j, s);
    }
  return CUBLAS_STATUS_SUCCESS;
}
