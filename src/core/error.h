// Errors. User input (files, flags, configs, shapes) never aborts: it raises sllm::Error with
// what was wrong and a hint; the CLI prints it and exits non-zero. Internal invariants use
// SLLM_ASSERT, which stays on in release builds (unlike assert, which vanishes under NDEBUG).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace sllm {

class Error : public std::runtime_error {
 public:
  Error(const std::string& what, const std::string& hint = "");
  const std::string& message() const { return message_; }
  const std::string& hint() const { return hint_; }

 private:
  std::string message_, hint_;
};

// Throws sllm::Error. The text reads: "<what>\n---> HINT: <hint>".
[[noreturn]] void fail(const std::string& what, const std::string& hint = "");
[[noreturn]] void internal_error(const char* condition, const char* file, int line);

// str(a, b, c): concatenates anything that streams; used to build error messages.
template <typename... Parts>
std::string str(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

}  // namespace sllm

// SLLM_CHECK(cond, what, hint): a user-facing check; `what` and `hint` are std::string
// expressions, evaluated only on failure.
#define SLLM_CHECK(cond, what, hint)          \
  do {                                        \
    if (!(cond)) ::sllm::fail((what), (hint)); \
  } while (0)

#define SLLM_ASSERT(cond)                                              \
  do {                                                                 \
    if (!(cond)) ::sllm::internal_error(#cond, __FILE__, __LINE__);    \
  } while (0)
