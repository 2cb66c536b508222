// The CUDA simulator itself (kernels/cuda_sim, built with -DSLLM_CUDA=SIM): the semantics the
// kernel tests rely on (block barriers, warp shuffles, wmma, launch checks) and the bugs it
// promises to expose. Compiled only into the simulator build: these kernels are plain C++
// here, and a GPU run needs nothing of this.
#if SLLM_CUDA_SIM
#include <cuda_runtime.h>
#include <gtest/gtest.h>
#include <mma.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/launch.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

// Each thread writes its slot of a shared tile, then reads its right neighbour's.
template <bool kSync>
__global__ void rotate_kernel(float* out, const float* in) {
  __shared__ float tile[128];
  const int i = int(threadIdx.x);
  tile[i] = in[blockIdx.x * blockDim.x + i];
  if (kSync) __syncthreads();
  out[blockIdx.x * blockDim.x + i] = tile[(i + 1) % int(blockDim.x)];
}

TEST(CudaSim, AMissingSyncthreadsGivesWrongResults) {
  const std::vector<float> in = uniform(256, 1);
  std::vector<float> want(256);
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 128; ++i) want[size_t(b * 128 + i)] = in[size_t(b * 128 + (i + 1) % 128)];
  DeviceArray<float> x(in), with_sync(256), without_sync(256);
  SLLM_LAUNCH(2, 128, 0, rotate_kernel<true>)(with_sync.get(), x.get());
  SLLM_CUDA_CHECK_LAUNCH();
  SLLM_LAUNCH(2, 128, 0, rotate_kernel<false>)(without_sync.get(), x.get());
  SLLM_CUDA_CHECK_LAUNCH();
  expect_bitwise(with_sync.host(), want, "with __syncthreads");
  // Threads run in index order until a barrier: without one, thread i reads slot i + 1
  // before thread i + 1 wrote it (a stale value), as a GPU may.
  EXPECT_NE(without_sync.host(), want);
}

__global__ void dynamic_shared_kernel(float* out) {
  SLLM_DYNAMIC_SHARED(float, smem);
  out[threadIdx.x] = smem[threadIdx.x];  // never written
}

TEST(CudaSim, UnwrittenDynamicSharedMemoryReadsAsNaN) {
  DeviceArray<float> out(32);
  SLLM_LAUNCH(1, 32, 32 * sizeof(float), dynamic_shared_kernel)(out.get());
  SLLM_CUDA_CHECK_LAUNCH();
  for (float v : out.host()) EXPECT_TRUE(std::isnan(v));
}

__global__ void shuffle_kernel(float* sums, float* down, float* from_lane3) {
  const int lane = int(threadIdx.x % 32);
  float x = float(lane + 1);
  for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
  sums[threadIdx.x] = x;
  down[threadIdx.x] = __shfl_down_sync(0xffffffffu, float(lane), 5);
  from_lane3[threadIdx.x] = __shfl_sync(0xffffffffu, float(threadIdx.x), 3);
}

TEST(CudaSim, WarpShufflesExchangeWithinEachWarp) {
  DeviceArray<float> sums(64), down(64), from3(64);
  SLLM_LAUNCH(1, 64, 0, shuffle_kernel)(sums.get(), down.get(), from3.get());
  SLLM_CUDA_CHECK_LAUNCH();
  const std::vector<float> s = sums.host(), d = down.host(), f = from3.host();
  for (int t = 0; t < 64; ++t) {
    const int lane = t % 32;
    EXPECT_EQ(s[size_t(t)], 528.0f) << t;  // 1 + 2 + ... + 32 on every lane
    EXPECT_EQ(d[size_t(t)], float(lane + 5 < 32 ? lane + 5 : lane)) << t;
    EXPECT_EQ(f[size_t(t)], float(t - lane + 3)) << t;  // lane 3 of the thread's own warp
  }
}

__global__ void wmma_kernel(float* c, const __nv_bfloat16* a, const __nv_bfloat16* b) {
  namespace wmma = nvcuda::wmma;
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
  wmma::fill_fragment(fc, 0.0f);
  wmma::load_matrix_sync(fa, a, 16);
  wmma::load_matrix_sync(fb, b, 16);
  wmma::mma_sync(fc, fa, fb, fc);
  for (int i = 0; i < fc.num_elements; ++i) fc.x[i] *= 2.0f;
  wmma::store_matrix_sync(c, fc, 16, wmma::mem_row_major);
}

TEST(CudaSim, WmmaComputesTheTileProduct) {
  // A row-major (16, 16), B column-major (16, 16): C = 2 A B, exact in fp32 for these small
  // integers, so the comparison is bitwise.
  std::vector<uint16_t> a(256), b(256);
  std::vector<float> want(256, 0.0f);
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      a[size_t(i * 16 + j)] = f32_to_bf16(float((i + 2 * j) % 7 - 3));
      b[size_t(j * 16 + i)] = f32_to_bf16(float((3 * i + j) % 5 - 2));  // B(i, j) at column j
    }
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j)
      for (int l = 0; l < 16; ++l)
        want[size_t(i * 16 + j)] += 2.0f * bf16_to_f32(a[size_t(i * 16 + l)]) * bf16_to_f32(b[size_t(j * 16 + l)]);
  DeviceArray<uint16_t> A(a), B(b);
  DeviceArray<float> C(256);
  SLLM_LAUNCH(1, 32, 0, wmma_kernel)(C.get(), reinterpret_cast<const __nv_bfloat16*>(A.get()),
                                     reinterpret_cast<const __nv_bfloat16*>(B.get()));
  SLLM_CUDA_CHECK_LAUNCH();
  expect_bitwise(C.host(), want, "2 A B");
}

__global__ void noop_kernel() {}

TEST(CudaSim, LaunchConfigurationsAGpuRejectsAreReported) {
  SLLM_LAUNCH(1, 2048, 0, noop_kernel)();  // more than 1024 threads per block
  EXPECT_THROW(SLLM_CUDA_CHECK_LAUNCH(), sllm::Error);
  SLLM_LAUNCH(1, 32, 64 * 1024, noop_kernel)();  // more than 48 KB of dynamic shared memory
  EXPECT_THROW(SLLM_CUDA_CHECK_LAUNCH(), sllm::Error);
  SLLM_LAUNCH(1, 32, 0, noop_kernel)();
  EXPECT_NO_THROW(SLLM_CUDA_CHECK_LAUNCH());
}

__global__ void half_warp_shuffle_kernel(float* out) {
  if (threadIdx.x >= 16) return;  // half the warp leaves; the rest asks all 32 lanes
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

__global__ void split_warp_kernel() {
  if (threadIdx.x < 16) __syncthreads();  // half a warp at the block barrier,
  else __syncwarp();                       // the other half at a warp barrier: a hang on a GPU
}

__global__ void divergent_barrier_kernel(float* out) {
  if (threadIdx.x < 32) {
    __syncthreads();  // warp 0 waits for the block...
  } else {
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);  // ...while warp 1 shuffles, then
    __syncwarp();                                              // waits at a warp barrier
    __syncwarp();
    __shfl_sync(0xffffffffu, 0.0f, 0);
    __syncthreads();
  }
}

TEST(CudaSimDeathTest, BarriersSomeThreadsNeverReachAbortWithADiagnosis) {
  ::testing::GTEST_FLAG(death_test_style) = "threadsafe";
  DeviceArray<float> out(64);
  EXPECT_DEATH(SLLM_LAUNCH(1, 32, 0, half_warp_shuffle_kernel)(out.get()), "lanes that have already returned");
  EXPECT_DEATH(SLLM_LAUNCH(1, 32, 0, split_warp_kernel)(), "no thread can make progress");
  // A block barrier and a warp barrier can both complete here, so this one is legal: the
  // warps meet again at the last __syncthreads.
  SLLM_LAUNCH(1, 64, 0, divergent_barrier_kernel)(out.get());
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
#endif  // SLLM_CUDA_SIM
