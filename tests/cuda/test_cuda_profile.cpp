// The GPU-time profile (kernels/cuda/profile.cpp, `sllm bench train --profile`): nothing is
// recorded while it is off; on, every launch, cuBLAS GEMM and memset is attributed to its
// name with the right call count; the report is stable after profile_end() and cleared by
// the next profile_begin(). Times are only checked to be non-negative: they are timings.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

class CudaProfile : public CudaTest {
 protected:
  // The buffers are allocated after the skip check: without a device allocating throws.
  void SetUp() override {
    CudaTest::SetUp();
    if (IsSkipped()) return;
    x_.emplace(uniform(37, 1));
    a_.emplace(uniform(15, 2));
    b_.emplace(uniform(10, 3));
    c_.emplace(size_t(6));
  }
  void TearDown() override { profile_end(); }  // a failed test must not leave it on

  // Three scale launches, one GEMM, one memset: 10 + 37 elements, a (3, 5) x (5, 2) product.
  void issue_work() {
    scale_forward(x_->get(), x_->get(), 2.0f, 10);
    scale_forward(x_->get(), x_->get(), 0.5f, 37);
    scale_forward(x_->get(), x_->get(), 1.0f, 1);
    sgemm(false, false, 3, 2, 5, 1.0f, a_->get(), 5, b_->get(), 2, 0.0f, c_->get(), 2);
    memset_zero(c_->get(), 6 * sizeof(float));
  }

  static const KernelTime* find(const std::vector<KernelTime>& report, const std::string& name) {
    const auto it = std::find_if(report.begin(), report.end(), [&](const KernelTime& k) { return k.name == name; });
    return it == report.end() ? nullptr : &*it;
  }

  std::optional<DeviceArray<float>> x_, a_, b_, c_;  // (37), A (3, 5), B (5, 2), C (3, 2)
};

TEST_F(CudaProfile, OffRecordsNothing) {
  profile_begin();
  profile_end();
  EXPECT_FALSE(profiling());
  issue_work();
  EXPECT_TRUE(profile_report().empty());
}

TEST_F(CudaProfile, OnAttributesEachCallToItsName) {
  profile_begin();
  EXPECT_TRUE(profiling());
  issue_work();
  profile_end();
  const std::vector<KernelTime> report = profile_report();
  ASSERT_EQ(report.size(), 3u);
  const KernelTime* scale = find(report, "scale_forward_kernel<float>");
  const KernelTime* gemm = find(report, "cublas gemm f32->f32 NN M=3 N=2 K=5");
  const KernelTime* memset = find(report, "memset");
  ASSERT_NE(scale, nullptr);
  ASSERT_NE(gemm, nullptr) << "first entry: " << report[0].name;
  ASSERT_NE(memset, nullptr);
  EXPECT_EQ(scale->calls, 3);
  EXPECT_EQ(gemm->calls, 1);
  EXPECT_EQ(memset->calls, 1);
  for (const KernelTime& k : report) EXPECT_GE(k.ms, 0.0) << k.name;
  for (size_t i = 1; i < report.size(); ++i) EXPECT_GE(report[i - 1].ms, report[i].ms) << "sorted by time";
}

TEST_F(CudaProfile, ReportAfterEndIsStableAndBeginClears) {
  profile_begin();
  issue_work();
  issue_work();
  profile_end();
  const std::vector<KernelTime> first = profile_report();
  issue_work();  // profiling is off: must not change the report
  const std::vector<KernelTime> second = profile_report();
  ASSERT_EQ(first.size(), second.size());
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].name, second[i].name);
    EXPECT_EQ(first[i].calls, second[i].calls);
    EXPECT_EQ(first[i].ms, second[i].ms);
  }
  const KernelTime* scale = find(first, "scale_forward_kernel<float>");
  ASSERT_NE(scale, nullptr);
  EXPECT_EQ(scale->calls, 6);

  profile_begin();  // clears; then one launch only
  scale_forward(x_->get(), x_->get(), 1.0f, 5);
  profile_end();
  const std::vector<KernelTime> third = profile_report();
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].name, "scale_forward_kernel<float>");
  EXPECT_EQ(third[0].calls, 1);
}

// A batched bf16 GEMM is named by its batch, types and transposes.
TEST_F(CudaProfile, BatchedBf16GemmName) {
  std::vector<bf16> a(2 * 4 * 3), b(2 * 3 * 5);
  for (size_t i = 0; i < a.size(); ++i) a[i] = bf16{f32_to_bf16(0.25f * float(i % 7))};
  for (size_t i = 0; i < b.size(); ++i) b[i] = bf16{f32_to_bf16(0.5f * float(i % 5))};
  DeviceArray<bf16> da(a), db(b);
  DeviceArray<bf16> dc(size_t(2 * 4 * 5));
  profile_begin();
  // C (4, 5) = A (4, 3) x B^T where B is stored (5, 3): trans_b.
  gemm_batched(false, true, 2, 4, 5, 3, 1.0f, da.get(), 3, 12, db.get(), 3, 15, 0.0f, dc.get(), 5, 20);
  profile_end();
  const std::vector<KernelTime> report = profile_report();
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0].name, "cublas gemm[2] bf16->bf16 NT M=4 N=5 K=3");
  EXPECT_EQ(report[0].calls, 1);
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
