// The tensor-core primitives of kernels/cuda/mma_sm80.cuh against the register layouts the
// PTX ISA specifies ("Matrix Fragments for mma.m16n8k16 with floating point type"; "Warp-level
// matrix load instruction: ldmatrix"). Each test kernel builds or reads every lane's
// registers by those formulas written out again here, independently of the header, and the
// results are compared with a plain matrix product or the source tile: a layout mistake in
// the simulator's emulation (which the attention kernels would otherwise inherit silently)
// fails here. On a GPU the same kernels check the hardware against the same formulas.
// The test kernels are device code in a .cpp: the simulator build compiles them as C++; the
// nvcc build compiles tests/ with the host compiler, so there this file is empty (on a GPU
// the attention tests exercise the same primitives against the CPU reference).
#if SLLM_CUDA_SIM
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/mma_sm80.cuh"
#include "tensor/dtype.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

class CudaMma : public CudaTest {};

// Small integers: every product and sum is exact in fp32, so the comparison is bitwise.
float a_value(int r, int k) { return float((r * 5 + k * 3) % 11 - 5); }
float b_value(int k, int n) { return float((k * 7 + n * 2) % 9 - 4); }
float c_value(int r, int n) { return float(r - n); }

__device__ inline uint32_t bits_of(const __nv_bfloat16* m, int i) {
  uint16_t lo, hi;
  memcpy(&lo, m + i, 2);
  memcpy(&hi, m + i + 1, 2);
  return uint32_t(lo) | (uint32_t(hi) << 16);
}

// a (16, 16) row-major, b (16, 8) row-major (k, n), c (16, 8) fp32 in and out.
__global__ void mma_kernel(float* c, const __nv_bfloat16* a, const __nv_bfloat16* b) {
  const int lane = int(threadIdx.x), g = lane / 4, t = lane % 4;
  // A: a[0] = (g, 2t..), a[1] = (g+8, 2t..), a[2] = (g, 2t+8..), a[3] = (g+8, 2t+8..)
  const uint32_t ra[4] = {bits_of(a, g * 16 + 2 * t), bits_of(a, (g + 8) * 16 + 2 * t),
                          bits_of(a, g * 16 + 2 * t + 8), bits_of(a, (g + 8) * 16 + 2 * t + 8)};
  // B: b[0] = (k 2t, 2t+1; n g), b[1] = (k 2t+8, 2t+9; n g): two rows of the (k, n) matrix.
  __nv_bfloat16 col[4] = {b[(2 * t) * 8 + g], b[(2 * t + 1) * 8 + g], b[(2 * t + 8) * 8 + g], b[(2 * t + 9) * 8 + g]};
  const uint32_t rb[2] = {bits_of(col, 0), bits_of(col, 2)};
  // C, D: d[0], d[1] = (g, 2t), (g, 2t+1); d[2], d[3] = (g+8, 2t), (g+8, 2t+1).
  float d[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]};
  mma::mma_m16n8k16(d, ra, rb);
  __syncwarp();
  c[g * 8 + 2 * t] = d[0];
  c[g * 8 + 2 * t + 1] = d[1];
  c[(g + 8) * 8 + 2 * t] = d[2];
  c[(g + 8) * 8 + 2 * t + 1] = d[3];
}

TEST_F(CudaMma, M16n8k16MatchesAPlainProduct) {
  std::vector<bf16> a(256), b(128);
  std::vector<float> c(128), want(128);
  for (int r = 0; r < 16; ++r)
    for (int k = 0; k < 16; ++k) a[size_t(r * 16 + k)].bits = f32_to_bf16(a_value(r, k));
  for (int k = 0; k < 16; ++k)
    for (int n = 0; n < 8; ++n) b[size_t(k * 8 + n)].bits = f32_to_bf16(b_value(k, n));
  for (int r = 0; r < 16; ++r)
    for (int n = 0; n < 8; ++n) {
      c[size_t(r * 8 + n)] = c_value(r, n);
      float acc = c_value(r, n);
      for (int k = 0; k < 16; ++k) acc += a_value(r, k) * b_value(k, n);
      want[size_t(r * 8 + n)] = acc;
    }
  DeviceArray<bf16> a_d(a), b_d(b);
  DeviceArray<float> c_d(c);
  SLLM_LAUNCH(1, 32, 0, mma_kernel)(c_d.get(), reinterpret_cast<const __nv_bfloat16*>(a_d.get()),
                                    reinterpret_cast<const __nv_bfloat16*>(b_d.get()));
  SLLM_CUDA_CHECK_LAUNCH();
  expect_bitwise(c_d.host(), want, "D = A B + C");
}

// A 16 x 24 tile of 16-bit values (value = its index) in shared memory, row stride 24; the
// four 8x8 tiles ldmatrix reads are at (rows 0-7, cols 0-7), (8-15, 0), (0, 16), (8, 8):
// lanes 8i..8i+7 pass the rows of tile i. out[lane * 4 + i] = register i, both halves.
template <bool kTrans>
__global__ void ldmatrix_kernel(uint32_t* out, const uint16_t* src) {
  alignas(16) __shared__ uint16_t tile[16 * 24];
  for (int i = int(threadIdx.x); i < 16 * 24; i += 32) tile[i] = src[i];
  __syncwarp();
  const int lane = int(threadIdx.x), m = lane / 8, r = lane % 8;
  const int row0[4] = {0, 8, 0, 8}, col0[4] = {0, 0, 16, 8};
  uint32_t reg[4];
  const uint16_t* row = tile + (row0[m] + r) * 24 + col0[m];
  if (kTrans)
    mma::ldmatrix_x4_trans(reg, row);
  else
    mma::ldmatrix_x4(reg, row);
  for (int i = 0; i < 4; ++i) out[lane * 4 + i] = reg[i];
}

template <bool kTrans>
void check_ldmatrix() {
  std::vector<uint16_t> src(16 * 24);
  for (size_t i = 0; i < src.size(); ++i) src[i] = uint16_t(i);
  DeviceArray<uint16_t> src_d(src);
  DeviceArray<uint32_t> out_d(32 * 4);
  SLLM_LAUNCH(1, 32, 0, ldmatrix_kernel<kTrans>)(out_d.get(), src_d.get());
  SLLM_CUDA_CHECK_LAUNCH();
  const std::vector<uint32_t> out = out_d.host();
  const int row0[4] = {0, 8, 0, 8}, col0[4] = {0, 0, 16, 8};
  int bad = 0;
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    for (int i = 0; i < 4; ++i) {
      auto at = [&](int rr, int cc) { return uint32_t((row0[i] + rr) * 24 + col0[i] + cc); };
      // Plain: tile_i[g][2t], tile_i[g][2t+1]. Transposed: tile_i[2t][g], tile_i[2t+1][g].
      const uint32_t lo = kTrans ? at(2 * t, g) : at(g, 2 * t), hi = kTrans ? at(2 * t + 1, g) : at(g, 2 * t + 1);
      const uint32_t want = lo | (hi << 16), got = out[size_t(lane * 4 + i)];
      if (got != want && ++bad <= 5)
        ADD_FAILURE() << (kTrans ? "trans " : "") << "lane " << lane << " register " << i << ": got 0x" << std::hex
                      << got << " want 0x" << want;
    }
  }
  EXPECT_EQ(bad, 0);
}

TEST_F(CudaMma, LdmatrixGivesEachLaneItsFragmentPiece) { check_ldmatrix<false>(); }
TEST_F(CudaMma, LdmatrixTransGivesEachLaneTheTransposedPiece) { check_ldmatrix<true>(); }

// pack_bf16x2 puts the first value in the low half, rounded to nearest even.
__global__ void pack_kernel(uint32_t* out, float lo, float hi) { out[threadIdx.x] = mma::pack_bf16x2(lo, hi); }

TEST_F(CudaMma, PackPutsTheFirstValueLow) {
  DeviceArray<uint32_t> out(1);
  const float lo = 1.0f + 1.0f / 256 + 1.0f / 1024, hi = -3.0f;  // lo rounds up to 1 + 2^-7
  SLLM_LAUNCH(1, 1, 0, pack_kernel)(out.get(), lo, hi);
  SLLM_CUDA_CHECK_LAUNCH();
  EXPECT_EQ(out.host()[0], uint32_t(f32_to_bf16(lo)) | (uint32_t(f32_to_bf16(hi)) << 16));
  EXPECT_EQ(f32_to_bf16(lo), f32_to_bf16(1.0f + 1.0f / 128));
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
#endif  // SLLM_CUDA_SIM
