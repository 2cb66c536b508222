// Fused softmax + cross-entropy: the (N, V) probabilities are never stored; forward keeps
// the row log-sum-exp and backward recomputes softmax from the logits.
#include "kernels/kernels.h"
#include "ops/op_common.h"
#include "ops/ops.h"

namespace sllm::ops {

using detail::check_f32_cpu;
using detail::rows_of;

namespace {

struct CrossEntropyResult {
  Tensor losses;  // (...) per token, 0 where ignored
  Tensor lse;     // (N)
  int64_t count;  // targets that are not ignore_index
};

CrossEntropyResult cross_entropy_rows(const Tensor& logits, const Tensor& targets, int32_t ignore_index) {
  check_f32_cpu(logits, "cross_entropy logits");
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
  CrossEntropyResult r{Tensor::empty(row_shape), Tensor::empty({N}), count};
  kernels::cross_entropy_forward(r.losses.mutable_f32(), r.lse.mutable_f32(), logits.f32(), t, N, V, ignore_index);
  return r;
}

// Records the backward: dlogits = dlosses ⊙ (softmax - onehot), rows scaled per token.
void record_cross_entropy(Tensor& out, const std::string& op, const Tensor& logits, const Tensor& targets,
                          const Tensor& lse, int32_t ignore_index, bool mean_reduced, int64_t count) {
  autograd::SavedTensor sl(logits, op);
  Tensor tgt = targets.clone();
  const int64_t N = rows_of(logits), V = logits.dim(-1);
  autograd::record(out, op, {logits}, [sl, tgt, lse, ignore_index, mean_reduced, count, N, V](const Tensor& g) {
    const Tensor& L = sl.get();
    Tensor dlosses = Tensor::empty({N});
    float* dl = dlosses.mutable_f32();
    if (mean_reduced) {
      const float each = count > 0 ? g.item() / static_cast<float>(count) : 0.0f;
      for (int64_t i = 0; i < N; ++i) dl[i] = each;
    } else {
      const float* gp = g.f32();
      for (int64_t i = 0; i < N; ++i) dl[i] = gp[i];
    }
    Tensor dlogits = Tensor::zeros(L.shape());
    kernels::cross_entropy_backward(dlogits.mutable_f32(), dl, L.f32(), lse.f32(), tgt.i32(), N, V, ignore_index);
    return std::vector<Tensor>{dlogits};
  });
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int32_t ignore_index) {
  CrossEntropyResult r = cross_entropy_rows(logits, targets, ignore_index);
  const float total = kernels::sum_forward(r.losses.f32(), r.losses.numel());
  Tensor out = Tensor::full({1}, r.count > 0 ? total / static_cast<float>(r.count) : 0.0f);
  if (autograd::needs_grad({logits}))
    record_cross_entropy(out, "cross_entropy", logits, targets, r.lse, ignore_index, true, r.count);
  return out;
}

Tensor cross_entropy_per_token(const Tensor& logits, const Tensor& targets, int32_t ignore_index) {
  CrossEntropyResult r = cross_entropy_rows(logits, targets, ignore_index);
  if (autograd::needs_grad({logits}))
    record_cross_entropy(r.losses, "cross_entropy_per_token", logits, targets, r.lse, ignore_index, false, r.count);
  return r.losses;
}

}  // namespace sllm::ops
