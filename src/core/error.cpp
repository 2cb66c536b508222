#include "core/error.h"

namespace sllm {

static std::string compose(const std::string& what, const std::string& hint) {
  return hint.empty() ? what : what + "\n---> HINT: " + hint;
}

Error::Error(const std::string& what, const std::string& hint)
    : std::runtime_error(compose(what, hint)), message_(what), hint_(hint) {}

void fail(const std::string& what, const std::string& hint) { throw Error(what, hint); }

void internal_error(const char* condition, const char* file, int line) {
  throw Error(str("internal error: check failed: ", condition, " at ", file, ":", line),
              "this is a bug in sllm; please report it with the command that triggered it");
}

}  // namespace sllm
