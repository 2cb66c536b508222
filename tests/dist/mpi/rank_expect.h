// The check programs run under mpirun (check_collectives.cpp, check_nccl.cpp): each rank
// counts its failed expectations and prints them as "FAIL rank r: what".
#pragma once
#include <cstdio>
#include <string>

namespace sllm::test {

inline int& rank_failures() {
  static int failures = 0;
  return failures;
}

inline void expect(bool ok, const std::string& what, int rank) {
  if (ok) return;
  std::fprintf(stderr, "FAIL rank %d: %s\n", rank, what.c_str());
  ++rank_failures();
}

}  // namespace sllm::test
