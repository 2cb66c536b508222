// matmul and linear. For C = op(A)·op(B) the gradients are dA' = dC·op(B)ᵀ and
// dB' = op(A)ᵀ·dC; when an operand was used transposed, its gradient is the transpose of
// that product, which GEMM computes directly by swapping operands (no transposed copies).
#include <algorithm>
#include <cstring>

#include "kernels/kernels.h"
#include "ops/linear_detail.h"
#include "ops/mixed_precision.h"
#include "ops/op_common.h"
#include "ops/ops.h"

namespace sllm::ops {

using detail::check_f32;
using detail::grad_buffer_for;
using detail::grad_for;
using detail::ptr;

namespace {

struct MatmulDims {
  int64_t batch, M, K, N;
  bool shared_b;  // b is 2-D and used by every batch entry
};

MatmulDims matmul_dims(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  SLLM_CHECK(a.ndim() >= 2 && b.ndim() >= 2,
             str("matmul: operands must be at least 2-D, got ", shape_str(a.shape()), " and ", shape_str(b.shape())),
             "reshape vectors to (1, n) or (n, 1)");
  MatmulDims d{};
  d.M = ta ? a.dim(-1) : a.dim(-2);
  d.K = ta ? a.dim(-2) : a.dim(-1);
  const int64_t kb = tb ? b.dim(-1) : b.dim(-2);
  d.N = tb ? b.dim(-2) : b.dim(-1);
  SLLM_CHECK(d.K == kb,
             str("matmul: inner dimensions differ: ", shape_str(a.shape()), (ta ? "ᵀ" : ""), " @ ", shape_str(b.shape()),
                 (tb ? "ᵀ" : ""), " has K = ", d.K, " vs ", kb),
             "the last dim of op(a) must equal the second-to-last dim of op(b)");
  d.batch = shape_numel(Shape(a.shape().begin(), a.shape().end() - 2));
  d.shared_b = b.ndim() == 2;
  if (!d.shared_b) {
    SLLM_CHECK(Shape(a.shape().begin(), a.shape().end() - 2) == Shape(b.shape().begin(), b.shape().end() - 2),
               str("matmul: batch dims differ: ", shape_str(a.shape()), " vs ", shape_str(b.shape())),
               "batch dims must match exactly (or b must be 2-D)");
  }
  return d;
}

// dbias (cols) += sum over rows of g (rows, cols). Parallel over column blocks, so each
// output has one writer and a fixed summation order (deterministic for any thread count).
void add_column_sums(float* dbias, const float* g, int64_t rows, int64_t cols) {
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (cols + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t j0 = blk * kBlock, j1 = std::min(cols, j0 + kBlock);
    float acc[kBlock] = {0};
    if (j1 - j0 == kBlock) {  // a full block: a fixed trip count the compiler unrolls into registers
      for (int64_t i = 0; i < rows; ++i) {
        const float* g_i = g + i * cols + j0;  // (kBlock)
        for (int64_t j = 0; j < kBlock; ++j) acc[j] += g_i[j];
      }
    } else {
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = j0; j < j1; ++j) acc[j - j0] += g[i * cols + j];
    }
    for (int64_t j = j0; j < j1; ++j) dbias[j] += acc[j - j0];
  }
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const Device dev = a.device();
  check_f32(a, "matmul a", dev);
  check_f32(b, "matmul b", dev);
  const MatmulDims d = matmul_dims(a, b, ta, tb);
  Shape out_shape(a.shape().begin(), a.shape().end() - 2);
  out_shape.push_back(d.M);
  out_shape.push_back(d.N);
  Tensor out = Tensor::empty(out_shape, DType::F32, dev);
  const int64_t lda = ta ? d.M : d.K, ldb = tb ? d.K : d.N;
  const int64_t stride_b = d.shared_b ? 0 : d.K * d.N;
  SLLM_KERNEL(dev, sgemm_batched, ta, tb, d.batch, d.M, d.N, d.K, 1.0f, a.f32(), lda, d.M * d.K, b.f32(), ldb, stride_b,
                         0.0f, out.mutable_f32(), d.N, d.M * d.N);
  if (autograd::needs_grad({a, b})) {
    autograd::SavedTensor sa(a, "matmul"), sb(b, "matmul");
    autograd::record(out, "matmul", {a, b}, [sa, sb, d, ta, tb, lda, ldb, stride_b, dev](const Tensor& g) {
      const Tensor& A = sa.get();
      const Tensor& B = sb.get();
      // Each batch entry's da/db is written whole by one GEMM with beta = 0, except a
      // shared b, whose gradient sums over the batch (beta = 1 after the first entry; with
      // no batch entries at all it stays zero).
      Tensor da = grad_buffer_for(A), db = d.batch == 0 ? grad_for(B) : grad_buffer_for(B);
      const int64_t sa_ = d.M * d.K, sc = d.M * d.N;
      for (int64_t i = 0; i < d.batch; ++i) {
        const float* Ai = A.f32() + i * sa_;
        const float* Bi = B.f32() + i * stride_b;
        const float* Gi = g.f32() + i * sc;
        if (da.defined()) {
          float* dAi = da.mutable_f32() + i * sa_;
          if (!ta) SLLM_KERNEL(dev, sgemm, false, !tb, d.M, d.K, d.N, 1.0f, Gi, d.N, Bi, ldb, 0.0f, dAi, lda);
          else SLLM_KERNEL(dev, sgemm, tb, true, d.K, d.M, d.N, 1.0f, Bi, ldb, Gi, d.N, 0.0f, dAi, lda);
        }
        if (db.defined()) {
          float* dBi = db.mutable_f32() + i * stride_b;
          const float beta_b = (d.shared_b && i > 0) ? 1.0f : 0.0f;
          if (!tb) SLLM_KERNEL(dev, sgemm, !ta, false, d.K, d.N, d.M, 1.0f, Ai, lda, Gi, d.N, beta_b, dBi, ldb);
          else SLLM_KERNEL(dev, sgemm, true, ta, d.N, d.K, d.M, 1.0f, Gi, d.N, Ai, lda, beta_b, dBi, ldb);
        }
      }
      return std::vector<Tensor>{da, db};
    });
  }
  return out;
}

namespace detail {

void check_linear_operands(const Tensor& x, const Tensor& weight, const Tensor& bias, Device dev) {
  detail::check_float(x, "linear input", dev);
  check_f32(weight, "linear weight", dev);
  check_ndim(weight, 2, "linear weight (out, in)");
  const int64_t in = weight.dim(1), out_features = weight.dim(0);
  SLLM_CHECK(x.ndim() >= 1 && x.dim(-1) == in,
             str("linear: input ", shape_str(x.shape()), " does not end in in_features = ", in, " of weight ",
                 shape_str(weight.shape())),
             "the weight is (out_features, in_features), the nn.Linear layout");
  if (bias.defined()) {
    check_f32(bias, "linear bias", dev);
    check_shape(bias, {out_features}, "linear bias");
  }
}

Tensor linear_forward_f32(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const Device dev = x.device();
  const int64_t in = weight.dim(1), out_features = weight.dim(0);
  const int64_t N = detail::rows_of(x);
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  Tensor out = Tensor::empty(out_shape, DType::F32, dev);
  float* y = out.mutable_f32();  // (N, out)
  if (dev == Device::CPU) {
    float beta = 0.0f;
    if (bias.defined()) {  // start from the bias rows and let GEMM accumulate onto them
      const float* b = bias.f32();
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < N; ++i) std::memcpy(y + i * out_features, b, size_t(out_features) * sizeof(float));
      beta = 1.0f;
    }
    kernels::sgemm(false, true, N, out_features, in, 1.0f, x.f32(), in, weight.f32(), in, beta, y, out_features);
  } else {
    // GEMM, then the bias broadcast-added in place: y = fl(x·Wᵀ + b) with one rounding of
    // the sum, the value the CPU's beta = 1 accumulation produces.
    SLLM_KERNEL(dev, sgemm, false, true, N, out_features, in, 1.0f, x.f32(), in, weight.f32(), in, 0.0f, y,
                out_features);
    if (bias.defined() && N * out_features > 0)
      SLLM_KERNEL(dev, binary_forward, kernels::BinaryOp::Add, y, y, bias.f32(), N * out_features, out_features);
  }
  return out;
}

LinearGrads linear_backward_f32(const Tensor& g, const Tensor& X, const Tensor& W, const Tensor& bias) {
  const Device dev = g.device();
  const int64_t in = W.dim(1), out_features = W.dim(0), N = detail::rows_of(X);
  // dx and dW are written by GEMM with beta = 0, so they need no zeroing first.
  LinearGrads r{grad_buffer_for(X), grad_buffer_for(W), grad_for(bias)};
  if (r.dx.defined())  // dx (N, in) = g (N, out) · W (out, in)
    SLLM_KERNEL(dev, sgemm, false, false, N, in, out_features, 1.0f, g.f32(), out_features, W.f32(), in, 0.0f,
                r.dx.mutable_f32(), in);
  if (r.dw.defined())  // dW (out, in) = gᵀ · X; skipped entirely for a frozen weight
    SLLM_KERNEL(dev, sgemm, true, false, out_features, in, N, 1.0f, g.f32(), out_features, X.f32(), in, 0.0f,
                r.dw.mutable_f32(), in);
  if (r.db.defined()) add_bias_grad_f32(r.db, g, bias);
  return r;
}

void add_bias_grad_f32(Tensor& db, const Tensor& g, const Tensor& bias) {
  const Device dev = g.device();
  const int64_t out_features = bias.numel(), N = detail::rows_of(g);
  if (dev == Device::CPU) {
    add_column_sums(db.mutable_f32(), g.f32(), N, out_features);
  } else if (N * out_features > 0) {
    // dbias += column sums of g: the bias gradient of a broadcast add, (N, out) onto
    // (out). Add's derivative reads neither operand's value, but both must be valid.
    SLLM_KERNEL(dev, binary_backward, kernels::BinaryOp::Add, nullptr, db.mutable_f32(), g.f32(), g.f32(),
                bias.f32(), N * out_features, out_features);
  }
}

}  // namespace detail

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const Device dev = x.device();
  detail::check_linear_operands(x, weight, bias, dev);
  if (detail::is_bf16(x)) return detail::linear_bf16(x, weight, bias);
  Tensor out = detail::linear_forward_f32(x, weight, bias);
  if (autograd::needs_grad({x, weight, bias})) {
    autograd::SavedTensor sx(x, "linear"), sw(weight, "linear");
    Tensor bias_in = bias;
    autograd::record(out, "linear", {x, weight, bias}, [sx, sw, bias_in](const Tensor& g) {
      detail::LinearGrads r = detail::linear_backward_f32(g, sx.get(), sw.get(), bias_in);
      return std::vector<Tensor>{r.dx, r.dw, r.db};
    });
  }
  return out;
}

}  // namespace sllm::ops
