// Elementwise binary ops with trailing-dimension broadcasting, scaling and sums.
// Legend: n elements of a (viewed as rows = n / nb rows of nb columns), nb elements of b.
// Backward kernels ACCUMULATE (+=) into da / db; a nullptr gradient is skipped entirely.
#include <algorithm>
#include <vector>

#include "core/error.h"
#include "kernels/kernels.h"

namespace sllm::kernels {
namespace {

// Elementwise loops below this size run on one thread: a parallel region costs ~1 us.
constexpr int64_t kParallelMin = 1 << 15;

// Fixed chunk of a whole-array sum: the partition (and so the result) does not depend on
// the thread count.
constexpr int64_t kSumChunk = 1 << 14;

template <BinaryOp op>
inline float apply(float a, float b) {
  if constexpr (op == BinaryOp::Add) return a + b;
  if constexpr (op == BinaryOp::Sub) return a - b;
  if constexpr (op == BinaryOp::Mul) return a * b;
  return a / b;
}

// d out / d a for out = a (op) b.
template <BinaryOp op>
inline float grad_a(float a, float b) {
  if constexpr (op == BinaryOp::Add || op == BinaryOp::Sub) return 1.0f;
  if constexpr (op == BinaryOp::Mul) return b;
  return 1.0f / b;
}

// d out / d b for out = a (op) b.
template <BinaryOp op>
inline float grad_b(float a, float b) {
  if constexpr (op == BinaryOp::Add) return 1.0f;
  if constexpr (op == BinaryOp::Sub) return -1.0f;
  if constexpr (op == BinaryOp::Mul) return a;
  return -a / (b * b);
}

// Runs body(i, j, len) over [0, n) in fixed chunks of the flat index, split at row ends:
// elements i .. i+len-1 of a pair with elements j .. j+len-1 of b. Chunking the flat index
// rather than the rows keeps every thread busy both for many short rows (a bias) and for
// one long row (b the same shape as a: the residual adds of a transformer have rows == 1).
// Each element is computed alone, so the split does not change any result.
constexpr int64_t kElemChunk = 1 << 13;

template <class Body>
void for_each_chunk(int64_t n, int64_t nb, Body body) {
  const int64_t chunks = (n + kElemChunk - 1) / kElemChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t end = std::min(n, (c + 1) * kElemChunk);
    int64_t i = c * kElemChunk, j = i % nb;
    while (i < end) {
      const int64_t len = std::min(end - i, nb - j);
      body(i, j, len);
      i += len;
      j = 0;
    }
  }
}

template <BinaryOp op>
void binary_forward_impl(float* out, const float* a, const float* b, int64_t n, int64_t nb) {
  if (nb == 1) {
    const float b0 = b[0];
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) out[i] = apply<op>(a[i], b0);
    return;
  }
  for_each_chunk(n, nb, [=](int64_t i, int64_t j, int64_t len) {
    const float* a_i = a + i;  // (len)
    const float* b_j = b + j;  // (len)
    float* out_i = out + i;    // (len)
    for (int64_t k = 0; k < len; ++k) out_i[k] = apply<op>(a_i[k], b_j[k]);
  });
}

// db[j] += sum over rows r of dout[r, j] * grad_b(a[r, j], b[j]).
// Parallel over column blocks, rows in order inside: each db[j] sees the same sequence of
// float additions whatever the thread count. nb == 1 (a scalar b) instead sums fixed chunks
// in double and adds them in chunk order.
template <BinaryOp op>
void binary_backward_db(float* db, const float* dout, const float* a, const float* b, int64_t n,
                        int64_t nb) {
  const int64_t rows = n / nb;
  if (nb == 1) {
    const int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
    std::vector<double> partial(chunks);
    const float b0 = b[0];
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t end = std::min(n, (c + 1) * kSumChunk);
      double s = 0.0;
      for (int64_t i = c * kSumChunk; i < end; ++i) s += double(dout[i] * grad_b<op>(a[i], b0));
      partial[c] = s;
    }
    double total = 0.0;
    for (double p : partial) total += p;
    db[0] += float(total);
    return;
  }
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (nb + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t j0 = blk * kBlock, j1 = std::min(nb, j0 + kBlock);
    for (int64_t r = 0; r < rows; ++r) {
      const float* dout_r = dout + r * nb;
      const float* a_r = a + r * nb;
      for (int64_t j = j0; j < j1; ++j) db[j] += dout_r[j] * grad_b<op>(a_r[j], b[j]);
    }
  }
}

template <BinaryOp op>
void binary_backward_impl(float* da, float* db, const float* dout, const float* a, const float* b,
                          int64_t n, int64_t nb) {
  if (da) {
    for_each_chunk(n, nb, [=](int64_t i, int64_t j, int64_t len) {
      float* da_i = da + i;              // (len)
      const float* dout_i = dout + i;    // (len)
      const float* a_i = a + i;          // (len)
      const float* b_j = b + j;          // (len)
      for (int64_t k = 0; k < len; ++k) da_i[k] += dout_i[k] * grad_a<op>(a_i[k], b_j[k]);
    });
  }
  if (db) binary_backward_db<op>(db, dout, a, b, n, nb);
}

// Turns the run-time op into a compile-time one, so each inner loop has no switch in it.
template <class Body>
void dispatch(BinaryOp op, Body body) {
  switch (op) {
    case BinaryOp::Add: body.template operator()<BinaryOp::Add>(); return;
    case BinaryOp::Sub: body.template operator()<BinaryOp::Sub>(); return;
    case BinaryOp::Mul: body.template operator()<BinaryOp::Mul>(); return;
    case BinaryOp::Div: body.template operator()<BinaryOp::Div>(); return;
  }
  SLLM_ASSERT(false);
}

}  // namespace

// ---- binary ops ------------------------------------------------------------------------
// out (n) = a (n) (op) b (nb), b repeated every nb elements.
void binary_forward(BinaryOp op, float* out, const float* a, const float* b, int64_t n, int64_t nb) {
  SLLM_ASSERT(nb > 0 && n % nb == 0);
  dispatch(op, [&]<BinaryOp o>() { binary_forward_impl<o>(out, a, b, n, nb); });
}

// da (n) += dout * d(out)/da;  db (nb) += sum over the broadcast rows of dout * d(out)/db.
void binary_backward(BinaryOp op, float* da, float* db, const float* dout, const float* a,
                     const float* b, int64_t n, int64_t nb) {
  SLLM_ASSERT(nb > 0 && n % nb == 0);
  dispatch(op, [&]<BinaryOp o>() { binary_backward_impl<o>(da, db, dout, a, b, n, nb); });
}

void binary_forward_ref(BinaryOp op, float* out, const float* a, const float* b, int64_t n, int64_t nb) {
  for (int64_t i = 0; i < n; ++i) {
    const float x = a[i], y = b[i % nb];
    switch (op) {
      case BinaryOp::Add: out[i] = x + y; break;
      case BinaryOp::Sub: out[i] = x - y; break;
      case BinaryOp::Mul: out[i] = x * y; break;
      case BinaryOp::Div: out[i] = x / y; break;
    }
  }
}

void binary_backward_ref(BinaryOp op, float* da, float* db, const float* dout, const float* a,
                         const float* b, int64_t n, int64_t nb) {
  std::vector<double> db_acc(nb, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const double x = a[i], y = b[i % nb], g = dout[i];
    double ga = 1.0, gb = 1.0;
    switch (op) {
      case BinaryOp::Add: ga = 1.0; gb = 1.0; break;
      case BinaryOp::Sub: ga = 1.0; gb = -1.0; break;
      case BinaryOp::Mul: ga = y; gb = x; break;
      case BinaryOp::Div: ga = 1.0 / y; gb = -x / (y * y); break;
    }
    if (da) da[i] += float(g * ga);
    db_acc[i % nb] += g * gb;
  }
  if (db)
    for (int64_t j = 0; j < nb; ++j) db[j] += float(db_acc[j]);
}

// ---- scale and sums --------------------------------------------------------------------
// out (n) = a (n) * s. Its backward, da += dout * s, needs no kernel of its own: it is
// scale_forward into a zeroed gradient, or binary_backward(Mul) with a one-element b.
void scale_forward(float* out, const float* a, float s, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * s;
}

// Sum of a (n): fixed chunks of kSumChunk summed in double (4 accumulators so the loop
// vectorizes), chunk totals added in order. Same bits for any thread count.
float sum_forward(const float* a, int64_t n) {
  const int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
  std::vector<double> partial(chunks);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kSumChunk, end = std::min(n, begin + kSumChunk);
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    int64_t i = begin;
    for (; i + 4 <= end; i += 4)
      for (int j = 0; j < 4; ++j) acc[j] += double(a[i + j]);
    for (; i < end; ++i) acc[0] += double(a[i]);
    partial[c] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return float(total);
}

// out (rows) = sum over the last dim of a (rows, cols), each row in double.
void sum_rows_forward(float* out, const float* a, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* a_r = a + r * cols;  // (cols)
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    int64_t j = 0;
    for (; j + 4 <= cols; j += 4)
      for (int k = 0; k < 4; ++k) acc[k] += double(a_r[j + k]);
    for (; j < cols; ++j) acc[0] += double(a_r[j]);
    out[r] = float((acc[0] + acc[1]) + (acc[2] + acc[3]));
  }
}

}  // namespace sllm::kernels
