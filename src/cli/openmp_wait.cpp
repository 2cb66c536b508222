// How long sllm's OpenMP threads spin before they sleep, set before the OpenMP runtime
// starts (issue 13: no collapse when the CPU is shared).
//
// A thread that reaches the end of a parallel loop early waits for the others. libgomp's
// default is to spin for GOMP_SPINCOUNT = 300,000 iterations (milliseconds) before sleeping
// on a futex. On a quiet machine that spin is free; when another process holds one of the
// cores, the spinning thread burns the very core time its late partner needs, and every one
// of the thousands of parallel loops in a training step pays it: on a 2-core AMD EPYC with a
// busy loop on one core, 2 threads ran the small preset's training step at 0.65x the speed
// of 1 thread. A short spin (GOMP_SPINCOUNT below) keeps the quiet speed (within noise) and
// lets 2 threads beat 1 under load; README.md ("CPU speed on a shared machine") has the
// measured table and the command.
//
// libgomp reads its environment once, in its initializer. A shared libgomp runs that before
// any code of ours, so CMakeLists.txt links the runtime statically: its initializer is then
// one of the executable's constructors, and ours below has an earlier priority (101, the
// first one not reserved for the implementation; GCC manual, "Common Function Attributes").
// A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT always wins. Only the sllm binary has this
// file; the test binaries keep libgomp's default.
#include "cli/openmp_wait.h"

#include <cstdlib>

namespace {

// Spins before a waiting thread sleeps; measured default (README.md, issue 13).
constexpr const char* kSpinCount = "1000";

__attribute__((constructor(101))) void default_openmp_wait_policy() {
  if (std::getenv("OMP_WAIT_POLICY") == nullptr && std::getenv("GOMP_SPINCOUNT") == nullptr)
    setenv("GOMP_SPINCOUNT", kSpinCount, /*overwrite=*/0);
}

}  // namespace

namespace sllm::cli {

std::string openmp_wait_policy() {
  std::string out;
  for (const char* name : {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"}) {
    if (const char* value = std::getenv(name)) out += std::string(out.empty() ? "" : " ") + name + "=" + value;
  }
  return out.empty() ? "libgomp default" : out;
}

}  // namespace sllm::cli
