// Subcommand registry of the `sllm` binary. Each src/cli/cmd_*.cpp file registers its
// commands with a static CommandRegistrar; `bench` subcommands register as "bench <name>".
#pragma once
#include <string>
#include <vector>

#include "core/args.h"

namespace sllm::cli {

// run receives only the arguments after the command name(s).
using CommandFn = int (*)(const std::vector<std::string>& args);

struct Command {
  std::string name, summary;
  CommandFn run;
};

std::vector<Command>& command_table();

// --threads N: N > 0 sets the OpenMP threads, 0 or no flag keeps all cores; N < 0 is an error.
void apply_threads_flag(const Args& args);

struct CommandRegistrar {
  CommandRegistrar(std::string name, std::string summary, CommandFn run) {
    command_table().push_back({std::move(name), std::move(summary), run});
  }
};

}  // namespace sllm::cli
