// The OpenMP wait policy sllm runs under (src/cli/openmp_wait.cpp sets its default before
// the OpenMP runtime starts).
#pragma once
#include <string>

namespace sllm::cli {

// What libgomp was told, for benchmark records: "OMP_WAIT_POLICY=<v>" and/or
// "GOMP_SPINCOUNT=<v>" as the environment holds them (sllm's default: GOMP_SPINCOUNT=1000).
std::string openmp_wait_policy();

}  // namespace sllm::cli
