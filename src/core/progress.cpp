#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace sllm {

ProgressBar::ProgressBar(int64_t total, int64_t start)
    : total_(total), start_(start), tty_(isatty(fileno(stderr)) != 0), t0_(std::chrono::steady_clock::now()) {}

static std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", static_cast<long>(s / 3600), static_cast<long>(s % 3600 / 60));
  else std::snprintf(buf, sizeof buf, "%ldm%02lds", static_cast<long>(s / 60), static_cast<long>(s % 60));
  return buf;
}

void ProgressBar::update(int64_t step, const std::string& fields) {
  const auto now = std::chrono::steady_clock::now();
  const bool last = step >= total_;
  // Non-terminal output: one line per ~10 s (plus the last) keeps logs short.
  if (!tty_ && !last && now - last_draw_ < std::chrono::seconds(10)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - t0_).count();
  const int64_t done = step - start_;
  const double eta = done > 0 ? elapsed / static_cast<double>(done) * static_cast<double>(total_ - step) : 0.0;
  constexpr int kWidth = 24;
  const int filled = total_ > 0 ? static_cast<int>(kWidth * step / total_) : kWidth;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  std::fprintf(stderr, "%s[%s] %ld/%ld | %s | eta %s%s", tty_ ? "\r" : "", bar.c_str(), static_cast<long>(step),
               static_cast<long>(total_), fields.c_str(), format_duration(eta).c_str(), tty_ ? "\033[K" : "\n");
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (tty_) std::fputc('\n', stderr);
}

}  // namespace sllm
