// Softmax and log-softmax over the last dim, numerically stable (row max subtracted).
// Legend: N rows, C columns (the softmax dim).
// Backward ACCUMULATES (+=) into dinp; a nullptr dinp is skipped.
//
// softmax:      y = exp(x - max) / sum(exp(x - max));   dinp += y * (dout - sum(dout * y))
// log_softmax:  y = x - max - log(sum(exp(x - max)));    dinp += dout - exp(y) * sum(dout)
// Both backward kernels take the forward's output y, not its input.
#include <cmath>

#include "kernels/cpu/vec_math.h"
#include "kernels/kernels.h"

namespace sllm::kernels {
namespace {
// Below this many elements a kernel runs on one thread: a parallel region costs microseconds.
constexpr int64_t kParallelMin = 1 << 14;
}  // namespace

void softmax_forward(float* out, const float* inp, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;  // (C)
    float* y = out + n * C;        // (C)
    const float m = lane_max(x, C);
    for (int64_t i = 0; i < C; ++i) y[i] = exp_approx(x[i] - m);
    const float inv_sum = 1.0f / lane_sum(C, [&](int64_t i) { return y[i]; });
    for (int64_t i = 0; i < C; ++i) y[i] *= inv_sum;
  }
}

void softmax_backward(float* dinp, const float* dout, const float* out, int64_t N, int64_t C) {
  if (!dinp) return;
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    const float* y = out + n * C;    // (C)
    const float* dy = dout + n * C;  // (C)
    float* dx = dinp + n * C;        // (C)
    const float dot = lane_sum(C, [&](int64_t i) { return dy[i] * y[i]; });
    for (int64_t i = 0; i < C; ++i) dx[i] += y[i] * (dy[i] - dot);
  }
}

void log_softmax_forward(float* out, const float* inp, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;  // (C)
    float* y = out + n * C;        // (C)
    const float m = lane_max(x, C);
    const float log_sum = std::log(lane_sum(C, [&](int64_t i) { return exp_approx(x[i] - m); }));
    for (int64_t i = 0; i < C; ++i) y[i] = (x[i] - m) - log_sum;
  }
}

void log_softmax_backward(float* dinp, const float* dout, const float* out, int64_t N, int64_t C) {
  if (!dinp) return;
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    const float* y = out + n * C;    // (C)
    const float* dy = dout + n * C;  // (C)
    float* dx = dinp + n * C;        // (C)
    const float dsum = lane_sum(C, [&](int64_t i) { return dy[i]; });
    for (int64_t i = 0; i < C; ++i) dx[i] += dy[i] - exp_approx(y[i]) * dsum;
  }
}

void softmax_forward_ref(float* out, const float* inp, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    double m = -INFINITY, sum = 0.0;
    for (int64_t i = 0; i < C; ++i) m = std::fmax(m, double(x[i]));
    for (int64_t i = 0; i < C; ++i) sum += std::exp(x[i] - m);
    for (int64_t i = 0; i < C; ++i) out[n * C + i] = float(std::exp(x[i] - m) / sum);
  }
}

void softmax_backward_ref(float* dinp, const float* dout, const float* out, int64_t N, int64_t C) {
  if (!dinp) return;
  for (int64_t n = 0; n < N; ++n) {
    double dot = 0.0;
    for (int64_t i = 0; i < C; ++i) dot += double(dout[n * C + i]) * out[n * C + i];
    for (int64_t i = 0; i < C; ++i) dinp[n * C + i] += float(out[n * C + i] * (dout[n * C + i] - dot));
  }
}

void log_softmax_forward_ref(float* out, const float* inp, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    double m = -INFINITY, sum = 0.0;
    for (int64_t i = 0; i < C; ++i) m = std::fmax(m, double(x[i]));
    for (int64_t i = 0; i < C; ++i) sum += std::exp(x[i] - m);
    const double log_sum = std::log(sum);
    for (int64_t i = 0; i < C; ++i) out[n * C + i] = float(x[i] - m - log_sum);
  }
}

void log_softmax_backward_ref(float* dinp, const float* dout, const float* out, int64_t N, int64_t C) {
  if (!dinp) return;
  for (int64_t n = 0; n < N; ++n) {
    double dsum = 0.0;
    for (int64_t i = 0; i < C; ++i) dsum += dout[n * C + i];
    for (int64_t i = 0; i < C; ++i)
      dinp[n * C + i] += float(dout[n * C + i] - std::exp(double(out[n * C + i])) * dsum);
  }
}

}  // namespace sllm::kernels
