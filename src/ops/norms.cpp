// embedding, layernorm and rmsnorm.
#include <algorithm>
#include <vector>

#include "kernels/kernels.h"
#include "ops/op_common.h"
#include "ops/ops.h"

namespace sllm::ops {

using detail::check_f32;
using detail::grad_for;
using detail::ptr;
using detail::rows_of;
using detail::bf;
using detail::is_bf16;
using detail::mutable_bf;

Tensor embedding(const Tensor& ids, const Tensor& table) {
  detail::check_ids(ids, "embedding ids");
  const Device dev = table.device();
  check_f32(table, "embedding table", dev);
  check_ndim(table, 2, "embedding table (V, C)");
  const int64_t N = ids.numel(), V = table.dim(0), C = table.dim(1);
  const int32_t* id = ids.i32();
  for (int64_t i = 0; i < N; ++i)
    SLLM_CHECK(id[i] >= 0 && id[i] < V, str("embedding: token id ", id[i], " at position ", i, " is outside the vocabulary [0, ", V, ")"),
               "the ids must come from a tokenizer whose vocabulary fits the model's vocab_size");
  Shape out_shape = ids.shape();
  out_shape.push_back(C);
  Tensor out = Tensor::empty(out_shape, DType::F32, dev);
  const bool grad = autograd::needs_grad({table});
  // ids are small; the kernels read a private copy (uploaded on a GPU) that cannot change under us
  Tensor ids_copy = dev == Device::CPU && !grad ? ids : detail::device_ids(ids, dev);
  SLLM_KERNEL(dev, embedding_forward, out.mutable_f32(), ids_copy.i32(), table.f32(), N, V, C);
#if SLLM_HAVE_CUDA
  if (grad && dev == Device::CUDA) {
    // The GPU backward writes each table row once from that id's rows, grouped here on the
    // host where the ids already are (a counting sort, stable: rows stay in increasing order):
    // no atomics, no zero-fill of the (V, C) gradient, every row summed in the CPU's order.
    Tensor groups = Tensor::empty({N + V + 1}, DType::I32);  // [rows_by_id (N) | row_start (V + 1)]
    int32_t* rows_by_id = groups.mutable_i32();
    int32_t* start = rows_by_id + N;
    std::fill(start, start + V + 1, 0);
    for (int64_t i = 0; i < N; ++i) ++start[id[i] + 1];
    for (int64_t v = 0; v < V; ++v) start[v + 1] += start[v];
    std::vector<int32_t> next(start, start + V);
    for (int64_t i = 0; i < N; ++i) rows_by_id[next[size_t(id[i])]++] = static_cast<int32_t>(i);
    const Tensor groups_dev = groups.to(dev);
    autograd::record(out, "embedding", {table}, [groups_dev, N, V, C, dev](const Tensor& g) {
      Tensor dtable = Tensor::empty({V, C}, DType::F32, dev);
      const int32_t* rows = groups_dev.i32();
      kernels::cuda::embedding_backward_grouped(dtable.mutable_f32(), g.f32(), rows, rows + N, N, V, C);
      return std::vector<Tensor>{dtable};
    });
    return out;
  }
#endif
  if (grad) {
    autograd::record(out, "embedding", {table}, [ids_copy, N, V, C, dev](const Tensor& g) {
      Tensor dtable = Tensor::zeros({V, C}, DType::F32, dev);
      SLLM_KERNEL(dev, embedding_backward, dtable.mutable_f32(), g.f32(), ids_copy.i32(), N, V, C);
      return std::vector<Tensor>{dtable};
    });
  }
  return out;
}

static void check_norm_params(const Tensor& x, const Tensor& weight, const Tensor& bias, const char* op) {
  check_f32(x, str(op, " input"), x.device());
  check_f32(weight, str(op, " weight"), x.device());
  SLLM_CHECK(x.ndim() >= 1, str(op, ": input must have at least one dim"), "pass (..., C)");
  check_shape(weight, {x.dim(-1)}, str(op, " weight"));
  if (bias.defined()) {
    check_f32(bias, str(op, " bias"), x.device());
    check_shape(bias, {x.dim(-1)}, str(op, " bias"));
  }
}

static void check_norm_out(const Tensor& x, DType out_dtype, const char* op) {
  SLLM_CHECK(out_dtype == DType::F32 || out_dtype == DType::BF16,
             str(op, ": output dtype ", dtype_name(out_dtype), " is not supported"), "use f32, or bf16 on CUDA");
  SLLM_CHECK(out_dtype == DType::F32 || x.device() == Device::CUDA,
             str(op, ": a bf16 output needs the CUDA backend, the input is on ", device_name(x.device())),
             "on the CPU keep activations in f32 (train with --precision fp32)");
}

Tensor layernorm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps, DType out_dtype) {
  check_norm_params(x, weight, bias, "layernorm");
  check_norm_out(x, out_dtype, "layernorm");
  const int64_t N = rows_of(x), C = x.dim(-1);
  const Device dev = x.device();
  Tensor out = Tensor::empty(x.shape(), out_dtype, dev), mean = Tensor::empty({N}, DType::F32, dev),
         rstd = Tensor::empty({N}, DType::F32, dev);
  const float* bias_ptr = bias.defined() ? bias.f32() : nullptr;
  if (is_bf16(out))  // the bf16 input of the next matmul (ops/mixed_precision.h)
    SLLM_KERNEL_BF16(layernorm_forward, mutable_bf(out), mean.mutable_f32(), rstd.mutable_f32(), x.f32(), weight.f32(),
                     bias_ptr, N, C, eps);
  else
    SLLM_KERNEL(dev, layernorm_forward, out.mutable_f32(), mean.mutable_f32(), rstd.mutable_f32(), x.f32(), weight.f32(),
                bias_ptr, N, C, eps);
  if (autograd::needs_grad({x, weight, bias})) {
    autograd::SavedTensor sx(x, "layernorm"), sw(weight, "layernorm");
    Tensor b = bias;
    autograd::record(out, "layernorm", {x, weight, bias}, [sx, sw, b, mean, rstd, N, C](const Tensor& g) {
      const Tensor& X = sx.get();
      const Tensor& W = sw.get();
      Tensor dx = grad_for(X), dw = grad_for(W), db = grad_for(b);
      if (is_bf16(g))
        SLLM_KERNEL_BF16(layernorm_backward, ptr(dx), ptr(dw), ptr(db), bf(g), X.f32(), W.f32(), mean.f32(), rstd.f32(),
                         N, C);
      else
        SLLM_KERNEL(X.device(), layernorm_backward, ptr(dx), ptr(dw), ptr(db), g.f32(), X.f32(), W.f32(), mean.f32(),
                    rstd.f32(), N, C);
      return std::vector<Tensor>{dx, dw, db};
    });
  }
  return out;
}

Tensor rmsnorm(const Tensor& x, const Tensor& weight, float eps, DType out_dtype) {
  check_norm_params(x, weight, Tensor(), "rmsnorm");
  check_norm_out(x, out_dtype, "rmsnorm");
  const int64_t N = rows_of(x), C = x.dim(-1);
  const Device dev = x.device();
  Tensor out = Tensor::empty(x.shape(), out_dtype, dev), rstd = Tensor::empty({N}, DType::F32, dev);
  if (is_bf16(out))
    SLLM_KERNEL_BF16(rmsnorm_forward, mutable_bf(out), rstd.mutable_f32(), x.f32(), weight.f32(), N, C, eps);
  else
    SLLM_KERNEL(dev, rmsnorm_forward, out.mutable_f32(), rstd.mutable_f32(), x.f32(), weight.f32(), N, C, eps);
  if (autograd::needs_grad({x, weight})) {
    autograd::SavedTensor sx(x, "rmsnorm"), sw(weight, "rmsnorm");
    autograd::record(out, "rmsnorm", {x, weight}, [sx, sw, rstd, N, C](const Tensor& g) {
      const Tensor& X = sx.get();
      const Tensor& W = sw.get();
      Tensor dx = grad_for(X), dw = grad_for(W);
      if (is_bf16(g))
        SLLM_KERNEL_BF16(rmsnorm_backward, ptr(dx), ptr(dw), bf(g), X.f32(), W.f32(), rstd.f32(), N, C);
      else
        SLLM_KERNEL(X.device(), rmsnorm_backward, ptr(dx), ptr(dw), g.f32(), X.f32(), W.f32(), rstd.f32(), N, C);
      return std::vector<Tensor>{dx, dw};
    });
  }
  return out;
}

}  // namespace sllm::ops
