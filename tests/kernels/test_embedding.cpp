// embedding_forward / _backward (kernels/cpu/embedding.cpp): the fast kernels give the
// reference's exact bits (same additions in the same row order), repeated ids accumulate,
// and the result does not depend on the thread count.
#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_support.h"

namespace sllm::kernels {
namespace {
using namespace testing;

struct EmbCase {
  int64_t N, V, C;
};
const EmbCase kCases[] = {{1, 1, 1}, {7, 3, 7}, {33, 5, 33}, {257, 11, 257}, {64, 50, 384}};

TEST(Embedding, ForwardGathersRows) {
  for (auto [N, V, C] : kCases) {
    const auto table = uniform(V * C, 1);
    const auto ids = random_ids(N, int32_t(V), 2);
    std::vector<float> out(N * C), out_r(N * C);
    embedding_forward(out.data(), ids.data(), table.data(), N, V, C);
    embedding_forward_ref(out_r.data(), ids.data(), table.data(), N, V, C);
    expect_bitwise(out, out_r, "forward vs ref");
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c) ASSERT_EQ(out[n * C + c], table[ids[n] * C + c]);
  }
}

TEST(Embedding, BackwardMatchesReferenceBitwiseAndAccumulates) {
  for (auto [N, V, C] : kCases) {
    const auto dout = uniform(N * C, 3);
    const auto ids = random_ids(N, int32_t(V), 4);  // V < N: ids repeat
    const auto dtable0 = uniform(V * C, 5);
    auto dtable = dtable0, dtable_r = dtable0;
    embedding_backward(dtable.data(), dout.data(), ids.data(), N, V, C);
    embedding_backward_ref(dtable_r.data(), dout.data(), ids.data(), N, V, C);
    expect_bitwise(dtable, dtable_r, "backward vs ref");
    // Independent: each table row gains the sum of the dout rows that used it (in double).
    for (int64_t v = 0; v < V; ++v)
      for (int64_t c = 0; c < C; ++c) {
        double want = dtable0[v * C + c];
        for (int64_t n = 0; n < N; ++n)
          if (ids[n] == v) want += dout[n * C + c];
        ASSERT_NEAR(dtable[v * C + c], want, 1e-5) << "v=" << v << " c=" << c;
      }
  }
}

TEST(Embedding, NullGradientIsSkippedAndThreadCountDoesNotMatter) {
  const int64_t N = 257, V = 13, C = 99;
  const auto dout = uniform(N * C, 6);
  const auto ids = random_ids(N, int32_t(V), 7);
  embedding_backward(nullptr, dout.data(), ids.data(), N, V, C);
  embedding_backward_ref(nullptr, dout.data(), ids.data(), N, V, C);
  auto run = [&](int threads) {
    ThreadCount tc(threads);
    std::vector<float> dtable(V * C, 0.0f);
    embedding_backward(dtable.data(), dout.data(), ids.data(), N, V, C);
    return dtable;
  };
  const auto first = run(2);
  expect_bitwise(run(2), first, "rerun");
  expect_bitwise(run(1), first, "1 thread vs 2");
  expect_bitwise(run(4), first, "4 threads vs 2");
}

TEST(Embedding, ReferenceBackwardMatchesFiniteDifferences) {
  const int64_t N = 6, V = 4, C = 5;
  const auto table = uniform(V * C, 8), w = uniform(N * C, 9);
  const std::vector<int32_t> ids = {0, 2, 2, 3, 0, 2};  // row 1 unused, rows 0 and 2 repeated
  std::vector<float> dtable(V * C, 0.0f);
  embedding_backward_ref(dtable.data(), w.data(), ids.data(), N, V, C);
  expect_fd_gradient(table, dtable, [&](const std::vector<float>& t) {
    std::vector<float> out(N * C);
    embedding_forward_ref(out.data(), ids.data(), t.data(), N, V, C);
    return weighted_sum(out, w);
  }, "dtable");
}

}  // namespace
}  // namespace sllm::kernels
