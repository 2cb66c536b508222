// A one-line progress bar on stderr: step/total, a bar, free-form fields, and the ETA.
// Redrawn in place with '\r' on a terminal; a full line every `every` steps otherwise
// (so logs of CI or nohup runs stay readable).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace sllm {

class ProgressBar {
 public:
  ProgressBar(int64_t total, int64_t start = 0);
  // Draws step `step` (1-based) with `fields` (e.g. "loss 3.21 | lr 1e-3 | 1234 tok/s").
  void update(int64_t step, const std::string& fields);
  void finish();  // ends the line

 private:
  int64_t total_, start_;
  bool tty_;
  std::chrono::steady_clock::time_point t0_;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace sllm
