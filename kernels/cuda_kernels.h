// Every CUDA kernel of sllm, as plain C++ declarations: the same names, argument order and
// contracts as kernels/kernels.h, on device pointers. No CUDA type leaks out of this header,
// so src/ops can include it from ordinary .cpp files.
//
// Dimension legend: B batch, T time, C channels, NH query heads, NKV key/value heads,
// HD head dim, V vocab, N rows (= B*T unless said).
//
// Conventions (in addition to kernels/kernels.h's, which all hold here):
//  - Every pointer argument is a device pointer unless its comment says "host".
//  - Work runs in order on one stream held by a small per-process context (the legacy
//    default stream of device 0), so a kernel may read what the previous one wrote without
//    any synchronization; `synchronize()` waits for all of it. Calls return before the GPU
//    finishes, except those that hand a value back to the host (copy_d2h, sum_forward's
//    float overload), which wait.
//  - Backward kernels ACCUMULATE (+=) into every gradient they are given; nullptr = skip.
//  - Reductions use a fixed partition of the work (never atomics), so results are bitwise
//    reproducible run to run on the same GPU.
//  - A CUDA or cuBLAS failure raises sllm::Error with the CUDA error string and a hint.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/kernels.h"  // BinaryOp

namespace sllm {
class Allocator;
struct bf16;  // tensor/dtype.h: a bfloat16 element as stored
}

namespace sllm::kernels::cuda {

// ---- device and memory (kernels/cuda/device.cu) ---------------------------------------
// Number of visible CUDA devices; 0 when there is none or no usable driver. Never throws.
int device_count();
// "NVIDIA H100 80GB HBM3 (sm_90)" for device 0; throws without a device.
const char* device_name();
// Raw device memory (cudaMalloc / cudaFree): for long-lived buffers and tests. Tensors use
// the caching allocator below instead, so no cudaMalloc happens per op.
void* device_alloc(size_t nbytes);
void device_free(void* ptr);
void copy_h2d(void* dst, const void* host_src, size_t nbytes);
void copy_d2h(void* host_dst, const void* src, size_t nbytes);  // waits for the copy
void copy_d2d(void* dst, const void* src, size_t nbytes);
// `height` rows of `width` bytes, row i from src + i * src_pitch to dst + i * dst_pitch
// (cudaMemcpy2D): a slice or concat along an inner dim in one call. width <= both pitches.
void copy_d2d_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t height);
void memset_zero(void* ptr, size_t nbytes);
void synchronize();

// ---- caching allocator (kernels/cuda/caching_allocator.cpp) ---------------------------
// The sllm::Allocator for Device::CUDA: freed blocks go to size-bucketed free lists and are
// handed out again, so a training step reuses the previous step's blocks.
sllm::Allocator& caching_allocator();
// Makes caching_allocator() the allocator of Device::CUDA (tensor/storage.h).
void register_cuda_allocator();
struct CacheStats {
  size_t cuda_mallocs;         // blocks obtained from cudaMalloc so far
  size_t bytes_in_use;         // held by live allocations (rounded sizes)
  size_t bytes_cached;         // held in the free lists
  size_t peak_bytes_in_use;    // the most bytes_in_use has been since reset_peak_stats()
};
CacheStats cache_stats();
// Starts a new peak window: peak_bytes_in_use becomes the current bytes_in_use (as
// torch.cuda.reset_peak_memory_stats). ops/memory_usage.h reads and resets it.
void reset_peak_stats();
// Returns every cached block to the driver (cudaFree).
void empty_cache();

// ---- GEMM (kernels/cuda/gemm.cu, cuBLAS) ----------------------------------------------
// Same contract as kernels::sgemm: row-major, C (M, N) = alpha op(A) op(B) + beta C,
// lda/ldb/ldc are row strides; beta == 0 means C is write-only.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc);
void sgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                   float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                   int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                   int64_t stride_c);
// TF32 tensor cores for sgemm / sgemm_batched (10-bit mantissa inputs, fp32 accumulate):
// off by default, so fp32 results match the CPU to ~1e-6 unless a caller opts in.
void set_tf32(bool enabled);
bool tf32_enabled();
// bf16 A and B (mixed precision): the bf16 overloads of gemm / gemm_batched below.

// ---- elementwise (kernels/cuda/elementwise.cu) ----------------------------------------
void binary_forward(BinaryOp op, float* out, const float* a, const float* b, int64_t n, int64_t nb);
void binary_backward(BinaryOp op, float* da, float* db, const float* dout, const float* a,
                     const float* b, int64_t n, int64_t nb);
void scale_forward(float* out, const float* a, float s, int64_t n);
// out (1, device) = sum of a's n elements, in double with a fixed partition; no host wait.
void sum_forward(float* out, const float* a, int64_t n);
// The same, returned to the host (waits for the GPU), as kernels::sum_forward.
float sum_forward(const float* a, int64_t n);
void sum_rows_forward(float* out, const float* a, int64_t rows, int64_t cols);

// ---- embedding (kernels/cuda/embedding.cu) --------------------------------------------
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int64_t V, int64_t C);
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t N, int64_t V, int64_t C);
// The write variant for a fresh dtable: rows_by_id (N) lists the rows of each id in
// increasing row order, id after id, and row_start (V + 1) where each id's list begins
// (built on the host from the ids by ops::embedding). Every dtable element is
// written (0 for ids that do not occur): no zero-fill. Same bits as the accumulating kernel
// into a zeroed table.
void embedding_backward_grouped(float* dtable, const float* dout, const int32_t* rows_by_id, const int32_t* row_start,
                                int64_t N, int64_t V, int64_t C);

// ---- layernorm (kernels/cuda/layernorm.cu) --------------------------------------------
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps);
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C);

// ---- rmsnorm (kernels/cuda/rmsnorm.cu) ------------------------------------------------
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C, float eps);
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C);

// ---- activations (kernels/cuda/activations.cu) ----------------------------------------
void gelu_forward(float* out, const float* inp, int64_t n, bool tanh_approx);
void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n, bool tanh_approx);
void silu_forward(float* out, const float* inp, int64_t n);
void silu_backward(float* dinp, const float* dout, const float* inp, int64_t n);
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);

// ---- softmax (kernels/cuda/softmax.cu) ------------------------------------------------
void softmax_forward(float* out, const float* inp, int64_t N, int64_t C);
void softmax_backward(float* dinp, const float* dout, const float* out, int64_t N, int64_t C);
void log_softmax_forward(float* out, const float* inp, int64_t N, int64_t C);
void log_softmax_backward(float* dinp, const float* dout, const float* out, int64_t N, int64_t C);

// ---- fused softmax + cross-entropy (kernels/cuda/cross_entropy.cu) --------------------
void cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets,
                           int64_t N, int64_t V, int32_t ignore_index);
void cross_entropy_backward(float* dlogits, const float* dlosses, const float* logits, const float* lse,
                            const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index);

// ---- causal GQA attention (kernels/cuda/attention.cu) ---------------------------------
// Layouts as kernels::attention_forward: q (B, T, NH, HD), k and v (B, Tk, NKV, HD),
// out (B, T, NH, HD), lse (B, NH, T). HD <= 128.
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       int64_t B, int64_t T, int64_t Tk, int64_t NH, int64_t NKV, int64_t HD,
                       int64_t q_offset, float scale);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        int64_t B, int64_t T, int64_t Tk, int64_t NH, int64_t NKV, int64_t HD,
                        int64_t q_offset, float scale);

// ---- causal GQA attention in bf16 on tensor cores (kernels/cuda/attention_bf16.cu) ------
// The fp32 contract above with q, k, v, out, dout and the gradients in bf16 (lse stays
// fp32): scores, softmax and sums in fp32, P and dS rounded to bf16 before their second
// product (FlashAttention-2 on mma.sync). HD a multiple of 16 up to 128, else sllm::Error.
// Row strides (elements between consecutive tokens; multiples of 8, rows 16-byte aligned):
// ldq for q and dq (>= NH*HD), ldk for k and dk, ldv for v and dv (>= NKV*HD), ldo for out
// and dout (>= NH*HD); packed tensors pass NH*HD and NKV*HD, slices of a packed
// (B, T, (NH+2*NKV)*HD) qkv pass its width. Backward is deterministic (no atomics); with
// accumulate it adds (+=, rounded once) into dq, dk, dv, else it writes every element of
// them once (fresh buffers need no zero-fill; keys no query sees get 0). nullptr gradients
// are skipped.
void attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                       int64_t B, int64_t T, int64_t Tk, int64_t NH, int64_t NKV, int64_t HD,
                       int64_t q_offset, float scale, int64_t ldq, int64_t ldk, int64_t ldv,
                       int64_t ldo);
void attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q,
                        const bf16* k, const bf16* v, const bf16* out, const float* lse,
                        int64_t B, int64_t T, int64_t Tk, int64_t NH, int64_t NKV, int64_t HD,
                        int64_t q_offset, float scale, int64_t ldq, int64_t ldk, int64_t ldv,
                        int64_t ldo, bool accumulate);

// ---- rotary position embedding (kernels/cuda/rope.cu) ---------------------------------
// cos, sin (T_max, HD/2) are device copies of the tables kernels::rope_table builds.
void rope_forward(float* out, const float* inp, const float* cos, const float* sin, int64_t B, int64_t T,
                  int64_t NH, int64_t HD, int64_t pos0, bool interleaved);
void rope_backward(float* dinp, const float* dout, const float* cos, const float* sin, int64_t B, int64_t T,
                   int64_t NH, int64_t HD, int64_t pos0, bool interleaved);

// ---- AdamW (kernels/cuda/adamw.cu) ----------------------------------------------------
// On a GPU the update is bit for bit the CPU kernel's: every operation is rounded as on the
// host, no FMA contraction (kernels/cuda/adamw.cuh).
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step);

// ---- multi-tensor AdamW and gradient clipping (kernels/cuda/multi_tensor_*.cu) ---------
// One launch for a whole list of tensors (kernels/cuda/multi_tensor.cuh): each block takes
// one fixed-size chunk of one tensor, found in a descriptor table in device memory.
//
// The table's device copy. upload() copies only when the bytes differ from the last upload
// (a reallocated gradient, another list), so an optimizer that keeps one DeviceTable skips
// the copy on most steps. Non-copyable; frees its block when destroyed.
class DeviceTable {
 public:
  DeviceTable() = default;
  ~DeviceTable();
  DeviceTable(const DeviceTable&) = delete;
  DeviceTable& operator=(const DeviceTable&) = delete;
  // Device copy of nbytes (> 0) host bytes, valid until the next upload or destruction.
  const void* upload(const void* host, size_t nbytes);
  int64_t uploads() const { return uploads_; }  // copies made so far (tests)

 private:
  std::vector<unsigned char> last_;  // host bytes of the last upload
  void* device_ = nullptr;
  size_t capacity_ = 0;
  int64_t uploads_ = 0;
};

// One parameter of a multi-tensor AdamW update.
struct AdamWTensor {
  float* param;        // (n)
  const float* grad;   // (n)
  float* m;            // (n)
  float* v;            // (n)
  bf16* shadow;        // (n) or nullptr: gets every new param rounded as cast_forward rounds
  int64_t n;
  float weight_decay;  // this tensor's (0: not decayed)
};
// adamw_update on every tensor in one launch, bit for bit the same, with the gradient taken
// as grad * grad_scale when grad_scale != 1 (rounded once, exactly as scale_forward on the
// gradient followed by adamw_update; the stored gradient is not modified).
void adamw_update_multi(DeviceTable& table, const std::vector<AdamWTensor>& tensors, float lr, float beta1,
                        float beta2, float eps, float grad_scale, int64_t step);

struct GradSpan {
  float* data;  // (n)
  int64_t n;
};
// The sum over every span of g² in double: one launch, a double partial per block over the
// fixed (tensor, chunk) partition, the partials added on the host in block order after one
// copy back (waits for the GPU). Same result every run; not the CPU's partition, so it
// differs from kernels' host sums only by double rounding (relative <= 2 (N - 1) 2^-53).
double sum_of_squares_multi(DeviceTable& table, const std::vector<GradSpan>& spans);
// g *= s on every span in one launch, each element rounded as scale_forward rounds.
void scale_multi(DeviceTable& table, const std::vector<GradSpan>& spans, float s);

// ---- bf16 overloads for mixed precision (kernels/cuda/{cast,gemm,elementwise,layernorm,
// rmsnorm,activations,rope,cross_entropy}.cu) ----------------------------------------------
// The fp32 kernels' names, argument order and contracts, with some buffers in bf16
// (sllm::bf16, tensor/dtype.h). Every kernel loads bf16 as float, computes in fp32 exactly
// as its fp32 twin, and rounds once (to nearest even) when it stores into a bf16 buffer;
// a bf16 gradient is accumulated (+=) in fp32 and rounded once. Statistics (mean, rstd,
// lse, losses) and every reduction stay fp32.

// out (n) = inp (n): fp32 -> bf16 bit for bit as sllm::f32_to_bf16 (NaN stays NaN);
// bf16 -> fp32 exact.
void cast_forward(bf16* out, const float* inp, int64_t n);
void cast_forward(float* out, const bf16* inp, int64_t n);
// out (rows, cols) = row (cols) rounded to bf16, on every row: the bias rows a bf16 linear's
// GEMM accumulates onto (beta = 1), written once instead of zero-filled and added.
void broadcast_rows(bf16* out, const float* row, int64_t rows, int64_t cols);

// As sgemm / sgemm_batched with bf16 A and B, fp32 accumulation (cuBLAS GemmEx,
// CUBLAS_COMPUTE_32F), C in fp32 or bf16 (alpha op(A) op(B) + beta C rounded once).
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const bf16* A,
          int64_t lda, const bf16* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const bf16* A,
          int64_t lda, const bf16* B, int64_t ldb, float beta, bf16* C, int64_t ldc);
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                  const bf16* A, int64_t lda, int64_t stride_a, const bf16* B, int64_t ldb, int64_t stride_b,
                  float beta, float* C, int64_t ldc, int64_t stride_c);
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                  const bf16* A, int64_t lda, int64_t stride_a, const bf16* B, int64_t ldb, int64_t stride_b,
                  float beta, bf16* C, int64_t ldc, int64_t stride_c);

// Elementwise, the combos mixed precision uses: fp32 residual + bf16 branch; bf16 with bf16;
// bf16 activation with an fp32 bias (b broadcast over rows of nb as in the fp32 kernel).
// Gradients have their tensor's dtype: dout that of out, da that of a, db that of b; db's
// broadcast sum runs in fp32 (fixed two-pass order) and is rounded once.
void binary_forward(BinaryOp op, float* out, const float* a, const bf16* b, int64_t n, int64_t nb);
void binary_forward(BinaryOp op, bf16* out, const bf16* a, const bf16* b, int64_t n, int64_t nb);
void binary_forward(BinaryOp op, bf16* out, const bf16* a, const float* b, int64_t n, int64_t nb);
void binary_backward(BinaryOp op, float* da, bf16* db, const float* dout, const float* a, const bf16* b,
                     int64_t n, int64_t nb);
void binary_backward(BinaryOp op, bf16* da, bf16* db, const bf16* dout, const bf16* a, const bf16* b,
                     int64_t n, int64_t nb);
void binary_backward(BinaryOp op, bf16* da, float* db, const bf16* dout, const bf16* a, const float* b,
                     int64_t n, int64_t nb);
void scale_forward(bf16* out, const bf16* a, float s, int64_t n);
// out (rows, fp32) = row sums of a bf16 (rows, cols), each row in double.
void sum_rows_forward(float* out, const bf16* a, int64_t rows, int64_t cols);

// Norms: fp32 input, parameters and statistics; bf16 output (the next matmul's input).
// Backward reads a bf16 dout and accumulates into fp32 dinp, dweight, dbias.
void layernorm_forward(bf16* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps);
void layernorm_backward(float* dinp, float* dweight, float* dbias, const bf16* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C);
void rmsnorm_forward(bf16* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C, float eps);
void rmsnorm_backward(float* dinp, float* dweight, const bf16* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C);

// Activations with every buffer in bf16.
void gelu_forward(bf16* out, const bf16* inp, int64_t n, bool tanh_approx);
// accumulate = false: the gradient buffers are fresh and are written, not read (no zero-fill).
void gelu_backward(bf16* dinp, const bf16* dout, const bf16* inp, int64_t n, bool tanh_approx, bool accumulate = true);
void silu_forward(bf16* out, const bf16* inp, int64_t n);
void silu_backward(bf16* dinp, const bf16* dout, const bf16* inp, int64_t n, bool accumulate = true);
void swiglu_forward(bf16* out, const bf16* gate, const bf16* up, int64_t n);
void swiglu_backward(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate, const bf16* up, int64_t n,
                     bool accumulate = true);

// RoPE on bf16 q / k (fp32 cos, sin tables); out may alias inp as in the fp32 kernel.
void rope_forward(bf16* out, const bf16* inp, const float* cos, const float* sin, int64_t B, int64_t T,
                  int64_t NH, int64_t HD, int64_t pos0, bool interleaved);
void rope_backward(bf16* dinp, const bf16* dout, const float* cos, const float* sin, int64_t B, int64_t T,
                   int64_t NH, int64_t HD, int64_t pos0, bool interleaved);

// Cross-entropy on bf16 logits: fp32 losses and lse; dlogits in bf16 (+=, rounded once).
void cross_entropy_forward(float* losses, float* lse, const bf16* logits, const int32_t* targets, int64_t N,
                           int64_t V, int32_t ignore_index);
void cross_entropy_backward(bf16* dlogits, const float* dlosses, const bf16* logits, const float* lse,
                            const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index);
// The padded LM head (ops::linear_cross_entropy), forward and backward in one kernel:
// logits (N, ld) bf16 with the first V columns real and ld a multiple of 8. Writes losses
// and lse as above over the V columns; with write_dlogits it then OVERWRITES the logits with
// dlogits = dl * (softmax - onehot) on the V columns, 0 on the padding and on ignored rows.
void cross_entropy_fused_padded(bf16* logits, float* losses, float* lse, const int32_t* targets, int64_t N, int64_t V,
                                int64_t ld, int32_t ignore_index, float dl, bool write_dlogits);

// ---- GEMM with a fused epilogue through cuBLASLt (kernels/cuda/gemm_lt.cu) -------------
// Row-major like gemm() above, alpha = 1, beta = 0 (C is written, not read):
//   gemm_bias:      C (M, N) bf16 = op(A) op(B) + bias (N) bf16, rounded once;
//   gemm_bias_grad: C (M, N) fp32 = op(A) op(B), and dbias (M) fp32 = the row sums of op(A)
//                   (written, not accumulated).
// Sizes must be positive. They return false, having written nothing, when cuBLASLt has no
// algorithm for the call: the caller then takes its plain GEMM path.
bool gemm_bias(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const bf16* A, int64_t lda, const bf16* B,
               int64_t ldb, const bf16* bias, bf16* C, int64_t ldc);
bool gemm_bias_grad(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const bf16* A, int64_t lda,
                    const bf16* B, int64_t ldb, float* C, int64_t ldc, float* dbias);

// ---- shape ops and dropout (kernels/cuda/shape.cu, kernels/cuda/dropout.cu) -------------
// The device twins of the copies in src/ops/shape_ops.cpp and of kernels::dropout_*, for
// fp32 and bf16 buffers. Forwards copy bits; backwards accumulate (+=) in fp32 and round
// once; no atomics (repeated ids add in id order: the CPU loop's bits).
// Transpose: inp has `shape` (host array, ndim >= 1 dims); out has dims dim0 and dim1
// (in [0, ndim)) swapped. The backward takes the same (input) shape: dinp += dout swapped back.
void transpose_forward(float* out, const float* inp, const int64_t* shape, int64_t ndim, int64_t dim0, int64_t dim1);
void transpose_forward(bf16* out, const bf16* inp, const int64_t* shape, int64_t ndim, int64_t dim0, int64_t dim1);
void transpose_backward(float* dinp, const float* dout, const int64_t* shape, int64_t ndim, int64_t dim0, int64_t dim1);
void transpose_backward(bf16* dinp, const bf16* dout, const int64_t* shape, int64_t ndim, int64_t dim0, int64_t dim1);
// out (M, inner) = inp (N, inner) [ids (M)]; ids validated in [0, N) by the caller.
void index_select_forward(float* out, const float* inp, const int32_t* ids, int64_t N, int64_t M, int64_t inner);
void index_select_forward(bf16* out, const bf16* inp, const int32_t* ids, int64_t N, int64_t M, int64_t inner);
void index_select_backward(float* dinp, const float* dout, const int32_t* ids, int64_t N, int64_t M, int64_t inner);
void index_select_backward(bf16* dinp, const bf16* dout, const int32_t* ids, int64_t N, int64_t M, int64_t inner);
// out (N) = inp (N, C) [i, ids[i]]; ids validated in [0, C) by the caller.
void gather_forward(float* out, const float* inp, const int32_t* ids, int64_t N, int64_t C);
void gather_forward(bf16* out, const bf16* inp, const int32_t* ids, int64_t N, int64_t C);
void gather_backward(float* dinp, const float* dout, const int32_t* ids, int64_t N, int64_t C);
void gather_backward(bf16* dinp, const bf16* dout, const int32_t* ids, int64_t N, int64_t C);
// kernels::dropout_forward / _backward's contract; the mask (n bytes, 1 = keep) is the CPU
// kernel's bit for bit for the same (seed, offset) (kernels/dropout_rng.h).
void dropout_forward(float* out, uint8_t* mask, const float* inp, int64_t n, float p, uint64_t seed, uint64_t offset);
void dropout_forward(bf16* out, uint8_t* mask, const bf16* inp, int64_t n, float p, uint64_t seed, uint64_t offset);
void dropout_backward(float* dinp, const float* dout, const uint8_t* mask, int64_t n, float p);
void dropout_backward(bf16* dinp, const bf16* dout, const uint8_t* mask, int64_t n, float p);

// ---- 4-bit and 8-bit dequantization (kernels/cuda/quantize.cu) ---------------------------
// kernels::dequantize_4bit / dequantize_8bit's contract (kernels/kernels.h), device pointers:
// out[i - begin] for i in [begin, end). The f32 results equal the CPU's bit for bit (one fp32
// product; for 8 bits a product then a separate add, no FMA); the bf16 overload rounds that
// same fp32 product once to bf16 (the mixed-precision GEMM's operand, QLoRA on CUDA).
void dequantize_4bit(float* out, const uint8_t* packed, const float* absmax, int64_t begin, int64_t end,
                     int64_t blocksize, const float* code);
void dequantize_4bit(bf16* out, const uint8_t* packed, const float* absmax, int64_t begin, int64_t end,
                     int64_t blocksize, const float* code);
void dequantize_8bit(float* out, const uint8_t* q, const float* absmax, int64_t begin, int64_t end,
                     int64_t blocksize, const float* code, float offset);

// ---- GPU-time profile (kernels/cuda/profile.cpp) ------------------------------------------
// Between profile_begin() and profile_end(), every kernel launch, cuBLAS GEMM, memset and
// copy issued on the stream is timed on the GPU with a pair of CUDA events. Off (the
// default), a launch pays one branch. `sllm bench train --profile` prints the report.
// Starts a profile: drops the previous one's calls and turns recording on.
void profile_begin();
// Turns recording off; the calls recorded so far stay for profile_report().
void profile_end();
bool profiling();
struct KernelTime {
  std::string name;  // the kernel as launched ("gelu_forward_kernel<T>"), "cublas gemm ...", "memset", ...
  int64_t calls;
  double ms;         // summed GPU time of the calls
};
// Waits for the GPU, then sums the recorded calls per name, largest ms first. Unchanged by
// repeated calls; the next profile_begin() clears it.
std::vector<KernelTime> profile_report();

}  // namespace sllm::kernels::cuda
