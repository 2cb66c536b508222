// Token ids for training-loop tests: a random walk over a small "sentence" structure, so that
// losses move but do not collapse to 0 within a few steps (a collapse would make bitwise
// comparisons of two runs trivially equal).
#pragma once
#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace sllm::test {

inline std::vector<int32_t> pseudo_text(int64_t n, uint64_t seed, int64_t vocab) {
  Rng rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  int32_t prev = 0;
  for (auto& id : ids) {
    const uint32_t r = static_cast<uint32_t>(rng.next_u64() % 8);
    id = static_cast<int32_t>((prev * 7 + 13 + r * r) % vocab);
    prev = id;
  }
  return ids;
}

}  // namespace sllm::test
