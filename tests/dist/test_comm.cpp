// dist::Comm with one rank (the test runs without a launcher, so no MPI even in an MPI
// build): size 1, collectives leave buffers as they are, bad roots are errors; and the FNV-1a
// hash behind check_same. The multi-rank checks are tests/dist/run_mpi_tests.sh.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "dist/comm.h"

namespace sllm::dist {
namespace {

TEST(Comm, OneRankWithoutALauncher) {
  ASSERT_FALSE(launched_by_mpi()) << "run this test without mpirun";
  Comm& c = world();
  EXPECT_EQ(c.size(), 1);
  EXPECT_EQ(c.rank(), 0);
  EXPECT_TRUE(c.is_root());
  EXPECT_STREQ(c.transport(), "single");
  EXPECT_EQ(&c, &world());  // one world, started once
}

TEST(Comm, CollectivesOfOneRankKeepTheBuffer) {
  Comm& c = world();
  std::vector<float> f = {1.5f, -2.0f, 3.25f, 1e-30f};
  const std::vector<float> f0 = f;
  c.allreduce_sum(f.data(), static_cast<int64_t>(f.size()));
  EXPECT_EQ(f, f0);
  c.allreduce_sum_ordered(f.data(), static_cast<int64_t>(f.size()));
  EXPECT_EQ(f, f0);
  std::vector<double> d = {0.1, 0.2};
  c.allreduce_sum(d.data(), 2);
  EXPECT_EQ(d, (std::vector<double>{0.1, 0.2}));
  std::vector<int64_t> counts = {7, int64_t{1} << 40};
  c.allreduce_sum(counts.data(), 2);
  EXPECT_EQ(counts, (std::vector<int64_t>{7, int64_t{1} << 40}));
  char text[] = "seed=1";
  c.broadcast(text, sizeof(text), 0);
  EXPECT_STREQ(text, "seed=1");
  c.barrier();
  EXPECT_EQ(c.allgather(42), (std::vector<uint64_t>{42}));
  c.check_same(hash_bytes("config", 6), "config");
}

TEST(Comm, BroadcastFromARankThatDoesNotExistIsAnError) {
  char b[4] = {};
  try {
    world().broadcast(b, sizeof(b), 1);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 1 of 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(world().broadcast(b, sizeof(b), -1), Error);
}

// FNV-1a 64 reference values (Fowler, Noll, Vo; draft-eastlake-fnv, test vectors).
TEST(HashBytes, Fnv1a64VectorsAndChaining) {
  EXPECT_EQ(hash_bytes("", 0), 0xcbf29ce484222325ull);
  EXPECT_EQ(hash_bytes("a", 1), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(hash_bytes("foobar", 6), 0x85944171f73967e8ull);
  EXPECT_EQ(hash_bytes("bar", 3, hash_bytes("foo", 3)), hash_bytes("foobar", 6));
  EXPECT_NE(hash_bytes("seed=1", 6), hash_bytes("seed=2", 6));
}

}  // namespace
}  // namespace sllm::dist
