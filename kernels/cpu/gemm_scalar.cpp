// Portable SGEMM micro-kernel and packing: the fallback for CPUs without AVX2, and the
// packing routine the AVX2 path shares (gemm_internal.h explains the blocking scheme).
// Dimension legend: MR x NR register tile, kc the packed K slice, mr/nr the valid part of
// an edge tile. Plain C++: the compiler may vectorize it for whatever -march it targets.
#include <cstdint>

#include "kernels/cpu/gemm_internal.h"

namespace sllm::kernels::gemm_detail {

void pack_generic(bool trans, const float* X, int64_t ld, int64_t i0, int64_t rows, int64_t p0, int64_t kc,
                  int width, float* dst) {
  for (int64_t r0 = 0; r0 < rows; r0 += width) {
    float* panel = dst + r0 * kc;  // (kc, width)
    for (int64_t k = 0; k < kc; ++k) {
      for (int r = 0; r < width; ++r) {
        const int64_t i = i0 + r0 + r;
        float v = 0.0f;  // zero padding past the last row
        if (r0 + r < rows) v = trans ? X[(p0 + k) * ld + i] : X[i * ld + p0 + k];
        panel[k * width + r] = v;
      }
    }
  }
}

namespace {

constexpr int kMR = 4;
constexpr int kNR = 8;

void kernel_4x8(int64_t kc, const float* __restrict Ap, const float* __restrict Bp, float* C, int64_t ldc, int mr,
                int nr, float alpha, float beta) {
  float acc[kMR][kNR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const float* a = Ap + k * kMR;  // (MR)
    const float* b = Bp + k * kNR;  // (NR)
    for (int r = 0; r < kMR; ++r)
      for (int c = 0; c < kNR; ++c) acc[r][c] += a[r] * b[c];
  }
  for (int r = 0; r < mr; ++r) {
    for (int c = 0; c < nr; ++c) {
      float* out = C + r * ldc + c;
      *out = beta == 0.0f ? alpha * acc[r][c] : alpha * acc[r][c] + beta * *out;
    }
  }
}

}  // namespace

const Isa kIsaScalar = {"scalar", kMR, kNR, /*KC=*/256, /*MC=*/1024, /*NC=*/512, pack_generic, kernel_4x8};

}  // namespace sllm::kernels::gemm_detail
