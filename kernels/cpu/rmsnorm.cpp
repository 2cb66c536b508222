// RMSNorm over the last dim (Zhang & Sennrich 2019), as in Llama / HF LlamaRMSNorm.
// Legend: N rows (= B*T), C channels.
// Backward ACCUMULATES (+=) into dinp and dweight; a nullptr gradient is skipped.
//
// Forward:  rstd = 1/sqrt(sum(x^2)/C + eps),  norm = x * rstd,  out = norm * weight.
// Backward: dnorm = dout * weight,
//           dinp    += rstd * (dnorm - norm * mean(dnorm * norm)),
//           dweight += sum over rows of dout * norm.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/vec_math.h"
#include "kernels/kernels.h"

namespace sllm::kernels {
namespace {
// Below this many elements a kernel runs on one thread: a parallel region costs microseconds.
constexpr int64_t kParallelMin = 1 << 14;
// dweight is summed per fixed block of rows, then the blocks are added in order: bitwise
// reproducible for any thread count, and no atomics.
constexpr int64_t kRowBlock = 64;
}  // namespace

// rstd (N) may be nullptr when nothing will run backward (inference).
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C,
                     float eps) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;  // (C)
    float* y = out + n * C;        // (C)
    const float ms = lane_sum(C, [&](int64_t i) { return x[i] * x[i]; }) / float(C);
    const float s = 1.0f / std::sqrt(ms + eps);
    for (int64_t i = 0; i < C; ++i) y[i] = (x[i] * s) * weight[i];
    if (rstd) rstd[n] = s;
  }
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C) {
  if (!dinp && !dweight) return;
  const int64_t blocks = (N + kRowBlock - 1) / kRowBlock;
  std::vector<float> partial(dweight ? blocks * C : 0);  // (blocks, C)

#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    float* pw = dweight ? partial.data() + blk * C : nullptr;  // (C)
    const int64_t n1 = std::min(N, (blk + 1) * kRowBlock);
    for (int64_t n = blk * kRowBlock; n < n1; ++n) {
      const float* x = inp + n * C;    // (C)
      const float* dy = dout + n * C;  // (C)
      const float s = rstd[n];
      if (dinp) {
        float* dx = dinp + n * C;  // (C)
        const float dnorm_norm_mean =
            lane_sum(C, [&](int64_t i) { return weight[i] * dy[i] * (x[i] * s); }) / float(C);
        for (int64_t i = 0; i < C; ++i) dx[i] += (weight[i] * dy[i] - (x[i] * s) * dnorm_norm_mean) * s;
      }
      if (dweight)
        for (int64_t i = 0; i < C; ++i) pw[i] += dy[i] * (x[i] * s);
    }
  }
  if (!dweight) return;
#pragma omp parallel for schedule(static) if (blocks * C >= kParallelMin)
  for (int64_t i = 0; i < C; ++i) {
    float sw = 0.0f;
    for (int64_t blk = 0; blk < blocks; ++blk) sw += partial[blk * C + i];
    dweight[i] += sw;
  }
}

void rmsnorm_forward_ref(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C,
                         float eps) {
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    double ms = 0.0;
    for (int64_t i = 0; i < C; ++i) ms += double(x[i]) * x[i];
    ms /= double(C);
    const double s = 1.0 / std::sqrt(ms + double(eps));
    for (int64_t i = 0; i < C; ++i) out[n * C + i] = float(x[i] * s * weight[i]);
    if (rstd) rstd[n] = float(s);
  }
}

void rmsnorm_backward_ref(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                          const float* rstd, int64_t N, int64_t C) {
  std::vector<double> dw(C, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    const float* dy = dout + n * C;
    const double s = rstd[n];
    double dnorm_norm_mean = 0.0;
    for (int64_t i = 0; i < C; ++i) {
      dnorm_norm_mean += double(weight[i]) * dy[i] * (x[i] * s);
      dw[i] += dy[i] * (x[i] * s);
    }
    dnorm_norm_mean /= double(C);
    if (dinp)
      for (int64_t i = 0; i < C; ++i)
        dinp[n * C + i] += float((double(weight[i]) * dy[i] - x[i] * s * dnorm_norm_mean) * s);
  }
  if (dweight)
    for (int64_t i = 0; i < C; ++i) dweight[i] += float(dw[i]);
}

}  // namespace sllm::kernels
