// The machine's single-precision FMA peak, measured: what `sllm bench gemm` judges its
// GFLOP/s against (DESIGN.md: CPU kernels are judged against the machine's FMA peak).
#pragma once
#include <string>

namespace sllm::cli {

// GFLOP/s of a register-only FMA loop in the SIMD width of `isa` (kernels::sgemm_isa():
// "avx512", "avx2" or "scalar"), summed over `threads` OpenMP threads (one loop each), median
// of 3 runs of about `seconds` each. An FMA counts 2 flops per lane. "scalar" (sgemm's
// portable path, taken on CPUs without AVX2) measures 4-lane SSE multiply-adds: the x86-64
// baseline the compiler vectorizes that path to. Raises sllm::Error if this CPU lacks `isa`.
double fma_peak_gflops(const std::string& isa, int threads, double seconds = 0.2);

}  // namespace sllm::cli
