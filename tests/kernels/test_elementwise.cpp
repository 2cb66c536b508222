// Broadcast binary ops, scale and sums (kernels/cpu/elementwise.cpp): fast vs reference for
// every op and broadcast shape, accumulate / nullptr semantics, the references' backward
// against central differences, and sums against an independent long-double sum.
#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_support.h"

namespace sllm::kernels {
namespace {
using namespace testing;

const BinaryOp kOps[] = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div};
const char* op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
    case BinaryOp::Div: return "div";
  }
  return "?";
}

struct Shape {
  int64_t n, nb;
};
// nb == 1 (scalar), nb == n (same shape), and row broadcasts; 40000 x 1 and 200 x 384 take the
// multithreaded paths.
const Shape kShapes[] = {{1, 1}, {7, 1}, {7, 7}, {33 * 5, 33}, {257 * 3, 257}, {40000, 1}, {200 * 384, 384}};

// b away from 0 so Div is well conditioned.
std::vector<float> divisor_safe(int64_t n, uint32_t seed) { return uniform(n, seed, 0.5f, 2.0f); }

TEST(Binary, ForwardMatchesReferenceBitwise) {
  for (BinaryOp op : kOps)
    for (auto [n, nb] : kShapes) {
      const auto a = uniform(n, 1), b = divisor_safe(nb, 2);
      std::vector<float> out(n), out_r(n);
      binary_forward(op, out.data(), a.data(), b.data(), n, nb);
      binary_forward_ref(op, out_r.data(), a.data(), b.data(), n, nb);
      // One correctly rounded float operation per element in both.
      expect_bitwise(out, out_r, std::string(op_name(op)) + " n=" + std::to_string(n) + " nb=" + std::to_string(nb));
    }
}

TEST(Binary, BackwardMatchesReferenceAccumulatesAndSkipsNull) {
  for (BinaryOp op : kOps)
    for (auto [n, nb] : kShapes) {
      const auto a = uniform(n, 3), b = divisor_safe(nb, 4), dout = uniform(n, 5);
      const auto da0 = uniform(n, 6), db0 = uniform(nb, 7);
      const std::string at = std::string(op_name(op)) + " n=" + std::to_string(n) + " nb=" + std::to_string(nb);
      auto da = da0, db = db0, da_r = da0, db_r = db0;
      binary_backward(op, da.data(), db.data(), dout.data(), a.data(), b.data(), n, nb);
      binary_backward_ref(op, da_r.data(), db_r.data(), dout.data(), a.data(), b.data(), n, nb);
      expect_close(da, da_r, kPointwise, "da " + at);
      // db sums n / nb rows in float (per column, in row order) vs the double reference.
      expect_close(db, db_r, kRowReduction, "db " + at);
      std::vector<float> da_z(n, 0.0f), db_z(nb, 0.0f);
      binary_backward(op, da_z.data(), db_z.data(), dout.data(), a.data(), b.data(), n, nb);
      expect_close(da, plus(da0, da_z), kPointwise, "da accumulates " + at);
      expect_close(db, plus(db0, db_z), kPointwise, "db accumulates " + at);
      auto da_only = da0, db_only = db0;
      binary_backward(op, da_only.data(), nullptr, dout.data(), a.data(), b.data(), n, nb);
      binary_backward(op, nullptr, db_only.data(), dout.data(), a.data(), b.data(), n, nb);
      expect_bitwise(da_only, da, "da alone " + at);
      expect_bitwise(db_only, db, "db alone " + at);
      binary_backward_ref(op, nullptr, nullptr, dout.data(), a.data(), b.data(), n, nb);
    }
}

TEST(Binary, BroadcastGradientIsThreadCountIndependent) {
  for (auto [n, nb] : {Shape{200 * 384, 384}, Shape{100003, 1}}) {
    const auto a = uniform(n, 8), b = divisor_safe(nb, 9), dout = uniform(n, 10);
    auto run = [&](int threads) {
      ThreadCount tc(threads);
      std::vector<float> db(nb, 0.0f);
      binary_backward(BinaryOp::Mul, nullptr, db.data(), dout.data(), a.data(), b.data(), n, nb);
      return db;
    };
    const auto first = run(2);
    expect_bitwise(run(2), first, "rerun");
    expect_bitwise(run(1), first, "1 thread vs 2");
    expect_bitwise(run(3), first, "3 threads vs 2");
  }
}

TEST(Binary, ReferenceBackwardMatchesFiniteDifferences) {
  const int64_t n = 12, nb = 4;
  const auto a = uniform(n, 11), b = divisor_safe(nb, 12), w = uniform(n, 13);
  for (BinaryOp op : kOps) {
    std::vector<float> da(n, 0.0f), db(nb, 0.0f);
    binary_backward_ref(op, da.data(), db.data(), w.data(), a.data(), b.data(), n, nb);
    auto loss = [&](const std::vector<float>& x, const std::vector<float>& y) {
      std::vector<float> out(n);
      binary_forward_ref(op, out.data(), x.data(), y.data(), n, nb);
      return weighted_sum(out, w);
    };
    expect_fd_gradient(a, da, [&](const auto& x) { return loss(x, b); }, std::string("da ") + op_name(op));
    expect_fd_gradient(b, db, [&](const auto& y) { return loss(a, y); }, std::string("db ") + op_name(op));
  }
}

TEST(Sums, ScaleSumAndRowSums) {
  const int64_t n = 100003;  // several fixed chunks and a tail
  const auto a = uniform(n, 14, -1.0f, 3.0f);
  std::vector<float> scaled(n);
  scale_forward(scaled.data(), a.data(), -0.5f, n);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(scaled[i], a[i] * -0.5f) << i;

  long double want = 0.0L;
  for (float x : a) want += x;
  // Double accumulation: only the final rounding to float remains.
  EXPECT_NEAR(sum_forward(a.data(), n), double(want), 1e-6 * std::fabs(double(want)));
  auto run = [&](int threads) {
    ThreadCount tc(threads);
    return sum_forward(a.data(), n);
  };
  EXPECT_EQ(run(1), run(3)) << "sum must not depend on the thread count";
  EXPECT_EQ(sum_forward(a.data(), 0), 0.0f);

  for (auto [rows, cols] : {Shape{1, 1}, Shape{7, 33}, Shape{300, 257}}) {
    const auto x = uniform(rows * cols, 15);
    std::vector<float> out(rows);
    sum_rows_forward(out.data(), x.data(), rows, cols);
    for (int64_t r = 0; r < rows; ++r) {
      long double s = 0.0L;
      for (int64_t c = 0; c < cols; ++c) s += x[r * cols + c];
      ASSERT_NEAR(out[r], double(s), 1e-6 * (1.0 + std::fabs(double(s)))) << "row " << r;
    }
  }
}

}  // namespace
}  // namespace sllm::kernels
