// Shared pieces of the CUDA kernel tests: the skip-without-GPU fixture, a device array that
// round-trips through the host, and the tolerances (each with its reason). Inputs and
// comparisons come from tests/kernels/kernel_test_support.h, the CPU kernel tests' helpers.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cuda_kernels.h"
#include "ops/device.h"
#include "tests/kernels/kernel_test_support.h"

namespace sllm::kernels::cuda::testing {

using sllm::kernels::testing::expect_bitwise;
using sllm::kernels::testing::expect_close;
using sllm::kernels::testing::plus;
using sllm::kernels::testing::random_ids;
using sllm::kernels::testing::Tolerance;
using sllm::kernels::testing::uniform;

// ---- tolerances (written once, each with its reason) -----------------------------------
// Checks are |got - want| <= abs * max|want| + rel * |want| (kernel_test_support.h), with
// `want` from the CPU `_ref` kernels (double inside, rounded once to float).
//
// fp32 pointwise: CUDA's expf / erff / division are within 2 ulp (CUDA C Programming Guide,
// "Mathematical Functions"), chained over a few operations: ~1e-6 relative.
inline constexpr Tolerance kPointwise{2e-6, 1e-5};
// fp32 reductions (rows of norms, softmax, GEMM dot products, attention's tiles): float
// sums in a different order than the double reference, error ~ sqrt(len) * 6e-8 * scale;
// 1e-5 relative to the largest value is far below a dropped or doubled term (~1/len).
inline constexpr Tolerance kReduction{1e-5, 1e-5};
// TF32 GEMM: inputs rounded to a 10-bit mantissa (unit roundoff 2^-11 ~ 4.9e-4), so each
// product carries ~1e-3 relative error; random signs average it over K: 2e-3 of the
// largest output is a safe bound that still catches a wrong operand or transpose.
inline constexpr Tolerance kTf32{2e-3, 2e-3};
// bf16 GEMM: the reference is computed from the same bf16-rounded inputs, whose products
// are exact in fp32 (8-bit x 8-bit mantissas), so only the fp32 accumulation differs; tensor
// cores align addends by truncation rather than round-to-nearest, so that error can grow
// like K * 2^-23 (1.5e-5 at K = 129) instead of sqrt(K): 1e-4. (Against unrounded fp32
// inputs the bound would be ~1e-2, bf16's 8-bit mantissa.)
inline constexpr Tolerance kBf16FromRoundedInputs{1e-4, 1e-4};
// Attention (forward and backward): float sums over up to a hundred keys x HD terms plus
// expf within 2 ulp, against the double reference; the bound the CPU fused kernel is held
// to in tests/kernels/test_attention.cpp (observed ~3e-6 there).
inline constexpr Tolerance kAttention{2e-5, 1e-4};

// Every CUDA test derives from this: without a visible GPU it skips with a message.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (device_count() == 0)
      GTEST_SKIP() << "no CUDA device visible (device_count() == 0): CUDA kernels are compiled but "
                      "not run here; run tests/test_cuda on a GPU machine";
  }
};

// The op- and model-level CUDA tests: the kernels' fixture plus ops::init_device (the
// caching allocator, device gradient accumulation and the bf16 shadows' cast).
class CudaOpsTest : public CudaTest {
 protected:
  void SetUp() override {
    CudaTest::SetUp();
    if (IsSkipped()) return;
    ops::init_device(Device::CUDA);
  }
};

// ||got - want|| / ||want|| (L2 over all elements), for results that differ by many small
// roundings (a whole bf16 model against fp32).
inline double relative_l2(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    diff += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    norm += double(want[i]) * want[i];
  }
  return std::sqrt(diff / std::max(norm, 1e-300));
}

// A device copy of a host vector (or n zeros), freed at scope exit.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(const std::vector<T>& host) : n_(host.size()) {
    ptr_ = static_cast<T*>(device_alloc(bytes()));
    copy_h2d(ptr_, host.data(), bytes());
  }
  explicit DeviceArray(size_t n) : n_(n) {
    ptr_ = static_cast<T*>(device_alloc(bytes()));
    memset_zero(ptr_, bytes());
  }
  ~DeviceArray() { device_free(ptr_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* get() const { return ptr_; }
  std::vector<T> host() const {
    std::vector<T> out(n_);
    copy_d2h(out.data(), ptr_, bytes());
    return out;
  }

 private:
  size_t bytes() const { return n_ * sizeof(T); }
  size_t n_;
  T* ptr_ = nullptr;
};

}  // namespace sllm::kernels::cuda::testing
