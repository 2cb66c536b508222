// The copying shape ops on the GPU: transpose (swap two dims), index_select (rows by ids)
// and gather (one column per row by ids), forward and backward, for f32 and bf16 buffers.
// The CPU versions are the loops in src/ops/shape_ops.cpp.
// Legend: N rows of the input, M selected rows (ids), C columns, inner elements per row;
// a transpose of dims lo < hi reads the input as (A, D0, Mid, D1, I): A the dims before lo,
// D0 = size of lo, Mid the dims between, D1 = size of hi, I the dims after hi.
// Backward ACCUMULATES (+=) into dinp; a nullptr dinp is skipped entirely.
//
// Forward kernels only move elements, so they copy bits (uint32_t for f32, uint16_t for
// bf16): identical to the CPU copy for any value, NaN payloads included. Backward adds in
// fp32 and rounds once on store (element.cuh's from_float: round to nearest even, the bits
// of sllm::f32_to_bf16).
//
// Backward without atomics: transpose and gather give every dinp element at most one
// source, so one thread per element suffices. index_select may repeat ids; it uses the
// partition of embedding.cu: each thread owns one column j and a slice of the input's rows
// and walks all M ids in order, adding only those that fall in its slice, so every dinp
// element receives its additions in id order: the CPU loop's bits, on any GPU. For bf16 the
// sums run in an fp32 copy of dinp that is rounded back once at the end.
#include "kernels/cuda/element.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/scratch.h"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

// Ids staged in shared memory per step of index_select's backward loop.
constexpr int kIdTile = kThreads;
// Aim for this many blocks in index_select's backward (enough to fill a large GPU).
constexpr int64_t kTargetBlocks = 1024;

// The bits of an element: what a forward copies.
template <class T> struct BitsOf;
template <> struct BitsOf<float> { using type = uint32_t; };
template <> struct BitsOf<sllm::bf16> { using type = uint16_t; };

template <class T> typename BitsOf<T>::type* bits(T* p) { return reinterpret_cast<typename BitsOf<T>::type*>(p); }
template <class T> const typename BitsOf<T>::type* bits(const T* p) {
  return reinterpret_cast<const typename BitsOf<T>::type*>(p);
}

// ---- kernels: grid-stride loops ---------------------------------------------------------

// The input offset of output element o of a transpose: the output is (A, D1, Mid, D0, I),
// the input (A, D0, Mid, D1, I).
__device__ inline int64_t transpose_source(int64_t o, int64_t D0, int64_t Mid, int64_t D1, int64_t I) {
  const int64_t i = o % I;
  int64_t r = o / I;
  const int64_t p0 = r % D0;
  r /= D0;
  const int64_t m = r % Mid;
  r /= Mid;
  const int64_t p1 = r % D1;
  const int64_t a = r / D1;
  return (((a * D0 + p0) * Mid + m) * D1 + p1) * I + i;
}

// One thread per output element: writes are coalesced; reads are strided when I == 1.
// out (A, D1, Mid, D0, I) = inp (A, D0, Mid, D1, I) with D0 and D1 swapped.
template <class B>
__global__ void transpose_forward_kernel(B* out, const B* inp, int64_t n, int64_t D0, int64_t Mid, int64_t D1,
                                         int64_t I) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < n; o += int64_t(gridDim.x) * blockDim.x)
    out[o] = inp[transpose_source(o, D0, Mid, D1, I)];
}

// dinp (A, D0, Mid, D1, I) += dout (A, D1, Mid, D0, I) with D0 and D1 swapped back. The map
// is a bijection, so each dinp element has one writer.
template <class T>
__global__ void transpose_backward_kernel(T* dinp, const T* dout, int64_t n, int64_t D0, int64_t Mid, int64_t D1,
                                          int64_t I) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < n; o += int64_t(gridDim.x) * blockDim.x) {
    T* d = dinp + transpose_source(o, D0, Mid, D1, I);
    *d = from_float<T>(to_float(*d) + to_float(dout[o]));
  }
}

// out (M, inner) = inp (N, inner) [ids (M)].
template <class B>
__global__ void index_select_forward_kernel(B* out, const B* inp, const int32_t* ids, int64_t M, int64_t inner) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < M * inner; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = o / inner, j = o % inner;
    out[o] = inp[int64_t(ids[i]) * inner + j];
  }
}

// dacc (N, inner) += dout (M, inner) scattered to rows ids (M). Grid (ceil(inner / 256),
// slices): thread x owns column j, block y the input rows [r0, r0 + slice).
template <class T>
__global__ void index_select_backward_kernel(float* dacc, const T* dout, const int32_t* ids, int64_t M, int64_t inner,
                                             int64_t slice) {
  __shared__ int32_t id_tile[kIdTile];
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t r0 = blockIdx.y * slice, r1 = r0 + slice;
  for (int64_t m0 = 0; m0 < M; m0 += kIdTile) {
    __syncthreads();  // the previous tile has been read
    if (m0 + threadIdx.x < M) id_tile[threadIdx.x] = ids[m0 + threadIdx.x];
    __syncthreads();
    if (j >= inner) continue;
    const int64_t m1 = min(M, m0 + kIdTile);
    for (int64_t m = m0; m < m1; ++m) {
      const int64_t r = id_tile[m - m0];
      if (r >= r0 && r < r1) dacc[r * inner + j] += to_float(dout[m * inner + j]);
    }
  }
}

// The fp32 working copy of a bf16 gradient for index_select's backward, and back.
template <class TOut, class TIn>
__global__ void convert_kernel(TOut* out, const TIn* inp, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_float<TOut>(to_float(inp[i]));
}

// out (N) = inp (N, C) [i, ids[i]].
template <class B>
__global__ void gather_forward_kernel(B* out, const B* inp, const int32_t* ids, int64_t N, int64_t C) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < N; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = inp[i * C + ids[i]];
}

// dinp (N, C) [i, ids[i]] += dout (N): row i owns its element, so no two threads collide.
template <class T>
__global__ void gather_backward_kernel(T* dinp, const T* dout, const int32_t* ids, int64_t N, int64_t C) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < N; i += int64_t(gridDim.x) * blockDim.x) {
    T* d = dinp + i * C + ids[i];
    *d = from_float<T>(to_float(*d) + to_float(dout[i]));
  }
}

// ---- launchers ---------------------------------------------------------------------------

// A transpose of `shape` (host, ndim dims) as the 5-d problem of the legend.
struct TransposeDims {
  int64_t n, D0, Mid, D1, I;
};

TransposeDims transpose_dims(const int64_t* shape, int64_t ndim, int64_t dim0, int64_t dim1, const char* op) {
  SLLM_CHECK(shape != nullptr && ndim >= 1, str(op, ": needs a shape with at least one dim (got ndim=", ndim, ")"),
             "pass the input's shape as a host array");
  SLLM_CHECK(dim0 >= 0 && dim0 < ndim && dim1 >= 0 && dim1 < ndim,
             str(op, ": dims ", dim0, ", ", dim1, " out of range for ", ndim, " dims"), "normalize dims to [0, ndim)");
  const int64_t lo = std::min(dim0, dim1), hi = std::max(dim0, dim1);
  TransposeDims t{1, shape[lo], 1, lo == hi ? 1 : shape[hi], 1};
  for (int64_t k = 0; k < ndim; ++k) {
    SLLM_CHECK(shape[k] >= 0, str(op, ": negative size ", shape[k], " in dim ", k), "sizes must be >= 0");
    t.n *= shape[k];
    if (k > lo && k < hi) t.Mid *= shape[k];
    if (k > hi) t.I *= shape[k];
  }
  return t;
}

template <class T>
void launch_transpose_forward(T* out, const T* inp, const int64_t* shape, int64_t ndim, int64_t dim0, int64_t dim1) {
  const TransposeDims t = transpose_dims(shape, ndim, dim0, dim1, "transpose_forward");
  if (t.n == 0) return;
  SLLM_LAUNCH(grid_for(t.n), kThreads, 0, transpose_forward_kernel<typename BitsOf<T>::type>)(
      bits(out), bits(inp), t.n, t.D0, t.Mid, t.D1, t.I);
  SLLM_CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_transpose_backward(T* dinp, const T* dout, const int64_t* shape, int64_t ndim, int64_t dim0,
                               int64_t dim1) {
  const TransposeDims t = transpose_dims(shape, ndim, dim0, dim1, "transpose_backward");
  if (!dinp || t.n == 0) return;
  SLLM_LAUNCH(grid_for(t.n), kThreads, 0, transpose_backward_kernel<T>)(
      dinp, dout, t.n, t.D0, t.Mid, t.D1, t.I);
  SLLM_CUDA_CHECK_LAUNCH();
}

void check_rows(int64_t N, int64_t M, int64_t inner, const char* op) {
  SLLM_CHECK(N >= 0 && M >= 0 && inner >= 0, str(op, ": bad sizes N=", N, " M=", M, " inner=", inner),
             "sizes must be >= 0");
  SLLM_CHECK(M == 0 || inner == 0 || N > 0, str(op, ": ", M, " ids select from an input with no rows"),
             "ids must address rows of the input (validated by the caller)");
}

template <class T>
void launch_index_select_forward(T* out, const T* inp, const int32_t* ids, int64_t N, int64_t M, int64_t inner) {
  check_rows(N, M, inner, "index_select_forward");
  if (M * inner == 0) return;
  SLLM_LAUNCH(grid_for(M * inner), kThreads, 0, index_select_forward_kernel<typename BitsOf<T>::type>)(
      bits(out), bits(inp), ids, M, inner);
  SLLM_CUDA_CHECK_LAUNCH();
}

// The scatter of index_select's backward into an fp32 buffer dacc (N, inner).
template <class G>
void launch_index_select_scatter(float* dacc, const G* dout, const int32_t* ids, int64_t N, int64_t M, int64_t inner) {
  const int64_t col_blocks = (inner + kThreads - 1) / kThreads;
  const int64_t slices = std::clamp<int64_t>(kTargetBlocks / col_blocks, 1, std::min<int64_t>(N, 65535));
  const int64_t slice = (N + slices - 1) / slices;  // input rows per block row
  const dim3 grid(unsigned(col_blocks), unsigned((N + slice - 1) / slice));
  SLLM_LAUNCH(grid, kThreads, 0, index_select_backward_kernel<G>)(dacc, dout, ids, M, inner, slice);
  SLLM_CUDA_CHECK_LAUNCH();
}

void check_gather(int64_t N, int64_t C, const char* op) {
  SLLM_CHECK(N >= 0 && C >= 0, str(op, ": bad sizes N=", N, " C=", C), "sizes must be >= 0");
  SLLM_CHECK(N == 0 || C > 0, str(op, ": ", N, " rows but no columns to gather from"),
             "ids must address columns of the input (validated by the caller)");
}

template <class T>
void launch_gather_forward(T* out, const T* inp, const int32_t* ids, int64_t N, int64_t C) {
  check_gather(N, C, "gather_forward");
  if (N == 0) return;
  SLLM_LAUNCH(grid_for(N), kThreads, 0, gather_forward_kernel<typename BitsOf<T>::type>)(bits(out), bits(inp), ids, N, C);
  SLLM_CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_gather_backward(T* dinp, const T* dout, const int32_t* ids, int64_t N, int64_t C) {
  check_gather(N, C, "gather_backward");
  if (!dinp || N == 0) return;
  SLLM_LAUNCH(grid_for(N), kThreads, 0, gather_backward_kernel<T>)(dinp, dout, ids, N, C);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

// ---- validated entries --------------------------------------------------------------------

void transpose_forward(float* out, const float* inp, const int64_t* shape, int64_t ndim, int64_t dim0, int64_t dim1) {
  launch_transpose_forward(out, inp, shape, ndim, dim0, dim1);
}
void transpose_forward(bf16* out, const bf16* inp, const int64_t* shape, int64_t ndim, int64_t dim0, int64_t dim1) {
  launch_transpose_forward(out, inp, shape, ndim, dim0, dim1);
}
void transpose_backward(float* dinp, const float* dout, const int64_t* shape, int64_t ndim, int64_t dim0, int64_t dim1) {
  launch_transpose_backward(device_ptr(dinp), device_ptr(dout), shape, ndim, dim0, dim1);
}
void transpose_backward(bf16* dinp, const bf16* dout, const int64_t* shape, int64_t ndim, int64_t dim0, int64_t dim1) {
  launch_transpose_backward(device_ptr(dinp), device_ptr(dout), shape, ndim, dim0, dim1);
}

// ids are validated in [0, N) by the caller, as on the CPU.
void index_select_forward(float* out, const float* inp, const int32_t* ids, int64_t N, int64_t M, int64_t inner) {
  launch_index_select_forward(out, inp, ids, N, M, inner);
}
void index_select_forward(bf16* out, const bf16* inp, const int32_t* ids, int64_t N, int64_t M, int64_t inner) {
  launch_index_select_forward(out, inp, ids, N, M, inner);
}
void index_select_backward(float* dinp, const float* dout, const int32_t* ids, int64_t N, int64_t M, int64_t inner) {
  check_rows(N, M, inner, "index_select_backward");
  if (!dinp || M * inner == 0) return;
  launch_index_select_scatter(dinp, dout, ids, N, M, inner);
}
void index_select_backward(bf16* dinp, const bf16* dout, const int32_t* ids, int64_t N, int64_t M, int64_t inner) {
  check_rows(N, M, inner, "index_select_backward");
  if (!dinp || M * inner == 0) return;
  const int64_t n = N * inner;
  Scratch<float> acc{size_t(n)};  // (N, inner): dinp in fp32 while the repeats are summed
  SLLM_LAUNCH(grid_for(n), kThreads, 0, convert_kernel<float, __nv_bfloat16>)(acc.get(), device_ptr(dinp), n);
  SLLM_CUDA_CHECK_LAUNCH();
  launch_index_select_scatter(acc.get(), device_ptr(dout), ids, N, M, inner);
  SLLM_LAUNCH(grid_for(n), kThreads, 0, convert_kernel<__nv_bfloat16, float>)(device_ptr(dinp), acc.get(), n);
  SLLM_CUDA_CHECK_LAUNCH();
}

// ids are validated in [0, C) by the caller, as on the CPU.
void gather_forward(float* out, const float* inp, const int32_t* ids, int64_t N, int64_t C) {
  launch_gather_forward(out, inp, ids, N, C);
}
void gather_forward(bf16* out, const bf16* inp, const int32_t* ids, int64_t N, int64_t C) {
  launch_gather_forward(out, inp, ids, N, C);
}
void gather_backward(float* dinp, const float* dout, const int32_t* ids, int64_t N, int64_t C) {
  launch_gather_backward(device_ptr(dinp), device_ptr(dout), ids, N, C);
}
void gather_backward(bf16* dinp, const bf16* dout, const int32_t* ids, int64_t N, int64_t C) {
  launch_gather_backward(device_ptr(dinp), device_ptr(dout), ids, N, C);
}

}  // namespace sllm::kernels::cuda
