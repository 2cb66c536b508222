// reshape (a view), and the copying shape ops: transpose, concat, slice, index_select, gather.
// Along a dim d a contiguous tensor reads as (outer, size_d, inner); the copies below move
// whole `inner` runs.
#include <cstring>

#include "ops/op_common.h"
#include "ops/ops.h"

namespace sllm::ops {

using detail::check_f32;

namespace {

int64_t normalize_dim(const Tensor& x, int64_t dim, const char* op) {
  const int64_t n = x.ndim();
  const int64_t d = dim < 0 ? dim + n : dim;
  SLLM_CHECK(d >= 0 && d < n, str(op, ": dim ", dim, " out of range for shape ", shape_str(x.shape())),
             str("valid dims are ", -n, " .. ", n - 1));
  return d;
}

// Copies of at least this many elements are split over the threads (rows are independent);
// below it a parallel region costs more than the copy.
constexpr int64_t kParallelCopyMin = 1 << 16;

int64_t outer_of(const Shape& s, int64_t d) { return shape_numel(Shape(s.begin(), s.begin() + d)); }
int64_t inner_of(const Shape& s, int64_t d) { return shape_numel(Shape(s.begin() + d + 1, s.end())); }

// `rows` runs of `width` floats on the GPU, run i from src + i * src_stride to
// dst + i * dst_stride: one strided copy (the device twin of the memcpy loops below).
// Unreachable without the CUDA backend: check_f32 rejects device tensors there.
// Strides and width count elements of `elem` bytes (4 for f32, 2 for bf16 on CUDA).
void copy_runs_cuda(void* dst, int64_t dst_stride, const void* src, int64_t src_stride, int64_t width, int64_t rows,
                    size_t elem) {
#if SLLM_HAVE_CUDA
  kernels::cuda::copy_d2d_2d(dst, size_t(dst_stride) * elem, src, size_t(src_stride) * elem, size_t(width) * elem,
                             size_t(rows));
#else
  SLLM_ASSERT(!"copy_runs_cuda without the CUDA backend");
#endif
}

// Element e of a tensor's buffer, as bytes: the CUDA copies below move f32 or bf16 alike.
char* bytes_at(Tensor& t, int64_t e) { return static_cast<char*>(t.mutable_raw()) + e * int64_t(dtype_size(t.dtype())); }
const char* bytes_at(const Tensor& t, int64_t e) {
  return static_cast<const char*>(t.raw()) + e * int64_t(dtype_size(t.dtype()));
}

// kernels::cuda::fn(args...) for the ops below that have no CPU kernel of the same name
// (their CPU side is the loops in this file). Unreachable without the CUDA backend:
// check_f32 rejects device tensors there.
#if SLLM_HAVE_CUDA
#define SLLM_CUDA_CALL(fn, ...) ::sllm::kernels::cuda::fn(__VA_ARGS__)
#else
#define SLLM_CUDA_CALL(fn, ...) SLLM_ASSERT(!"kernels::cuda::" #fn " without the CUDA backend")
#endif

// Swaps dims d0 and d1 of `src` (shape `shape`) into `dst`. Used by transpose forward and,
// with the swapped shape, by its backward (a transpose is its own inverse).
void transpose_copy(float* dst, const float* src, const Shape& shape, int64_t d0, int64_t d1, bool accumulate) {
  const int64_t n = shape_numel(shape), nd = static_cast<int64_t>(shape.size());
  std::vector<int64_t> in_stride(nd, 1);
  for (int64_t i = nd - 2; i >= 0; --i) in_stride[i] = in_stride[i + 1] * shape[i + 1];
  Shape out_shape = shape;
  std::swap(out_shape[d0], out_shape[d1]);
  std::vector<int64_t> stride = in_stride;  // input stride for each output dim
  std::swap(stride[d0], stride[d1]);
  std::vector<int64_t> idx(nd, 0);
  int64_t src_off = 0;
  for (int64_t o = 0; o < n; ++o) {
    if (accumulate) dst[o] += src[src_off];
    else dst[o] = src[src_off];
    for (int64_t k = nd - 1; k >= 0; --k) {  // odometer increment of the output index
      src_off += stride[k];
      if (++idx[k] < out_shape[k]) break;
      src_off -= stride[k] * out_shape[k];
      idx[k] = 0;
    }
  }
}

// dst = src (shape `shape`) with dims d0 and d1 swapped, on `dev`.
void transpose_on(Device dev, float* dst, const float* src, const Shape& shape, int64_t d0, int64_t d1) {
  if (dev == Device::CUDA) {
    SLLM_CUDA_CALL(transpose_forward, dst, src, shape.data(), int64_t(shape.size()), d0, d1);
    return;
  }
  transpose_copy(dst, src, shape, d0, d1, false);
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  check_defined(x, "reshape");
  Tensor out = x.reshape(shape);
  if (autograd::needs_grad({x})) {
    Shape in_shape = x.shape();
    autograd::record(out, "reshape", {x}, [in_shape](const Tensor& g) { return std::vector<Tensor>{g.reshape(in_shape)}; });
  }
  return out;
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  const Device dev = x.device();
  check_f32(x, "transpose", dev);
  const int64_t d0 = normalize_dim(x, dim0, "transpose"), d1 = normalize_dim(x, dim1, "transpose");
  Shape out_shape = x.shape();
  std::swap(out_shape[d0], out_shape[d1]);
  Tensor out = Tensor::empty(out_shape, DType::F32, dev);
  transpose_on(dev, out.mutable_f32(), x.f32(), x.shape(), d0, d1);
  if (autograd::needs_grad({x})) {
    autograd::record(out, "transpose", {x}, [out_shape, d0, d1, dev](const Tensor& g) {
      Shape in_shape = out_shape;
      std::swap(in_shape[d0], in_shape[d1]);
      Tensor dx = Tensor::empty(in_shape, DType::F32, dev);  // every element written once
      transpose_on(dev, dx.mutable_f32(), g.f32(), out_shape, d0, d1);
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  SLLM_CHECK(!xs.empty(), "concat: no tensors given", "pass at least one tensor");
  const Device dev = xs[0].device();
  for (const auto& x : xs) {
    detail::check_float(x, "concat input", dev);
    check_dtype(x, xs[0].dtype(), "concat input (all inputs share one dtype)");
  }
  const DType dtype = xs[0].dtype();
  const size_t es = dtype_size(dtype);
  const int64_t d = normalize_dim(xs[0], dim, "concat");
  Shape out_shape = xs[0].shape();
  out_shape[d] = 0;
  for (const auto& x : xs) {
    Shape a = x.shape(), b = xs[0].shape();
    SLLM_CHECK(a.size() == b.size(), str("concat: ranks differ: ", shape_str(a), " vs ", shape_str(b)), "all inputs need the same rank");
    a[d] = b[d] = 0;
    SLLM_CHECK(a == b, str("concat along dim ", dim, ": shapes ", shape_str(x.shape()), " and ", shape_str(xs[0].shape()), " differ elsewhere"),
               "all dims except the concat dim must match");
    out_shape[d] += x.dim(d);
  }
  const int64_t outer = outer_of(out_shape, d), inner = inner_of(out_shape, d), total = out_shape[d];
  Tensor out = Tensor::empty(out_shape, dtype, dev);
  std::vector<int64_t> starts;
  int64_t at = 0;
  for (const auto& x : xs) {
    starts.push_back(at);
    const int64_t len = x.dim(d);
    if (dev == Device::CUDA) {
      copy_runs_cuda(bytes_at(out, at * inner), total * inner, x.raw(), len * inner, len * inner, outer, es);
      at += len;
      continue;
    }
    float* y = out.mutable_f32();
    const float* src = x.f32();
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(y + (o * total + at) * inner, src + o * len * inner, static_cast<size_t>(len * inner) * sizeof(float));
    at += len;
  }
  if (autograd::needs_grad(xs)) {
    std::vector<Shape> shapes;
    std::vector<bool> wants;
    for (const auto& x : xs) {
      shapes.push_back(x.shape());
      wants.push_back(x.requires_grad());
    }
    autograd::record(out, "concat", xs, [shapes, wants, starts, d, outer, inner, total, dev, dtype, es](const Tensor& g) {
      std::vector<Tensor> grads;
      for (size_t i = 0; i < shapes.size(); ++i) {
        if (!wants[i]) {
          grads.emplace_back();
          continue;
        }
        const int64_t len = shapes[i][d];
        Tensor dx = Tensor::empty(shapes[i], dtype, dev);
        if (dev == Device::CUDA) {
          copy_runs_cuda(dx.mutable_raw(), len * inner, bytes_at(g, starts[i] * inner), total * inner, len * inner, outer,
                         es);
          grads.push_back(dx);
          continue;
        }
        for (int64_t o = 0; o < outer; ++o)
          std::memcpy(dx.mutable_f32() + o * len * inner, g.f32() + (o * total + starts[i]) * inner,
                      static_cast<size_t>(len * inner) * sizeof(float));
        grads.push_back(dx);
      }
      return grads;
    });
  }
  return out;
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end) {
  const Device dev = x.device();
  detail::check_float(x, "slice", dev);
  const int64_t d = normalize_dim(x, dim, "slice");
  const int64_t size = x.dim(d);
  SLLM_CHECK(0 <= start && start <= end && end <= size,
             str("slice [", start, ", ", end, ") out of range for dim ", dim, " of size ", size),
             "use 0 <= start <= end <= size");
  Shape out_shape = x.shape();
  out_shape[d] = end - start;
  const int64_t outer = outer_of(x.shape(), d), inner = inner_of(x.shape(), d), len = end - start;
  const DType dtype = x.dtype();
  const size_t es = dtype_size(dtype);
  Tensor out = Tensor::empty(out_shape, dtype, dev);
  if (dev == Device::CUDA) {
    copy_runs_cuda(out.mutable_raw(), len * inner, bytes_at(x, start * inner), size * inner, len * inner, outer, es);
  } else {
    float* y = out.mutable_f32();
    const float* xp = x.f32();
#pragma omp parallel for schedule(static) if (outer * size * inner >= kParallelCopyMin)
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(y + o * len * inner, xp + (o * size + start) * inner, static_cast<size_t>(len * inner) * sizeof(float));
  }
  if (autograd::needs_grad({x})) {
    Shape in_shape = x.shape();
    autograd::record(out, "slice", {x}, [in_shape, outer, inner, size, start, len, dev, dtype, es](const Tensor& g) {
      if (dev == Device::CUDA) {  // zeros, then the slice's gradient into its window
        Tensor dx = Tensor::zeros(in_shape, dtype, dev);
        copy_runs_cuda(bytes_at(dx, start * inner), size * inner, g.raw(), len * inner, len * inner, outer, es);
        return std::vector<Tensor>{dx};
      }
      // Each element of dx is written once: the slice's gradient inside [start, start+len),
      // zeros on either side (no zero fill of the whole buffer first).
      Tensor dx = Tensor::empty(in_shape);
      float* d = dx.mutable_f32();
      const float* gp = g.f32();
      const size_t before = size_t(start * inner), part = size_t(len * inner), after = size_t((size - start - len) * inner);
#pragma omp parallel for schedule(static) if (outer * size * inner >= kParallelCopyMin)
      for (int64_t o = 0; o < outer; ++o) {
        float* row = d + o * size * inner;  // (size, inner)
        std::memset(row, 0, before * sizeof(float));
        std::memcpy(row + before, gp + o * len * inner, part * sizeof(float));
        std::memset(row + before + part, 0, after * sizeof(float));
      }
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

Tensor index_select(const Tensor& x, const Tensor& ids) {
  const Device dev = x.device();
  check_f32(x, "index_select", dev);
  detail::check_ids(ids, "index_select ids");
  check_ndim(ids, 1, "index_select ids (M)");
  SLLM_CHECK(x.ndim() >= 1, "index_select: input must have a row dim", "pass (N, ...)");
  const int64_t N = x.dim(0), M = ids.dim(0), inner = x.numel() / (N == 0 ? 1 : N);
  const int32_t* id = ids.i32();
  for (int64_t i = 0; i < M; ++i)
    SLLM_CHECK(id[i] >= 0 && id[i] < N, str("index_select: index ", id[i], " out of range [0, ", N, ")"), "indices must address rows of the input");
  Shape out_shape = x.shape();
  out_shape[0] = M;
  Tensor out = Tensor::empty(out_shape, DType::F32, dev);
  Tensor ids_copy = detail::device_ids(ids, dev);  // the validated ids, on the floats' device
  if (dev == Device::CUDA) {
    SLLM_CUDA_CALL(index_select_forward, out.mutable_f32(), x.f32(), ids_copy.i32(), N, M, inner);
  } else {
    for (int64_t i = 0; i < M; ++i)
      std::memcpy(out.mutable_f32() + i * inner, x.f32() + id[i] * inner, static_cast<size_t>(inner) * sizeof(float));
  }
  if (autograd::needs_grad({x})) {
    Shape in_shape = x.shape();
    autograd::record(out, "index_select", {x}, [ids_copy, in_shape, N, M, inner, dev](const Tensor& g) {
      Tensor dx = Tensor::zeros(in_shape, DType::F32, dev);
      const int32_t* idp = ids_copy.i32();
      if (dev == Device::CUDA) {  // repeated ids accumulate in id order there too
        SLLM_CUDA_CALL(index_select_backward, dx.mutable_f32(), g.f32(), idp, N, M, inner);
        return std::vector<Tensor>{dx};
      }
      for (int64_t i = 0; i < M; ++i)  // serial: repeated ids accumulate in a fixed order
        for (int64_t j = 0; j < inner; ++j) dx.mutable_f32()[idp[i] * inner + j] += g.f32()[i * inner + j];
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

Tensor gather(const Tensor& x, const Tensor& ids) {
  const Device dev = x.device();
  check_f32(x, "gather", dev);
  check_ndim(x, 2, "gather input (N, C)");
  detail::check_ids(ids, "gather ids");
  const int64_t N = x.dim(0), C = x.dim(1);
  check_shape(ids, {N}, "gather ids (N)");
  const int32_t* id = ids.i32();
  for (int64_t i = 0; i < N; ++i)
    SLLM_CHECK(id[i] >= 0 && id[i] < C, str("gather: index ", id[i], " at row ", i, " out of range [0, ", C, ")"), "indices must address columns");
  Tensor out = Tensor::empty({N}, DType::F32, dev);
  Tensor ids_copy = detail::device_ids(ids, dev);  // the validated ids, on the floats' device
  if (dev == Device::CUDA) {
    SLLM_CUDA_CALL(gather_forward, out.mutable_f32(), x.f32(), ids_copy.i32(), N, C);
  } else {
    for (int64_t i = 0; i < N; ++i) out.mutable_f32()[i] = x.f32()[i * C + id[i]];
  }
  if (autograd::needs_grad({x})) {
    autograd::record(out, "gather", {x}, [ids_copy, N, C, dev](const Tensor& g) {
      Tensor dx = Tensor::zeros({N, C}, DType::F32, dev);
      if (dev == Device::CUDA) {
        SLLM_CUDA_CALL(gather_backward, dx.mutable_f32(), g.f32(), ids_copy.i32(), N, C);
      } else {
        for (int64_t i = 0; i < N; ++i) dx.mutable_f32()[i * C + ids_copy.i32()[i]] += g.f32()[i];
      }
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

const std::vector<std::string>& differentiable_ops() {
  static const std::vector<std::string> names = {
      "matmul",  "linear",      "lora_linear",   "add",           "sub",         "mul",          "div",       "scale",
      "sum",     "mean",        "embedding",     "layernorm",   "rmsnorm",      "gelu_tanh", "gelu_exact",
      "silu",    "swiglu",      "softmax",       "log_softmax", "cross_entropy", "cross_entropy_per_token", "linear_cross_entropy",
      "dropout", "attention", "attention_qkv",   "rope_halfsplit", "rope_interleaved", "reshape", "transpose", "concat",
      "slice",   "index_select", "gather"};
  return names;
}

}  // namespace sllm::ops
