// Fused softmax + cross-entropy: the (N, V) probabilities are never stored; forward keeps
// the row log-sum-exp and backward recomputes softmax from the logits.
#include "kernels/kernels.h"
#include "ops/op_common.h"
#include "ops/ops.h"

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

CrossEntropyResult cross_entropy_rows(const Tensor& logits, const Tensor& targets, int32_t ignore_index) {
  const Device dev = logits.device();
  detail::check_float(logits, "cross_entropy logits", dev);
  detail::check_ids(targets, "cross_entropy targets");
  SLLM_CHECK(logits.ndim() >= 1, "cross_entropy: logits need a vocabulary dim", "pass logits (..., V)");
  Shape row_shape(logits.shape().begin(), logits.shape().end() - 1);
  check_shape(targets, row_shape, "cross_entropy targets (the logits' shape without V)");
  const int64_t N = rows_of(logits), V = logits.dim(-1);
  const int32_t* t = targets.i32();
  int64_t count = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (t[i] == ignore_index) continue;
    SLLM_CHECK(t[i] >= 0 && t[i] < V, str("cross_entropy: target ", t[i], " at row ", i, " is outside [0, ", V, ")"),
               str("targets must be token ids below the vocabulary size, or ignore_index (", ignore_index, ")"));
    ++count;
  }
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

Tensor cross_entropy_per_token(const Tensor& logits, const Tensor& targets, int32_t ignore_index) {
  CrossEntropyResult r = cross_entropy_rows(logits, targets, ignore_index);
  if (autograd::needs_grad({logits}))
    record_cross_entropy(r.losses, "cross_entropy_per_token", logits, r, ignore_index, false);
  return r.losses;
}

}  // namespace sllm::ops
