#include "optim/lr_schedule.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace sllm::optim {

void LrSchedule::check() const {
  SLLM_CHECK(std::isfinite(max_lr) && std::isfinite(min_lr) && min_lr >= 0 && min_lr <= max_lr,
             str("learning-rate schedule: need 0 <= min_lr <= max_lr, got min_lr ", min_lr, ", max_lr ", max_lr),
             "e.g. max_lr 6e-4 and min_lr 6e-5 (a tenth of it)");
  SLLM_CHECK(total_steps >= 1 && warmup >= 0 && warmup <= total_steps,
             str("learning-rate schedule: need 0 <= warmup <= total_steps and total_steps >= 1, got warmup ", warmup,
                 ", total_steps ", total_steps),
             "warmup is a number of steps inside the run, e.g. 1-5% of total_steps");
}

double LrSchedule::at(int64_t step) const {
  check();
  SLLM_CHECK(step >= 1, str("learning-rate schedule: step must be >= 1 (steps are 1-based), got ", step),
             "ask for the learning rate of the step about to be taken: 1 for the first");
  if (step <= warmup) return max_lr * double(step) / double(warmup);
  if (step >= total_steps) return min_lr;
  const double progress = double(step - warmup) / double(total_steps - warmup);  // in (0, 1)
  return min_lr + (max_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace sllm::optim
