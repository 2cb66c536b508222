// embedding, layernorm and rmsnorm.
#include "kernels/kernels.h"
#include "ops/op_common.h"
#include "ops/ops.h"

namespace sllm::ops {

using detail::check_f32_cpu;
using detail::grad_for;
using detail::ptr;
using detail::rows_of;

Tensor embedding(const Tensor& ids, const Tensor& table) {
  detail::check_ids(ids, "embedding ids");
  check_f32_cpu(table, "embedding table");
  check_ndim(table, 2, "embedding table (V, C)");
  const int64_t N = ids.numel(), V = table.dim(0), C = table.dim(1);
  const int32_t* id = ids.i32();
  for (int64_t i = 0; i < N; ++i)
    SLLM_CHECK(id[i] >= 0 && id[i] < V, str("embedding: token id ", id[i], " at position ", i, " is outside the vocabulary [0, ", V, ")"),
               "the ids must come from a tokenizer whose vocabulary fits the model's vocab_size");
  Shape out_shape = ids.shape();
  out_shape.push_back(C);
  Tensor out = Tensor::empty(out_shape);
  kernels::embedding_forward(out.mutable_f32(), id, table.f32(), N, V, C);
  if (autograd::needs_grad({table})) {
    Tensor ids_copy = ids.clone();  // ids are small; a copy cannot be changed under us
    autograd::record(out, "embedding", {table}, [ids_copy, N, V, C](const Tensor& g) {
      Tensor dtable = Tensor::zeros({V, C});
      kernels::embedding_backward(dtable.mutable_f32(), g.f32(), ids_copy.i32(), N, V, C);
      return std::vector<Tensor>{dtable};
    });
  }
  return out;
}

static void check_norm_params(const Tensor& x, const Tensor& weight, const Tensor& bias, const char* op) {
  check_f32_cpu(x, str(op, " input"));
  check_f32_cpu(weight, str(op, " weight"));
  SLLM_CHECK(x.ndim() >= 1, str(op, ": input must have at least one dim"), "pass (..., C)");
  check_shape(weight, {x.dim(-1)}, str(op, " weight"));
  if (bias.defined()) {
    check_f32_cpu(bias, str(op, " bias"));
    check_shape(bias, {x.dim(-1)}, str(op, " bias"));
  }
}

Tensor layernorm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  check_norm_params(x, weight, bias, "layernorm");
  const int64_t N = rows_of(x), C = x.dim(-1);
  Tensor out = Tensor::empty(x.shape()), mean = Tensor::empty({N}), rstd = Tensor::empty({N});
  kernels::layernorm_forward(out.mutable_f32(), mean.mutable_f32(), rstd.mutable_f32(), x.f32(), weight.f32(),
                             bias.defined() ? bias.f32() : nullptr, N, C, eps);
  if (autograd::needs_grad({x, weight, bias})) {
    autograd::SavedTensor sx(x, "layernorm"), sw(weight, "layernorm");
    Tensor b = bias;
    autograd::record(out, "layernorm", {x, weight, bias}, [sx, sw, b, mean, rstd, N, C](const Tensor& g) {
      const Tensor& X = sx.get();
      const Tensor& W = sw.get();
      Tensor dx = grad_for(X), dw = grad_for(W), db = grad_for(b);
      kernels::layernorm_backward(ptr(dx), ptr(dw), ptr(db), g.f32(), X.f32(), W.f32(), mean.f32(), rstd.f32(), N, C);
      return std::vector<Tensor>{dx, dw, db};
    });
  }
  return out;
}

Tensor rmsnorm(const Tensor& x, const Tensor& weight, float eps) {
  check_norm_params(x, weight, Tensor(), "rmsnorm");
  const int64_t N = rows_of(x), C = x.dim(-1);
  Tensor out = Tensor::empty(x.shape()), rstd = Tensor::empty({N});
  kernels::rmsnorm_forward(out.mutable_f32(), rstd.mutable_f32(), x.f32(), weight.f32(), N, C, eps);
  if (autograd::needs_grad({x, weight})) {
    autograd::SavedTensor sx(x, "rmsnorm"), sw(weight, "rmsnorm");
    autograd::record(out, "rmsnorm", {x, weight}, [sx, sw, rstd, N, C](const Tensor& g) {
      const Tensor& X = sx.get();
      const Tensor& W = sw.get();
      Tensor dx = grad_for(X), dw = grad_for(W);
      kernels::rmsnorm_backward(ptr(dx), ptr(dw), g.f32(), X.f32(), W.f32(), rstd.f32(), N, C);
      return std::vector<Tensor>{dx, dw};
    });
  }
  return out;
}

}  // namespace sllm::ops
