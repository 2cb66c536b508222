// Command-line flags for the `sllm` subcommands: `--name value`, `--name v1 v2 ...` (lists),
// and `--switch`. Unknown flags, missing values and malformed numbers raise sllm::Error
// with the list of accepted flags as the hint.
#pragma once
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sllm {

struct FlagSpec {
  enum Kind { Value, List, Switch };
  std::string name;  // with the dashes: "--steps"
  Kind kind = Value;
  std::string help;
};

// Thrown for --help / -h: not an error. The CLI prints text() on stdout and exits 0.
class HelpRequested : public std::exception {
 public:
  explicit HelpRequested(std::string text) : text_(std::move(text)) {}
  const std::string& text() const { return text_; }
  const char* what() const noexcept override { return text_.c_str(); }

 private:
  std::string text_;
};

class Args {
 public:
  // argv holds only the flags (the command name already consumed); `command` names it in errors.
  Args(const std::string& command, const std::vector<std::string>& argv, std::vector<FlagSpec> spec);
  Args(const std::string& command, int argc, char** argv, std::vector<FlagSpec> spec);

  bool has(const std::string& name) const;
  std::string get(const std::string& name, const std::string& fallback) const;
  std::string required(const std::string& name) const;
  int64_t get_int(const std::string& name, int64_t fallback) const;
  double get_double(const std::string& name, double fallback) const;
  std::vector<std::string> get_list(const std::string& name) const;
  std::string usage() const;

 private:
  const FlagSpec* find(const std::string& name) const;
  std::string command_;
  std::vector<FlagSpec> spec_;
  std::map<std::string, std::vector<std::string>> values_;
};

}  // namespace sllm
