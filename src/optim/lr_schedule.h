// Learning-rate schedule: linear warmup, then cosine decay (Loshchilov & Hutter, "SGDR",
// ICLR 2017, eq. 5, one cycle without restarts; the GPT-2/GPT-3 and nanoGPT recipe).
// With step s 1-based, W = warmup, N = total_steps:
//   s <= W:      lr(s) = max_lr * s / W                         (lr(W) = max_lr; lr(1) = max_lr / W)
//   W < s <= N:  lr(s) = min_lr + (max_lr - min_lr) * (1 + cos(pi * (s - W) / (N - W))) / 2
//   s > N:       lr(s) = min_lr
// So the peak max_lr is reached at s = W and min_lr exactly at s = N. With W = 0 the
// cosine starts at step 1 (lr(0) would be max_lr). at() raises sllm::Error for s < 1 or an
// invalid schedule (W < 0, N < 1, W > N, lr < 0, min_lr > max_lr).
#pragma once
#include <cstdint>

namespace sllm::optim {

struct LrSchedule {
  double max_lr, min_lr;
  int64_t warmup, total_steps;

  double at(int64_t step) const;
  void check() const;  // the validation at() performs, for callers that want it up front
};

}  // namespace sllm::optim
