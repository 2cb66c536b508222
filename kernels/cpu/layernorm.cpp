// LayerNorm over the last dim (Ba, Kiros & Hinton 2016), GPT-2 style with weight and bias.
// Legend: N rows (= B*T), C channels.
// Backward ACCUMULATES (+=) into dinp, dweight, dbias; a nullptr gradient is skipped.
//
// Forward:  mean = sum(x)/C,  var = sum((x - mean)^2)/C,  rstd = 1/sqrt(var + eps),
//           norm = (x - mean) * rstd,  out = norm * weight + bias.
// Backward (llm.c layernorm_backward): dnorm = dout * weight,
//           dinp    += rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)),
//           dweight += sum over rows of dout * norm,  dbias += sum over rows of dout.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/vec_math.h"
#include "kernels/kernels.h"

namespace sllm::kernels {
namespace {
// Below this many elements a kernel runs on one thread: a parallel region costs microseconds.
constexpr int64_t kParallelMin = 1 << 14;
// Parameter gradients are summed per fixed block of rows, then the blocks are added in
// order: bitwise reproducible for any thread count, and no atomics.
constexpr int64_t kRowBlock = 64;
}  // namespace

// mean, rstd (N) may be nullptr when nothing will run backward (inference).
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;  // (C)
    float* y = out + n * C;        // (C)
    const float m = lane_sum(C, [&](int64_t i) { return x[i]; }) / float(C);
    const float var = lane_sum(C, [&](int64_t i) { return (x[i] - m) * (x[i] - m); }) / float(C);
    const float s = 1.0f / std::sqrt(var + eps);
    if (bias)
      for (int64_t i = 0; i < C; ++i) y[i] = (x[i] - m) * s * weight[i] + bias[i];
    else
      for (int64_t i = 0; i < C; ++i) y[i] = (x[i] - m) * s * weight[i];
    if (mean) mean[n] = m;
    if (rstd) rstd[n] = s;
  }
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C) {
  const bool params = dweight || dbias;
  if (!dinp && !params) return;
  const int64_t blocks = (N + kRowBlock - 1) / kRowBlock;
  std::vector<float> partial(params ? blocks * 2 * C : 0);  // (blocks, 2, C): dweight, dbias rows

#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    float* pw = params ? partial.data() + blk * 2 * C : nullptr;  // (C)
    float* pb = params ? pw + C : nullptr;                          // (C)
    const int64_t n1 = std::min(N, (blk + 1) * kRowBlock);
    for (int64_t n = blk * kRowBlock; n < n1; ++n) {
      const float* x = inp + n * C;    // (C)
      const float* dy = dout + n * C;  // (C)
      const float m = mean[n], s = rstd[n];
      if (dinp) {
        float* dx = dinp + n * C;  // (C)
        const float dnorm_mean = lane_sum(C, [&](int64_t i) { return weight[i] * dy[i]; }) / float(C);
        const float dnorm_norm_mean =
            lane_sum(C, [&](int64_t i) { return weight[i] * dy[i] * ((x[i] - m) * s); }) / float(C);
        for (int64_t i = 0; i < C; ++i) {
          const float norm = (x[i] - m) * s;
          dx[i] += (weight[i] * dy[i] - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
      }
      if (params)
        for (int64_t i = 0; i < C; ++i) {
          pw[i] += dy[i] * ((x[i] - m) * s);
          pb[i] += dy[i];
        }
    }
  }
  if (!params) return;
#pragma omp parallel for schedule(static) if (blocks * C >= kParallelMin)
  for (int64_t i = 0; i < C; ++i) {
    float sw = 0.0f, sb = 0.0f;
    for (int64_t blk = 0; blk < blocks; ++blk) {
      sw += partial[blk * 2 * C + i];
      sb += partial[blk * 2 * C + C + i];
    }
    if (dweight) dweight[i] += sw;
    if (dbias) dbias[i] += sb;
  }
}

void layernorm_forward_ref(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                           const float* bias, int64_t N, int64_t C, float eps) {
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    double m = 0.0;
    for (int64_t i = 0; i < C; ++i) m += x[i];
    m /= double(C);
    double var = 0.0;
    for (int64_t i = 0; i < C; ++i) var += (x[i] - m) * (x[i] - m);
    var /= double(C);
    const double s = 1.0 / std::sqrt(var + double(eps));
    for (int64_t i = 0; i < C; ++i)
      out[n * C + i] = float((x[i] - m) * s * weight[i] + (bias ? bias[i] : 0.0f));
    if (mean) mean[n] = float(m);
    if (rstd) rstd[n] = float(s);
  }
}

void layernorm_backward_ref(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                            const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C) {
  std::vector<double> dw(C, 0.0), db(C, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    const float* dy = dout + n * C;
    const double m = mean[n], s = rstd[n];
    double dnorm_mean = 0.0, dnorm_norm_mean = 0.0;
    for (int64_t i = 0; i < C; ++i) {
      const double norm = (x[i] - m) * s, dnorm = double(weight[i]) * dy[i];
      dnorm_mean += dnorm;
      dnorm_norm_mean += dnorm * norm;
      dw[i] += double(dy[i]) * norm;
      db[i] += dy[i];
    }
    dnorm_mean /= double(C);
    dnorm_norm_mean /= double(C);
    if (dinp)
      for (int64_t i = 0; i < C; ++i) {
        const double norm = (x[i] - m) * s, dnorm = double(weight[i]) * dy[i];
        dinp[n * C + i] += float((dnorm - dnorm_mean - norm * dnorm_norm_mean) * s);
      }
  }
  for (int64_t i = 0; i < C; ++i) {
    if (dweight) dweight[i] += float(dw[i]);
    if (dbias) dbias[i] += float(db[i]);
  }
}

}  // namespace sllm::kernels
