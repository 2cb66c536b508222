// LrSchedule at the points the formula pins down: warmup start and end, the cosine's middle
// and quarter points, the end and beyond.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "optim/lr_schedule.h"

namespace sllm::optim {
namespace {

TEST(LrSchedule, WarmupThenCosineToMinLr) {
  const LrSchedule s{.max_lr = 1e-3, .min_lr = 1e-4, .warmup = 10, .total_steps = 110};
  EXPECT_DOUBLE_EQ(s.at(1), 1e-4);   // max_lr * 1 / 10
  EXPECT_DOUBLE_EQ(s.at(5), 5e-4);
  EXPECT_DOUBLE_EQ(s.at(10), 1e-3);  // warmup end: the peak
  // Cosine over 100 steps: step 60 is halfway (cos(pi/2) = 0), step 35 a quarter in.
  EXPECT_NEAR(s.at(60), 5.5e-4, 1e-15);
  EXPECT_NEAR(s.at(35), 1e-4 + 9e-4 * (1 + std::sqrt(0.5)) / 2, 1e-15);
  EXPECT_LT(s.at(11), 1e-3);
  EXPECT_GT(s.at(11), s.at(12));
  EXPECT_DOUBLE_EQ(s.at(110), 1e-4);  // end
  EXPECT_DOUBLE_EQ(s.at(500), 1e-4);  // past the end: stays at min_lr
}

TEST(LrSchedule, NoWarmupStartsNearMaxLr) {
  const LrSchedule s{.max_lr = 2.0, .min_lr = 0.0, .warmup = 0, .total_steps = 4};
  EXPECT_NEAR(s.at(1), 1 + std::cos(M_PI / 4), 1e-15);
  EXPECT_NEAR(s.at(2), 1.0, 1e-15);
  EXPECT_DOUBLE_EQ(s.at(4), 0.0);
}

TEST(LrSchedule, RejectsBadStepsAndSchedules) {
  const LrSchedule ok{.max_lr = 1e-3, .min_lr = 0, .warmup = 2, .total_steps = 10};
  EXPECT_THROW(ok.at(0), Error);
  EXPECT_THROW((LrSchedule{1e-3, 2e-3, 2, 10}.at(1)), Error);  // min_lr > max_lr
  EXPECT_THROW((LrSchedule{1e-3, 0, 20, 10}.at(1)), Error);    // warmup beyond the run
  EXPECT_THROW((LrSchedule{1e-3, 0, -1, 10}.at(1)), Error);
  EXPECT_THROW((LrSchedule{1e-3, 0, 0, 0}.at(1)), Error);
}

}  // namespace
}  // namespace sllm::optim
