// Fused softmax + cross-entropy: the (N, V) probabilities are never stored; forward keeps
// the row log-sum-exp and backward recomputes softmax from the logits.
#include <algorithm>

#include "autograd/autograd.h"
#include "kernels/kernels.h"
#include "ops/linear_detail.h"
#include "ops/op_common.h"
#include "ops/ops.h"
#include "tensor/bf16_shadow.h"

namespace sllm::ops {

using detail::check_f32;
using detail::rows_of;

namespace {

struct CrossEntropyResult {
  Tensor losses;  // (...) per token, 0 where ignored
  Tensor lse;     // (N)
  Tensor targets; // (N) the validated targets, a private copy on the logits' device
  int64_t count;  // targets that are not ignore_index
};

// The number of targets that are not ignore_index; every other one must be in [0, V).
int64_t count_targets(const Tensor& targets, int64_t V, int32_t ignore_index) {
  const int32_t* t = targets.i32();
  int64_t count = 0;
  for (int64_t i = 0; i < targets.numel(); ++i) {
    if (t[i] == ignore_index) continue;
    SLLM_CHECK(t[i] >= 0 && t[i] < V, str("cross_entropy: target ", t[i], " at row ", i, " is outside [0, ", V, ")"),
               str("targets must be token ids below the vocabulary size, or ignore_index (", ignore_index, ")"));
    ++count;
  }
  return count;
}

CrossEntropyResult cross_entropy_rows(const Tensor& logits, const Tensor& targets, int32_t ignore_index) {
  const Device dev = logits.device();
  detail::check_float(logits, "cross_entropy logits", dev);
  detail::check_ids(targets, "cross_entropy targets");
  SLLM_CHECK(logits.ndim() >= 1, "cross_entropy: logits need a vocabulary dim", "pass logits (..., V)");
  Shape row_shape(logits.shape().begin(), logits.shape().end() - 1);
  check_shape(targets, row_shape, "cross_entropy targets (the logits' shape without V)");
  const int64_t N = rows_of(logits), V = logits.dim(-1);
  const int64_t count = count_targets(targets, V, ignore_index);
  CrossEntropyResult r{Tensor::empty(row_shape, DType::F32, dev), Tensor::empty({N}, DType::F32, dev),
                       detail::device_ids(targets, dev), count};
  if (detail::is_bf16(logits))  // bf16 logits (mixed precision): fp32 math and losses
    SLLM_KERNEL_BF16(cross_entropy_forward, r.losses.mutable_f32(), r.lse.mutable_f32(), detail::bf(logits),
                     r.targets.i32(), N, V, ignore_index);
  else
    SLLM_KERNEL(dev, cross_entropy_forward, r.losses.mutable_f32(), r.lse.mutable_f32(), logits.f32(), r.targets.i32(),
                N, V, ignore_index);
  return r;
}

// Records the backward: dlogits = dlosses ⊙ (softmax - onehot), rows scaled per token.
// The per-row loss gradients are assembled on the host (N floats) and uploaded on a GPU.
void record_cross_entropy(Tensor& out, const std::string& op, const Tensor& logits, const CrossEntropyResult& r,
                          int32_t ignore_index, bool mean_reduced) {
  autograd::SavedTensor sl(logits, op);
  const Tensor tgt = r.targets, lse = r.lse;
  const int64_t N = rows_of(logits), V = logits.dim(-1), count = r.count;
  autograd::record(out, op, {logits}, [sl, tgt, lse, ignore_index, mean_reduced, count, N, V](const Tensor& g) {
    const Tensor& L = sl.get();
    const Device dev = L.device();
    Tensor dlosses = Tensor::empty({N});
    float* dl = dlosses.mutable_f32();
    if (mean_reduced) {
      const float each = count > 0 ? g.item() / static_cast<float>(count) : 0.0f;
      for (int64_t i = 0; i < N; ++i) dl[i] = each;
    } else {
      const Tensor g_host = g.to(Device::CPU);
      const float* gp = g_host.f32();
      for (int64_t i = 0; i < N; ++i) dl[i] = gp[i];
    }
    const Tensor dlosses_dev = dlosses.to(dev);
    Tensor dlogits = Tensor::zeros(L.shape(), L.dtype(), dev);
    if (detail::is_bf16(L))
      SLLM_KERNEL_BF16(cross_entropy_backward, detail::mutable_bf(dlogits), dlosses_dev.f32(), detail::bf(L), lse.f32(),
                       tgt.i32(), N, V, ignore_index);
    else
      SLLM_KERNEL(dev, cross_entropy_backward, dlogits.mutable_f32(), dlosses_dev.f32(), L.f32(), lse.f32(), tgt.i32(),
                  N, V, ignore_index);
    return std::vector<Tensor>{dlogits};
  });
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int32_t ignore_index) {
  CrossEntropyResult r = cross_entropy_rows(logits, targets, ignore_index);
  // The total comes back to the host (on a GPU that waits for it); the (1) loss goes to the
  // logits' device, so both devices do the same float division.
  const float total = SLLM_KERNEL(logits.device(), sum_forward, r.losses.f32(), r.losses.numel());
  Tensor out = Tensor::full({1}, r.count > 0 ? total / static_cast<float>(r.count) : 0.0f).to(logits.device());
  if (autograd::needs_grad({logits})) record_cross_entropy(out, "cross_entropy", logits, r, ignore_index, true);
  return out;
}

// The LM head and its loss in one op. Everywhere but bf16 on CUDA it computes
// cross_entropy(linear(x, weight), targets): exactly that graph, or, for f32 on the CPU
// with a frozen weight, the chunked path above (the same loss; the same dx at g = 1). On the bf16 CUDA path (mixed precision) the
// vocabulary is padded inside the op to a multiple of kVocabPad columns, which the GEMMs
// need: with N = 50257 (GPT-2) the three LM-head GEMMs ran at ~95 TFLOP/s on an H200, and
// padding to 50304 took the step from 65.4 to 52.3 ms (../shared/measurements/h200-2026-12-04,
// sllm_gpt2_50304.json; llm.c pads GPT-2's vocab the same way). The padding is invisible:
//   - the weight's bf16 copy has Vp rows, the extra ones zero, so padded logits are 0;
//   - the loss reads only the first V columns of each row (softmax and lse over V);
//   - dlogits overwrite the logits, 0 in the padded columns, so dx sums nothing from them,
//     and dW is computed for the V real rows only (never trained);
//   - files, parameters and forward()'s logits keep the true V.
// The (N, Vp) logits buffer is reused for dlogits, written by the loss kernel in the same
// pass (llm.c's fused classifier): no zero-fill, no second buffer, no backward kernel.
constexpr int64_t kVocabPad = 128;

namespace {

// The LM head and its loss for f32 x on the CPU under a frozen head weight (LoRA and QLoRA
// train adapters below a frozen, usually tied, embedding). The loss is a mean, so its
// gradient is g times the gradient of the mean at g = 1: that part of backward, the
// softmax - onehot rows and their product with W, is computed here in forward, a chunk of
// rows at a time, as llm.c's fused classifier writes dlogits in the forward pass. The (N, V)
// logits never exist whole, only one chunk (lm_head_chunk_rows) that the loss overwrites
// with its dlogits; the node keeps the (N, C) dx of the mean: at gpt2-124m with 256 tokens
// 0.75 MiB and an 8 MiB chunk, instead of 2 x 49 MiB of logits and dlogits. No GEMM is
// added: backward's dx GEMM runs in forward. With g = 1 (a plain loss.backward()) dx is bit
// for bit that of cross_entropy(linear(x, W)); otherwise it is scaled once more at the end.
Tensor linear_cross_entropy_frozen_head(const Tensor& x, const Tensor& weight, const Tensor& targets,
                                        int32_t ignore_index) {
  const int64_t V = weight.dim(0), C = weight.dim(1), N = rows_of(x);
  SLLM_CHECK(x.dim(-1) == C, str("linear_cross_entropy: x has ", x.dim(-1), " channels, the weight ", C),
             "x (..., C) and weight (V, C) must agree on C");
  detail::check_ids(targets, "linear_cross_entropy targets");
  check_shape(targets, Shape(x.shape().begin(), x.shape().end() - 1), "linear_cross_entropy targets (x's shape without C)");
  const int64_t count = count_targets(targets, V, ignore_index);
  const int64_t chunk_rows = detail::lm_head_chunk_rows(V);
  Tensor chunk = Tensor::empty({std::min(N, chunk_rows), V});  // logits, then dlogits, of a chunk
  Tensor losses = Tensor::empty({N}), lse = Tensor::empty({N}), dlosses = Tensor::empty({N});
  Tensor dx_of_mean = Tensor::empty(x.shape());  // (N, C)
  const float each = count > 0 ? 1.0f / static_cast<float>(count) : 0.0f;  // d mean / d loss_i
  float* dl = dlosses.mutable_f32();
  for (int64_t i = 0; i < N; ++i) dl[i] = each;
  const int32_t* tgt = targets.i32();
  float* logits = chunk.mutable_f32();
  for (int64_t i0 = 0; i0 < N; i0 += chunk_rows) {
    const int64_t rows = std::min(chunk_rows, N - i0);
    kernels::sgemm(false, true, rows, V, C, 1.0f, x.f32() + i0 * C, C, weight.f32(), C, 0.0f, logits, V);
    kernels::cross_entropy_forward(losses.mutable_f32() + i0, lse.mutable_f32() + i0, logits, tgt + i0, rows, V,
                                   ignore_index);
    kernels::cross_entropy_backward_inplace(logits, dl + i0, lse.f32() + i0, tgt + i0, rows, V, ignore_index);
    kernels::sgemm(false, false, rows, C, V, 1.0f, logits, V, weight.f32(), C, 0.0f, dx_of_mean.mutable_f32() + i0 * C,
                   C);
  }
  const float total = kernels::sum_forward(losses.f32(), N);
  Tensor out = Tensor::full({1}, count > 0 ? total / static_cast<float>(count) : 0.0f);
  autograd::record(out, "linear_cross_entropy", {x}, [dx_of_mean](const Tensor& g) {
    const float scale = g.item();
    if (scale == 1.0f) return std::vector<Tensor>{dx_of_mean};
    Tensor dx = Tensor::empty(dx_of_mean.shape());
    kernels::scale_forward(dx.mutable_f32(), dx_of_mean.f32(), scale, dx.numel());
    return std::vector<Tensor>{dx};
  });
  return out;
}

}  // namespace

namespace detail {
// About 8 MiB of f32 logits per chunk (at least 16 rows): GPT-2's 50257 columns give 41
// rows. Smaller chunks would repack W for more GEMMs; larger ones hold more memory.
int64_t lm_head_chunk_rows(int64_t V) { return std::max<int64_t>(16, (int64_t(1) << 21) / std::max<int64_t>(V, 1)); }
}  // namespace detail

Tensor linear_cross_entropy(const Tensor& x, const Tensor& weight, const Tensor& targets, int32_t ignore_index) {
  if (x.defined() && x.device() == Device::CPU && x.dtype() == DType::F32 && weight.defined() &&
      weight.device() == Device::CPU && weight.dtype() == DType::F32 && weight.ndim() == 2 && !weight.requires_grad() &&
      autograd::needs_grad({x}))
    return linear_cross_entropy_frozen_head(x, weight, targets, ignore_index);
  if (!(detail::is_bf16(x) && x.device() == Device::CUDA)) return cross_entropy(linear(x, weight), targets, ignore_index);
#if SLLM_HAVE_CUDA
  namespace cu = kernels::cuda;
  const Device dev = x.device();
  detail::check_bf16(x, "linear_cross_entropy x", dev);
  detail::check_f32(weight, "linear_cross_entropy weight (V, C)", dev);
  check_ndim(weight, 2, "linear_cross_entropy weight (V, C)");
  const int64_t V = weight.dim(0), C = weight.dim(1), N = rows_of(x);
  SLLM_CHECK(x.dim(-1) == C, str("linear_cross_entropy: x has ", x.dim(-1), " channels, the weight ", C),
             "x (..., C) and weight (V, C) must agree on C");
  check_shape(targets, Shape(x.shape().begin(), x.shape().end() - 1), "linear_cross_entropy targets (x's shape without C)");
  const int64_t count = count_targets(targets, V, ignore_index);
  const int64_t Vp = (V + kVocabPad - 1) / kVocabPad * kVocabPad;
  // The weight in bf16 with Vp - V zero rows: its cached shadow, kept current by the CUDA
  // AdamW (tensor/bf16_shadow.h); the dx GEMM reads the same copy.
  const Tensor w16 = bf16_shadow(weight, Vp);  // (Vp, C)
  Tensor logits = Tensor::empty({N, Vp}, DType::BF16, dev);  // (N, Vp), later dlogits
  cu::gemm(false, true, N, Vp, C, 1.0f, detail::bf(x), C, detail::bf(w16), C, 0.0f, logits.mutable_data<bf16>(), Vp);

  const Tensor tgt = detail::device_ids(targets, dev);
  Tensor losses = Tensor::empty({N}, DType::F32, dev), lse = Tensor::empty({N}, DType::F32, dev);
  // With gradients wanted, the loss kernel also writes dlogits for an upstream gradient of 1
  // (each counted row's loss weighs 1 / count in the mean) over the logits while each row is
  // still in cache; backward scales the two GEMMs that read them by the actual upstream
  // gradient (alpha), so no kernel reads the (N, Vp) buffer a third time.
  const bool grad = autograd::needs_grad({x, weight});
  const float dl = count > 0 ? 1.0f / static_cast<float>(count) : 0.0f;
  cu::cross_entropy_fused_padded(logits.mutable_data<bf16>(), losses.mutable_f32(), lse.mutable_f32(), tgt.i32(), N, V,
                                 Vp, ignore_index, dl, grad);
  const float total = cu::sum_forward(losses.f32(), N);
  Tensor out = Tensor::full({1}, count > 0 ? total / static_cast<float>(count) : 0.0f).to(dev);
  if (grad) {
    autograd::SavedTensor sx(x, "linear_cross_entropy");
    autograd::record(out, "linear_cross_entropy", {x, weight},
                     [sx, weight, w16, dlogits = logits, N, C, V, Vp](const Tensor& g) {
                       const Tensor& X = sx.get();
                       const float alpha = g.item();  // d(total loss)/d(mean loss)
                       Tensor dx = detail::grad_buffer_for(X), dw = detail::grad_buffer_for(weight);
                       if (dx.defined())  // dx (N, C) = alpha dlogits (N, Vp) · W16 (Vp, C); padded columns are 0
                         cu::gemm(false, false, N, C, Vp, alpha, detail::bf(dlogits), Vp, detail::bf(w16), C, 0.0f,
                                  detail::mutable_bf(dx), C);
                       if (dw.defined())  // dW (V, C) = alpha dlogits[:, :V]ᵀ · X in fp32: the real rows only
                         cu::gemm(true, false, V, C, N, alpha, detail::bf(dlogits), Vp, detail::bf(X), C, 0.0f,
                                  dw.mutable_f32(), C);
                       return std::vector<Tensor>{dx, dw};
                     });
  }
  return out;
#else
  fail("bf16 compute needs the CUDA backend", "keep activations in f32 (--precision fp32)");
#endif
}

Tensor cross_entropy_per_token(const Tensor& logits, const Tensor& targets, int32_t ignore_index) {
  CrossEntropyResult r = cross_entropy_rows(logits, targets, ignore_index);
  if (autograd::needs_grad({logits}))
    record_cross_entropy(r.losses, "cross_entropy_per_token", logits, r, ignore_index, false);
  return r.losses;
}

}  // namespace sllm::ops
