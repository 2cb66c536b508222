// The `sllm` binary: finds the subcommand in the registry and runs it. Every sllm::Error
// (bad flags, files, configs) is printed with its hint and exits with status 1.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <exception>

#include "cli/command.h"
#include "core/args.h"
#include "core/error.h"
#include "dist/comm.h"

namespace sllm::cli {

void apply_threads_flag(const Args& args) {
  const int64_t threads = args.get_int("--threads", 0);
  SLLM_CHECK(threads >= 0, str("--threads must be >= 0, got ", threads), args.usage());
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));
}

std::vector<Command>& command_table() {
  static std::vector<Command> table;
  return table;
}

static void print_help() {
  auto table = command_table();
  std::sort(table.begin(), table.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
  std::fprintf(stderr, "sllm: pretrain and fine-tune small language models\n\nusage: sllm <command> [flags]\n\n");
  for (const auto& c : table) std::fprintf(stderr, "  %-22s %s\n", c.name.c_str(), c.summary.c_str());
  std::fprintf(stderr, "\n`sllm <command> --help` lists a command's flags.\n");
}

static int dispatch(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "help") {
    print_help();
    return argc < 2 ? 1 : 0;
  }
  std::string name = argv[1];
  int first_arg = 2;
  if (name == "bench" || name == "data" || name == "reward") {
    SLLM_CHECK(argc >= 3, str("sllm ", name, ": missing subcommand"), "run `sllm help` to list commands");
    name += std::string(" ") + argv[2];
    first_arg = 3;
  }
  for (const auto& c : command_table()) {
    if (c.name == name) return c.run(std::vector<std::string>(argv + first_arg, argv + argc));
  }
  fail(str("sllm: unknown command '", name, "'"), "run `sllm help` to list commands");
}

}  // namespace sllm::cli

// Under mpirun (issue 14), an error on one rank aborts every rank (dist::abort_all) so none
// waits forever in a collective; MPI, when a command started it, is finalized on the way out.
int main(int argc, char** argv) {
  int rc = 1;
  try {
    rc = sllm::cli::dispatch(argc, argv);
  } catch (const sllm::HelpRequested& help) {
    std::printf("%s\n", help.text().c_str());
    rc = 0;
  } catch (const sllm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  }
  if (rc != 0) {
    std::fflush(stderr);
    sllm::dist::abort_all(rc);
  }
  sllm::dist::finalize();
  return rc;
}
