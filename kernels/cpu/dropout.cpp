// Inverted dropout (Srivastava et al. 2014; "inverted": survivors are scaled by 1/(1-p) at
// train time so inference needs no rescale).
// Legend: n elements.
// Backward ACCUMULATES (+=) into dinp; a nullptr dinp is skipped.
//
// The keep decision for element i is a pure function of (seed, offset + i): a counter-based
// RNG (kernels/dropout_rng.h, shared with the CUDA kernel so both draw the same mask). So
// the mask does not depend on the thread count or on how the tensor is split into calls.
#include "kernels/dropout_rng.h"
#include "kernels/kernels.h"

namespace sllm::kernels {
namespace {

constexpr int64_t kParallelMin = 1 << 14;  // below this, one thread

}  // namespace

// mask (n) = 1 keeps, 0 drops; out (n) = inp * mask / (1 - p). p == 1 drops everything.
void dropout_forward(float* out, uint8_t* mask, const float* inp, int64_t n, float p, uint64_t seed,
                     uint64_t offset) {
  const uint64_t threshold = dropout_threshold(p);
  const float scale = dropout_scale(p);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t keep = dropout_keep(seed, offset + uint64_t(i), threshold);
    mask[i] = keep;
    out[i] = keep ? inp[i] * scale : 0.0f;
  }
}

// dinp (n) += dout * mask / (1 - p).
void dropout_backward(float* dinp, const float* dout, const uint8_t* mask, int64_t n, float p) {
  if (!dinp) return;
  const float scale = dropout_scale(p);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dinp[i] += mask[i] ? dout[i] * scale : 0.0f;
}

}  // namespace sllm::kernels
