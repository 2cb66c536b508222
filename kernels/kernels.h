// Every CPU kernel of sllm, as plain C++ declarations (no CUDA types leak out; the CUDA
// backend mirrors these names in kernels/cuda/). Kernels know nothing above `tensor`:
// they take raw row-major float32 buffers and sizes.
//
// Dimension legend: B batch, T time, C channels, NH query heads, NKV key/value heads,
// HD head dim, V vocab, N rows (= B*T unless said), H hidden (MLP), R LoRA rank.
//
// Conventions shared by every kernel:
//  - Backward kernels ACCUMULATE (+=) into every gradient buffer they are given
//    (activation and parameter gradients alike); the caller zeroes them first.
//    A nullptr gradient buffer means "not needed": its computation is skipped entirely
//    (this is how a frozen weight costs nothing in backward).
//  - Every fast kernel has a naive `_ref` twin with the same signature: the tests compare
//    against it. References are single-threaded, obvious loops in double where it helps.
//  - Reductions use a fixed partition of the work, so results are bitwise reproducible for
//    a given thread count (OpenMP, schedule(static)).
//  - Sizes and index math are int64_t.
#pragma once
#include <cstddef>
#include <cstdint>

namespace sllm::kernels {

// ---- GEMM (kernels/cpu/gemm.cpp) -------------------------------------------------------
// C = alpha * op(A) * op(B) + beta * C, row-major, op(X) = X or Xᵀ.
// op(A) is (M, K), op(B) is (K, N), C is (M, N). lda/ldb/ldc are row strides (elements)
// of the stored matrices: A is (M, K) with lda>=K when !trans_a, (K, M) with lda>=M when
// trans_a; likewise B. beta == 0 means C is write-only (NaNs in C are not propagated).
// Blocked, packed, AVX-512 / AVX2 / scalar, OpenMP over the current thread count.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc);
void sgemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
               int64_t ldc);
// Strided batch: for b in [0, batch): sgemm on A + b*stride_a, B + b*stride_b, C + b*stride_c.
void sgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                   float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                   int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                   int64_t stride_c);
// Row invariance: while a RowInvariantGemm is alive on a thread, every sgemm call made from
// that thread takes the blocked (packed) path, whose rows of C are each reduced over the same
// KC slices in the same order whatever M is: row i of C is then bit-for-bit the same whether
// it is computed alone (M = 1) or among other rows. The skinny path (M <= 4 on AVX-512) sums
// in another order and would make one row's result depend on how many rows came with it.
// Batched generation (src/infer/batch_generate.h) holds one, so a row generated in a batch
// equals that row generated alone.
class RowInvariantGemm {
 public:
  RowInvariantGemm();
  ~RowInvariantGemm();
  RowInvariantGemm(const RowInvariantGemm&) = delete;
  RowInvariantGemm& operator=(const RowInvariantGemm&) = delete;
  static bool active();  // whether one is alive on this thread
};
// Name of the SIMD path sgemm uses on this CPU: "avx512", "avx2" or "scalar".
const char* sgemm_isa();
// The pack buffers sgemm(M, N, K) needs on this CPU with `threads` threads: the largest of
// any one thread, op(A)'s and op(B)'s (floats). Each thread keeps its buffers at the largest
// size it has needed, so `sllm memory` adds threads x (the step's largest a + largest b).
struct GemmPackFloats {
  int64_t a = 0, b = 0;
};
GemmPackFloats sgemm_pack_floats(int64_t M, int64_t N, int64_t K, int threads);

// ---- elementwise (kernels/cpu/elementwise.cpp) ----------------------------------------
// Binary ops with trailing-dimension broadcasting: a has n elements, b has nb elements and
// n % nb == 0; b is repeated: out[i] = a[i] (op) b[i % nb].
enum class BinaryOp { Add, Sub, Mul, Div };
void binary_forward(BinaryOp op, float* out, const float* a, const float* b, int64_t n, int64_t nb);
// da (n) and db (nb) accumulate; either may be nullptr. db sums over the broadcast rows.
void binary_backward(BinaryOp op, float* da, float* db, const float* dout, const float* a,
                     const float* b, int64_t n, int64_t nb);
void binary_forward_ref(BinaryOp op, float* out, const float* a, const float* b, int64_t n, int64_t nb);
void binary_backward_ref(BinaryOp op, float* da, float* db, const float* dout, const float* a,
                         const float* b, int64_t n, int64_t nb);
// out[i] = a[i] * s  (backward: da += dout * s)
void scale_forward(float* out, const float* a, float s, int64_t n);
// out = sum of a's n elements, in double with a fixed partition.
float sum_forward(const float* a, int64_t n);
// out (rows) = sum over the last dim of a (rows, cols).
void sum_rows_forward(float* out, const float* a, int64_t rows, int64_t cols);

// ---- embedding (kernels/cpu/embedding.cpp) --------------------------------------------
// out (N, C) = table (V, C) [ids (N)]. ids are validated in [0, V) by the caller.
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int64_t V, int64_t C);
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t N, int64_t V, int64_t C);
void embedding_forward_ref(float* out, const int32_t* ids, const float* table, int64_t N, int64_t V, int64_t C);
void embedding_backward_ref(float* dtable, const float* dout, const int32_t* ids, int64_t N, int64_t V, int64_t C);

// ---- layernorm (kernels/cpu/layernorm.cpp) --------------------------------------------
// out (N, C) = (inp - mean) * rstd * weight + bias; mean, rstd (N) saved for backward.
// bias may be nullptr (no bias); dweight/dbias may be nullptr (frozen).
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps);
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C);
void layernorm_forward_ref(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                           const float* bias, int64_t N, int64_t C, float eps);
void layernorm_backward_ref(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                            const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C);

// ---- rmsnorm (kernels/cpu/rmsnorm.cpp) ------------------------------------------------
// out (N, C) = inp * rstd * weight, rstd = 1/sqrt(mean(inp^2) + eps) (Llama, HF LlamaRMSNorm).
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C, float eps);
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C);
void rmsnorm_forward_ref(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C, float eps);
void rmsnorm_backward_ref(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                          const float* rstd, int64_t N, int64_t C);

// ---- activations (kernels/cpu/activations.cpp) ----------------------------------------
// GELU: tanh approximation (GPT-2, "gelu_new") when tanh_approx, else exact erf form.
void gelu_forward(float* out, const float* inp, int64_t n, bool tanh_approx);
void gelu_backward(float* dinp, const float* dout, const float* inp, int64_t n, bool tanh_approx);
void gelu_forward_ref(float* out, const float* inp, int64_t n, bool tanh_approx);
void gelu_backward_ref(float* dinp, const float* dout, const float* inp, int64_t n, bool tanh_approx);
// SiLU: x * sigmoid(x).
void silu_forward(float* out, const float* inp, int64_t n);
void silu_backward(float* dinp, const float* dout, const float* inp, int64_t n);
void silu_forward_ref(float* out, const float* inp, int64_t n);
void silu_backward_ref(float* dinp, const float* dout, const float* inp, int64_t n);
// SwiGLU: out = silu(gate) * up, all (n) elements (Llama MLP).
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);
void swiglu_forward_ref(float* out, const float* gate, const float* up, int64_t n);
void swiglu_backward_ref(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);

// ---- softmax (kernels/cpu/softmax.cpp) ------------------------------------------------
// Over the last dim of (N, C); numerically stable (max subtracted).
void softmax_forward(float* out, const float* inp, int64_t N, int64_t C);
void softmax_backward(float* dinp, const float* dout, const float* out, int64_t N, int64_t C);
void log_softmax_forward(float* out, const float* inp, int64_t N, int64_t C);
void log_softmax_backward(float* dinp, const float* dout, const float* out, int64_t N, int64_t C);
void softmax_forward_ref(float* out, const float* inp, int64_t N, int64_t C);
void softmax_backward_ref(float* dinp, const float* dout, const float* out, int64_t N, int64_t C);
void log_softmax_forward_ref(float* out, const float* inp, int64_t N, int64_t C);
void log_softmax_backward_ref(float* dinp, const float* dout, const float* out, int64_t N, int64_t C);

// ---- fused softmax + cross-entropy (kernels/cpu/cross_entropy.cpp) ---------------------
// losses (N) = logsumexp(logits[i]) - logits[i][targets[i]], and 0 where
// targets[i] == ignore_index; lse (N) saved for backward. Targets are validated by the caller.
void cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets,
                           int64_t N, int64_t V, int32_t ignore_index);
// dlogits (N, V) += dlosses[i] * (softmax(logits[i]) - onehot(targets[i])); ignored rows get 0.
void cross_entropy_backward(float* dlogits, const float* dlosses, const float* logits, const float* lse,
                            const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index);
// The same gradient written over the logits themselves, (N, V) logits -> dlogits, with
// ignored rows set to 0: bit for bit cross_entropy_backward into a zeroed buffer, without
// that buffer (the frozen-head loss in ops/loss.cpp keeps one chunk of rows, not two).
void cross_entropy_backward_inplace(float* logits, const float* dlosses, const float* lse, const int32_t* targets,
                                    int64_t N, int64_t V, int32_t ignore_index);
void cross_entropy_forward_ref(float* losses, float* lse, const float* logits, const int32_t* targets,
                               int64_t N, int64_t V, int32_t ignore_index);
void cross_entropy_backward_ref(float* dlogits, const float* dlosses, const float* logits, const float* lse,
                                const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index);

// ---- causal self-attention with grouped-query heads (kernels/cpu/attention.cpp) --------
// q (B, T, NH, HD), k and v (B, T, NKV, HD) — the layout a Linear's output has, so no
// transposes are needed; NH % NKV == 0 and query head h reads kv head h / (NH / NKV).
// out (B, T, NH, HD) = softmax(scale * q kᵀ + causal mask) v. The fused kernel keeps only
// lse (B, NH, T) (the row log-sum-exp) for backward and recomputes the probabilities there
// (FlashAttention, Dao et al. 2022, Alg. 1-2). q_offset: position of query row 0 within the
// key sequence, for a KV cache: query t sees keys [0, q_offset + t]; Tk keys in k and v.
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       int64_t B, int64_t T, int64_t Tk, int64_t NH, int64_t NKV, int64_t HD,
                       int64_t q_offset, float scale);
// dq, dk, dv accumulate (any may be nullptr). Needs the forward's out and lse.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        int64_t B, int64_t T, int64_t Tk, int64_t NH, int64_t NKV, int64_t HD,
                        int64_t q_offset, float scale);
// Naive references: materialize the (T, Tk) probability matrix per (b, h).
void attention_forward_ref(float* out, float* lse, const float* q, const float* k, const float* v,
                           int64_t B, int64_t T, int64_t Tk, int64_t NH, int64_t NKV, int64_t HD,
                           int64_t q_offset, float scale);
void attention_backward_ref(float* dq, float* dk, float* dv, const float* dout, const float* q,
                            const float* k, const float* v, const float* out, const float* lse,
                            int64_t B, int64_t T, int64_t Tk, int64_t NH, int64_t NKV, int64_t HD,
                            int64_t q_offset, float scale);

// ---- rotary position embedding (kernels/cpu/rope.cpp) ---------------------------------
// Tables cos, sin (T_max, HD/2): angle(p, i) = p * theta^(-2i/HD) (Su et al. 2021, eq. 34).
void rope_table(float* cos, float* sin, int64_t T_max, int64_t HD, float theta);
// x (B, T, NH, HD) rotated at positions pos0 + t. Pair layout:
//  interleaved=false: HF half-split, pairs (i, i + HD/2)  (Llama in transformers)
//  interleaved=true:  adjacent pairs (2i, 2i+1)           (original Meta / GPT-J layout)
void rope_forward(float* out, const float* inp, const float* cos, const float* sin, int64_t B, int64_t T,
                  int64_t NH, int64_t HD, int64_t pos0, bool interleaved);
// dinp += rotation by -angle of dout.
void rope_backward(float* dinp, const float* dout, const float* cos, const float* sin, int64_t B, int64_t T,
                   int64_t NH, int64_t HD, int64_t pos0, bool interleaved);
void rope_forward_ref(float* out, const float* inp, const float* cos, const float* sin, int64_t B, int64_t T,
                      int64_t NH, int64_t HD, int64_t pos0, bool interleaved);
void rope_backward_ref(float* dinp, const float* dout, const float* cos, const float* sin, int64_t B,
                       int64_t T, int64_t NH, int64_t HD, int64_t pos0, bool interleaved);

// ---- dropout (kernels/cpu/dropout.cpp) ------------------------------------------------
// Inverted dropout: keep with probability 1-p and scale by 1/(1-p). The keep mask (n bytes)
// is a pure function of (seed, offset + i) (counter-based RNG), so it is reproducible and
// independent of the thread count.
void dropout_forward(float* out, uint8_t* mask, const float* inp, int64_t n, float p, uint64_t seed, uint64_t offset);
void dropout_backward(float* dinp, const float* dout, const uint8_t* mask, int64_t n, float p);

// ---- blockwise 4-bit and 8-bit quantization (kernels/cpu/quantize.cpp) ----------------
// QLoRA's storage (Dettmers et al. 2023) in bitsandbytes' layout. x (n) is cut into blocks
// of `blocksize` consecutive elements (the last one may be short); each block keeps
// absmax = max |x| and each element the index of the code value nearest x / absmax.
//  - `code` is the lookup table of the data type: 16 values for 4 bits (NF4 sorted
//    ascending; FP4 in bitsandbytes' bit order, not sorted), 256 sorted values for 8 bits.
//  - Rounding, as bitsandbytes' default backend: s = clamp(x * (1 / max(absmax, 1e-38)), -1, 1)
//    in fp32, then the code whose sorted position is the number of midpoints strictly below s
//    (torch.bucketize over (c[i] + c[i+1]) / 2 in fp32): the nearest code, a tie goes to the
//    lower one. An all-zero block gets absmax 0 and the code of 0, so it dequantizes to 0.
//  - 4-bit codes are packed two per byte, the first element in the high nibble; packed has
//    (n + 1) / 2 bytes (an odd n pads the last low nibble with the code of 0.0's bucket).
// blocksize is a power of two >= 2 (callers check the user-facing range).
void quantize_4bit(uint8_t* packed, float* absmax, const float* x, int64_t n, int64_t blocksize, const float* code);
void quantize_4bit_ref(uint8_t* packed, float* absmax, const float* x, int64_t n, int64_t blocksize,
                       const float* code);
// A tile of the dequantized tensor: out[i - begin] = code[q(i)] * absmax[i / blocksize] for
// i in [begin, end), one fp32 product per element (bitsandbytes' order of operations).
// AVX-512 / AVX2 table lookups in registers; OpenMP over the tile when it is large.
void dequantize_4bit(float* out, const uint8_t* packed, const float* absmax, int64_t begin, int64_t end,
                     int64_t blocksize, const float* code);
void dequantize_4bit_ref(float* out, const uint8_t* packed, const float* absmax, int64_t begin, int64_t end,
                         int64_t blocksize, const float* code);
// 8 bits, one byte per element (double quantization of the 4-bit absmax values).
void quantize_8bit(uint8_t* q, float* absmax, const float* x, int64_t n, int64_t blocksize, const float* code);
void quantize_8bit_ref(uint8_t* q, float* absmax, const float* x, int64_t n, int64_t blocksize, const float* code);
// out[i - begin] = code[q[i]] * absmax[i / blocksize] + offset, two fp32 roundings (no FMA:
// bitsandbytes dequantizes, then adds the offset as a separate tensor op).
void dequantize_8bit(float* out, const uint8_t* q, const float* absmax, int64_t begin, int64_t end,
                     int64_t blocksize, const float* code, float offset);

// ---- AdamW (kernels/cpu/adamw.cpp) ----------------------------------------------------
// One decoupled-weight-decay Adam step (Loshchilov & Hutter 2019, Alg. 2) on n params, in
// torch.optim.AdamW's order: param *= 1 - lr * wd (decay first), then m, v update and
// param -= lr * mhat / (sqrt(vhat) + eps), mhat = m / (1 - beta1^step), vhat = v / (1 - beta2^step);
// step is 1-based.
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t step);
void adamw_update_ref(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1,
                      float beta2, float eps, float weight_decay, int64_t step);

}  // namespace sllm::kernels
