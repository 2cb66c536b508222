// Inverted dropout (Srivastava et al. 2014; "inverted": survivors are scaled by 1/(1-p) at
// train time so inference needs no rescale).
// Legend: n elements.
// Backward ACCUMULATES (+=) into dinp; a nullptr dinp is skipped.
//
// The keep decision for element i is a pure function of (seed, offset + i): a counter-based
// RNG (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3") built from the
// splitmix64 finalizer (Steele, Lea & Flood 2014). So the mask does not depend on the
// thread count or on how the tensor is split into calls, and it is cheap to regenerate.
#include "kernels/kernels.h"

namespace sllm::kernels {
namespace {

constexpr int64_t kParallelMin = 1 << 14;  // below this, one thread

// splitmix64: the state after `counter` steps from `seed`, then its output mix.
inline uint64_t splitmix64_at(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + (counter + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

// mask (n) = 1 keeps, 0 drops; out (n) = inp * mask / (1 - p). p == 1 drops everything.
void dropout_forward(float* out, uint8_t* mask, const float* inp, int64_t n, float p, uint64_t seed,
                     uint64_t offset) {
  // Keep iff the top 32 random bits u satisfy u >= p * 2^32, which happens with probability
  // 1 - p (to 2^-32).
  const uint64_t threshold = uint64_t(double(p) * 4294967296.0);
  const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t keep = (splitmix64_at(seed, offset + uint64_t(i)) >> 32) >= threshold;
    mask[i] = keep;
    out[i] = keep ? inp[i] * scale : 0.0f;
  }
}

// dinp (n) += dout * mask / (1 - p).
void dropout_backward(float* dinp, const float* dout, const uint8_t* mask, int64_t n, float p) {
  if (!dinp) return;
  const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dinp[i] += mask[i] ? dout[i] * scale : 0.0f;
}

}  // namespace sllm::kernels
