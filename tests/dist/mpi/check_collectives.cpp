// Run under mpirun by tests/dist/run_mpi_tests.sh: every rank checks dist::Comm's collectives
// against sums it computes itself (each rank can regenerate every rank's data from its seed).
//   check_collectives [--die-rank R]   R exits before the first collective (the others must
//                                      not hang: the launcher ends the job)
//   check_collectives [--hang-rank R]  R sleeps forever instead (the others' collective
//                                      timeout, SLLM_COLLECTIVE_TIMEOUT, must end the job)
// Prints "rank r/n: ok" and exits 0, or prints FAIL lines and exits 1.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <thread>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "dist/comm.h"
#include "rank_expect.h"

using namespace sllm;
using test::expect;

namespace {

// Rank r's gradient-like values: magnitudes spread over 2^-20 .. 2^20 so that the order of
// a sum of 3+ ranks changes its last bits.
std::vector<float> rank_data(int r, int64_t n) {
  Rng rng(1000 + static_cast<uint64_t>(r));
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = (rng.uniform() - 0.5f) * std::ldexp(1.0f, static_cast<int>(rng.below(41)) - 20);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  int die_rank = -1, hang_rank = -1;
  if (argc == 3 && std::string(argv[1]) == "--die-rank") die_rank = std::atoi(argv[2]);
  if (argc == 3 && std::string(argv[1]) == "--hang-rank") hang_rank = std::atoi(argv[2]);
  try {
    dist::Comm& c = dist::world();
    const int rank = c.rank(), size = c.size();
    expect(std::string(c.transport()) == "mpi", "transport is not mpi", rank);
    if (rank == die_rank) {
      std::fprintf(stderr, "rank %d: exiting on purpose before a collective\n", rank);
      std::_Exit(3);
    }
    if (rank == hang_rank) {  // never reaches the collective: the others' watchdog must end the job
      std::fprintf(stderr, "rank %d: hanging on purpose before a collective\n", rank);
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    }

    // allreduce_sum_ordered: bitwise the rank-order sum, across a chunk boundary (1 Mi).
    const int64_t n = (int64_t{1} << 20) + 12345;
    std::vector<float> expected = rank_data(0, n);
    for (int r = 1; r < size; ++r) {
      const std::vector<float> other = rank_data(r, n);
      for (int64_t i = 0; i < n; ++i) expected[static_cast<size_t>(i)] += other[static_cast<size_t>(i)];
    }
    std::vector<float> ordered = rank_data(rank, n);
    c.allreduce_sum_ordered(ordered.data(), n);
    expect(std::memcmp(ordered.data(), expected.data(), sizeof(float) * static_cast<size_t>(n)) == 0,
           "allreduce_sum_ordered differs from the rank-order sum", rank);
    const uint64_t h = dist::hash_bytes(ordered.data(), sizeof(float) * static_cast<size_t>(n));
    const std::vector<uint64_t> hashes = c.allgather(h);
    for (int r = 0; r < size; ++r) expect(hashes[static_cast<size_t>(r)] == h, "ordered sums differ between ranks", rank);

    // allreduce_sum: MPI's order, equal to the ordered sum within fp32 rounding of `size` terms
    // (|error| <= (size-1)·eps·sum|x_r|, Higham 2002, eq. 4.4; eps = 2^-24).
    std::vector<float> summed = rank_data(rank, n), abs_sum(static_cast<size_t>(n), 0.0f);
    for (int r = 0; r < size; ++r) {
      const std::vector<float> v = rank_data(r, n);
      for (int64_t i = 0; i < n; ++i) abs_sum[static_cast<size_t>(i)] += std::fabs(v[static_cast<size_t>(i)]);
    }
    c.allreduce_sum(summed.data(), n);
    int64_t off = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double bound = 1.01 * (size - 1) * 0x1.0p-24 * abs_sum[static_cast<size_t>(i)];
      if (std::fabs(static_cast<double>(summed[static_cast<size_t>(i)]) - expected[static_cast<size_t>(i)]) > bound) ++off;
    }
    expect(off == 0, std::to_string(off) + " allreduce_sum elements outside the rounding bound", rank);

    // double and int64 sums: exact on these values.
    std::vector<double> d = {0.5 * (rank + 1), -1.0};
    c.allreduce_sum(d.data(), 2);
    expect(d[0] == 0.25 * size * (size + 1) && d[1] == -size, "double allreduce_sum", rank);
    std::vector<int64_t> counts = {int64_t{1} << 40, rank};
    c.allreduce_sum(counts.data(), 2);
    expect(counts[0] == size * (int64_t{1} << 40) && counts[1] == int64_t{size} * (size - 1) / 2, "int64 allreduce_sum",
           rank);

    // broadcast from the last rank.
    char text[32] = {};
    if (rank == size - 1) std::snprintf(text, sizeof(text), "from rank %d", rank);
    c.broadcast(text, sizeof(text), size - 1);
    expect(std::string(text) == "from rank " + std::to_string(size - 1), "broadcast: got '" + std::string(text) + "'", rank);

    // check_same: agreeing hashes pass; a rank-dependent hash fails on every rank.
    c.check_same(dist::hash_bytes("config", 6), "config");
    bool raised = false;
    try {
      c.check_same(rank == 1 ? 2 : 1, "seed");
    } catch (const Error& e) {
      raised = std::string(e.what()).find("ranks 1 disagree with rank 0 on the seed") != std::string::npos;
      if (!raised) std::fprintf(stderr, "rank %d: unexpected message: %s\n", rank, e.what());
    }
    expect(raised, "check_same did not fail with the expected message", rank);
    c.barrier();

    if (test::rank_failures() == 0) std::printf("rank %d/%d: ok\n", rank, size);
  } catch (const Error& e) {
    std::fprintf(stderr, "FAIL: %s\n", e.what());
    ++test::rank_failures();
  }
  std::fflush(stdout);
  dist::finalize();
  return test::rank_failures() == 0 ? 0 : 1;
}
