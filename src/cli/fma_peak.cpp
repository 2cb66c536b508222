// An FMA-throughput loop per SIMD width. Why several accumulator chains: an FMA's result is
// ready 4-5 cycles after it issues, and a core issues up to 2 FMAs per cycle (two ports), so
// a single chain (acc = acc * b + c) would run at 1/8-1/10 of peak. With 12 independent
// chains there are always >= 8-10 FMAs in flight, enough to fill both ports on Zen 3,
// Skylake-X and Ice Lake; 12 accumulators + 2 operands still fit in AVX2's 16 registers,
// so nothing spills to memory. Each path is compiled for its ISA with a target attribute
// (no -march=native needed) and only called after __builtin_cpu_supports says the CPU has it.
#include "cli/fma_peak.h"

#include <omp.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "core/error.h"

namespace sllm::cli {
namespace {

constexpr int kChains = 12;

// Each loop returns a sum of its accumulators so the compiler cannot drop the work. With
// b just below 1, acc = acc * b + c converges to c / (1 - b): no overflow, no denormals.
#if defined(__x86_64__)
__attribute__((target("avx512f"))) float loop_avx512(int64_t iters, float b, float c) {
  __m512 acc[kChains];
  for (auto& a : acc) a = _mm512_set1_ps(1.0f);
  const __m512 vb = _mm512_set1_ps(b), vc = _mm512_set1_ps(c);
  for (int64_t i = 0; i < iters; ++i)
    for (auto& a : acc) a = _mm512_fmadd_ps(a, vb, vc);
  __m512 sum = acc[0];
  for (int k = 1; k < kChains; ++k) sum = _mm512_add_ps(sum, acc[k]);
  alignas(64) float lanes[16];  // not _mm512_reduce_add_ps: GCC 12 warns inside it (-Wuninitialized)
  _mm512_store_ps(lanes, sum);
  float total = 0.0f;
  for (float x : lanes) total += x;
  return total;
}

__attribute__((target("avx2,fma"))) float loop_avx2(int64_t iters, float b, float c) {
  __m256 acc[kChains];
  for (auto& a : acc) a = _mm256_set1_ps(1.0f);
  const __m256 vb = _mm256_set1_ps(b), vc = _mm256_set1_ps(c);
  for (int64_t i = 0; i < iters; ++i)
    for (auto& a : acc) a = _mm256_fmadd_ps(a, vb, vc);
  __m256 sum = acc[0];
  for (int k = 1; k < kChains; ++k) sum = _mm256_add_ps(sum, acc[k]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  float total = 0.0f;
  for (float x : lanes) total += x;
  return total;
}

float loop_sse(int64_t iters, float b, float c) {
  __m128 acc[kChains];
  for (auto& a : acc) a = _mm_set1_ps(1.0f);
  const __m128 vb = _mm_set1_ps(b), vc = _mm_set1_ps(c);
  for (int64_t i = 0; i < iters; ++i)
    for (auto& a : acc) a = _mm_add_ps(_mm_mul_ps(a, vb), vc);
  __m128 sum = acc[0];
  for (int k = 1; k < kChains; ++k) sum = _mm_add_ps(sum, acc[k]);
  alignas(16) float lanes[4];
  _mm_store_ps(lanes, sum);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}
#endif

struct Loop {
  float (*run)(int64_t iters, float b, float c);
  int lanes;
};

Loop loop_for(const std::string& isa) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (isa == "avx512") {
    SLLM_CHECK(__builtin_cpu_supports("avx512f"), "fma peak: this CPU has no AVX-512F",
               "sgemm_isa() should not have picked avx512 here; this is a bug");
    return {loop_avx512, 16};
  }
  if (isa == "avx2") {
    SLLM_CHECK(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"), "fma peak: this CPU has no AVX2/FMA",
               "sgemm_isa() should not have picked avx2 here; this is a bug");
    return {loop_avx2, 8};
  }
  SLLM_CHECK(isa == "scalar", str("fma peak: unknown ISA '", isa, "'"), "expected avx512, avx2 or scalar");
  return {loop_sse, 4};
#else
  SLLM_CHECK(false, str("fma peak: no FMA loop for ISA '", isa, "' on this architecture"),
             "the peak is only measured on x86-64");
  return {nullptr, 0};
#endif
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

double fma_peak_gflops(const std::string& isa, int threads, double seconds) {
  SLLM_CHECK(threads >= 1, str("fma peak: threads = ", threads), "threads must be >= 1");
  const Loop loop = loop_for(isa);
  // b and c come through a volatile so the compiler cannot fold the chains into a formula.
  volatile float b_in = 0.999f, c_in = 1e-3f;
  const float b = b_in, c = c_in;
  volatile float sink = 0.0f;

  // Size the loop on one thread: grow a trial run until it lasts >= 10 ms, then scale.
  int64_t iters = 1 << 14;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    sink = sink + loop.run(iters, b, c);
    const double t = seconds_since(t0);
    if (t >= 0.01 || iters >= (int64_t(1) << 40)) {
      iters = std::max<int64_t>(1, int64_t(double(iters) * seconds / std::max(t, 1e-9)));
      break;
    }
    iters *= 4;
  }

  std::vector<double> gflops;
  for (int run = 0; run < 3; ++run) {
    int ran = 1;  // the threads OpenMP actually gave us
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
    {
      const float s = loop.run(iters, b, c);
#pragma omp critical
      {
        sink = sink + s;
        ran = omp_get_num_threads();
      }
    }
    const double t = seconds_since(t0);
    gflops.push_back(double(iters) * kChains * loop.lanes * 2.0 * ran / t / 1e9);
  }
  std::sort(gflops.begin(), gflops.end());
  return gflops[1];
}

}  // namespace sllm::cli
