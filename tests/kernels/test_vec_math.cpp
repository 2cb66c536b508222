// kernels/cpu/vec_math.h: the vectorizable exp and the lane reductions every row kernel uses.
#include "kernels/cpu/vec_math.h"

#include <limits>

#include "tests/kernels/kernel_test_support.h"

namespace sllm::kernels {
namespace {
using namespace testing;

TEST(VecMath, ExpApproxIsWithinOneUlpOfLibm) {
  // Dense sweep of the whole finite range; the reference is std::exp in double.
  double worst = 0.0;
  for (double x = -87.0; x <= 88.0; x += 1e-3) {
    const float xf = float(x);
    const double want = std::exp(double(xf));
    const double got = exp_approx(xf);
    worst = std::max(worst, std::fabs(got - want) / want);
  }
  // Within 1 ulp (2^-23 relative at worst). A sweep over every 97th float in range measured
  // 8.5e-8 at most; a wrong polynomial coefficient or ln2 split shows up far above this.
  EXPECT_LT(worst, 1.2e-7);
  EXPECT_EQ(exp_approx(0.0f), 1.0f);
}

TEST(VecMath, ExpApproxEdges) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(exp_approx(-inf), 0.0f);   // masked logits contribute exactly nothing
  EXPECT_EQ(exp_approx(-200.0f), 0.0f);
  EXPECT_EQ(exp_approx(inf), inf);
  EXPECT_EQ(exp_approx(200.0f), inf);
  EXPECT_TRUE(std::isnan(exp_approx(std::nanf(""))));
  EXPECT_EQ(sigmoid_approx(-200.0f), 0.0f);
  EXPECT_EQ(sigmoid_approx(200.0f), 1.0f);
}

TEST(VecMath, LaneReductions) {
  for (int64_t n : {1, 15, 16, 17, 33, 1000}) {
    const auto x = uniform(n, uint32_t(n), -3.0f, 5.0f);
    double want_sum = 0.0;
    float want_max = -std::numeric_limits<float>::infinity();
    for (float v : x) {
      want_sum += v;
      want_max = std::max(want_max, v);
    }
    EXPECT_NEAR(lane_sum(n, [&](int64_t i) { return x[i]; }), want_sum, 1e-5 * n) << n;
    EXPECT_EQ(lane_max(x.data(), n), want_max) << n;
  }
}

}  // namespace
}  // namespace sllm::kernels
