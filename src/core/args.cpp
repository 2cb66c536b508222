#include "core/args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "core/error.h"

namespace sllm {

Args::Args(const std::string& command, int argc, char** argv, std::vector<FlagSpec> spec)
    : Args(command, std::vector<std::string>(argv, argv + argc), std::move(spec)) {}

Args::Args(const std::string& command, const std::vector<std::string>& argv, std::vector<FlagSpec> spec)
    : command_(command), spec_(std::move(spec)) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& word = argv[i];
    if (word == "--help" || word == "-h") throw HelpRequested(usage());
    const FlagSpec* flag = find(word);
    SLLM_CHECK(flag != nullptr, str("sllm ", command_, ": unknown argument '", word, "'"), usage());
    auto& slot = values_[flag->name];
    if (flag->kind == FlagSpec::Switch) {
      slot.push_back("1");
      continue;
    }
    size_t taken = 0;
    while (i + 1 < argv.size() && !(argv[i + 1].size() > 2 && argv[i + 1].rfind("--", 0) == 0)) {
      slot.push_back(argv[++i]);
      ++taken;
      if (flag->kind == FlagSpec::Value) break;
    }
    SLLM_CHECK(taken > 0, str("sllm ", command_, ": flag ", word, " needs a value"), usage());
  }
}

const FlagSpec* Args::find(const std::string& name) const {
  for (const auto& f : spec_)
    if (f.name == name) return &f;
  return nullptr;
}

bool Args::has(const std::string& name) const { return values_.count(name) > 0; }

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second.back();
}

std::string Args::required(const std::string& name) const {
  SLLM_CHECK(has(name), str("sllm ", command_, ": missing required flag ", name), usage());
  return get(name, "");
}

int64_t Args::get_int(const std::string& name, int64_t fallback) const {
  if (!has(name)) return fallback;
  const std::string text = get(name, "");
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  SLLM_CHECK(errno == 0 && end != text.c_str() && *end == '\0',
             str("sllm ", command_, ": ", name, " expects an integer, got '", text, "'"), usage());
  return v;
}

double Args::get_double(const std::string& name, double fallback) const {
  if (!has(name)) return fallback;
  const std::string text = get(name, "");
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  SLLM_CHECK(errno == 0 && end != text.c_str() && *end == '\0' && std::isfinite(v),
             str("sllm ", command_, ": ", name, " expects a number, got '", text, "'"), usage());
  return v;
}

std::vector<std::string> Args::get_list(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::string Args::usage() const {
  std::string out = "sllm " + command_ + " accepts:";
  for (const auto& f : spec_) {
    out += "\n    " + f.name;
    if (f.kind == FlagSpec::Value) out += " X";
    if (f.kind == FlagSpec::List) out += " X...";
    if (!f.help.empty()) out += "  " + f.help;
  }
  return out;
}

}  // namespace sllm
