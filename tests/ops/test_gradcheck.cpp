// Table-driven finite-difference gradient check of every differentiable op.
//
// For each op: random inputs x, a random fixed projection W, the scalar
// L(x) = Σ f(x) ⊙ W (accumulated in double). The analytic gradient from backward() is
// compared with central differences (L(x+h) − L(x−h)) / 2h for every input element.
// f32 forward: the truncation error is O(h²·f''') and the rounding error about
// 1e-7·|L|/h, so with h = 1e-2 both stay near 1e-4 for these sizes; the tolerance
// |num − ana| ≤ tol·(1 + |ana|) with tol = 1e-2 (3e-2 where a kink or a long reduction
// amplifies rounding) still catches wrong signs, factors and indices by orders of magnitude.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "autograd/autograd.h"
#include "core/rng.h"
#include "kernels/kernels.h"
#include "ops/ops.h"

namespace sllm {
namespace {

struct GradCase {
  std::vector<Shape> input_shapes;                             // f32 inputs that get gradients
  std::function<Tensor(const std::vector<Tensor>&)> fn;        // the op under test
  float step = 1e-2f;
  float tol = 1e-2f;
  float positive_offset = 0.0f;  // shift inputs away from 0 (e.g. divisors)
};

Tensor random_tensor(const Shape& shape, Rng& rng, float offset = 0.0f) {
  Tensor t = Tensor::empty(shape);
  float* p = t.mutable_f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(rng.normal()) * 0.5f + offset;
  return t;
}

Tensor ids_tensor(const std::vector<int32_t>& v, const Shape& s) { return Tensor::from_ints(v, s); }

double projected(const Tensor& out, const std::vector<float>& w) {
  const std::vector<float> y = out.to_floats();
  double acc = 0;
  for (size_t i = 0; i < y.size(); ++i) acc += static_cast<double>(y[i]) * w[i];
  return acc;
}

Tensor rope_cos, rope_sin;
void make_rope_tables() {
  if (rope_cos.defined()) return;
  rope_cos = Tensor::empty({16, 4});
  rope_sin = Tensor::empty({16, 4});
  kernels::rope_table(rope_cos.mutable_f32(), rope_sin.mutable_f32(), 16, 8, 10000.0f);
}

std::map<std::string, GradCase> gradcheck_table() {
  make_rope_tables();
  using V = const std::vector<Tensor>&;
  std::map<std::string, GradCase> t;
  t["matmul"] = {{{2, 3, 5}, {2, 5, 4}}, [](V x) { return ops::matmul(x[0], x[1]); }};
  t["linear"] = {{{3, 4, 5}, {6, 5}, {6}}, [](V x) { return ops::linear(x[0], x[1], x[2]); }};
  // x (3, 4, 5), W (6, 5), b (6), A (r = 2, 5), B (6, 2); dropout 0.3 with a fixed seed, so
  // every evaluation draws the same mask.
  t["lora_linear"] = {{{3, 4, 5}, {6, 5}, {6}, {2, 5}, {6, 2}},
                      [](V x) { return ops::lora_linear(x[0], x[1], x[2], x[3], x[4], 1.5f, 0.3f, 7); }};
  t["add"] = {{{3, 4}, {4}}, [](V x) { return ops::add(x[0], x[1]); }};
  t["sub"] = {{{3, 4}, {3, 4}}, [](V x) { return ops::sub(x[0], x[1]); }};
  t["mul"] = {{{2, 3, 4}, {3, 4}}, [](V x) { return ops::mul(x[0], x[1]); }};
  t["div"] = {{{3, 4}, {4}}, [](V x) { return ops::div(x[0], x[1]); }, 1e-2f, 1e-2f, 2.0f};
  t["scale"] = {{{5, 3}}, [](V x) { return ops::scale(x[0], -1.7f); }};
  t["sum"] = {{{4, 5}}, [](V x) { return ops::sum(x[0]); }};
  t["mean"] = {{{4, 5}}, [](V x) { return ops::mean(x[0]); }};
  t["embedding"] = {{{7, 4}}, [](V x) { return ops::embedding(ids_tensor({1, 3, 1, 6, 0, 1}, {2, 3}), x[0]); }};
  t["layernorm"] = {{{3, 4, 8}, {8}, {8}}, [](V x) { return ops::layernorm(x[0], x[1], x[2]); }};
  t["rmsnorm"] = {{{3, 8}, {8}}, [](V x) { return ops::rmsnorm(x[0], x[1]); }};
  t["gelu_tanh"] = {{{4, 6}}, [](V x) { return ops::gelu(x[0], true); }};
  t["gelu_exact"] = {{{4, 6}}, [](V x) { return ops::gelu(x[0], false); }};
  t["silu"] = {{{4, 6}}, [](V x) { return ops::silu(x[0]); }};
  t["swiglu"] = {{{4, 6}, {4, 6}}, [](V x) { return ops::swiglu(x[0], x[1]); }};
  t["softmax"] = {{{3, 7}}, [](V x) { return ops::softmax(x[0]); }};
  t["log_softmax"] = {{{3, 7}}, [](V x) { return ops::log_softmax(x[0]); }};
  t["cross_entropy"] = {{{2, 3, 9}},
                        [](V x) { return ops::cross_entropy(x[0], ids_tensor({1, 8, -100, 0, 4, 4}, {2, 3})); }};
  t["cross_entropy_per_token"] = {
      {{5, 6}}, [](V x) { return ops::cross_entropy_per_token(x[0], ids_tensor({5, -1, 0, 2, 2}, {5}), -1); }};
  t["linear_cross_entropy"] = {
      {{2, 3, 5}, {9, 5}},
      [](V x) { return ops::linear_cross_entropy(x[0], x[1], ids_tensor({1, 8, -100, 0, 4, 4}, {2, 3})); }};
  t["dropout"] = {{{6, 7}}, [](V x) { return ops::dropout(x[0], 0.3f, true, 42, 0); }};
  // B=2, T=5, NH=4, NKV=2, HD=4: GQA with two query heads per kv head.
  t["attention"] = {{{2, 5, 16}, {2, 5, 8}, {2, 5, 8}},
                    [](V x) { return ops::attention(x[0], x[1], x[2], 4, 2); }};
  // The packed projection [q heads | k heads | v heads] of the case above: (2, 5, (4+2*2)*4).
  t["attention_qkv"] = {{{2, 5, 32}}, [](V x) { return ops::attention_qkv(x[0], 4, 2); }};
  t["rope_halfsplit"] = {{{2, 5, 16}}, [](V x) { return ops::rope(x[0], rope_cos, rope_sin, 2, 3, false); }};
  t["rope_interleaved"] = {{{2, 5, 16}}, [](V x) { return ops::rope(x[0], rope_cos, rope_sin, 2, 3, true); }};
  t["reshape"] = {{{2, 6}}, [](V x) { return ops::mul(ops::reshape(x[0], {3, 4}), ops::reshape(x[0], {3, 4})); }};
  t["transpose"] = {{{2, 3, 4}}, [](V x) { return ops::transpose(x[0], 0, 2); }};
  t["concat"] = {{{2, 3}, {2, 5}}, [](V x) { return ops::concat({x[0], x[1]}, 1); }};
  t["slice"] = {{{4, 6}}, [](V x) { return ops::slice(x[0], 1, 2, 5); }};
  t["index_select"] = {{{5, 3}}, [](V x) { return ops::index_select(x[0], ids_tensor({4, 0, 4, 2}, {4})); }};
  t["gather"] = {{{3, 5}}, [](V x) { return ops::gather(x[0], ids_tensor({4, 0, 2}, {3})); }};
  return t;
}

TEST(Gradcheck, EveryDifferentiableOpHasAnEntry) {
  const auto table = gradcheck_table();
  for (const auto& name : ops::differentiable_ops())
    EXPECT_TRUE(table.count(name)) << "op '" << name << "' has no gradient check: add it to gradcheck_table()";
  EXPECT_EQ(table.size(), ops::differentiable_ops().size()) << "gradcheck_table() has entries for unknown ops";
}

class GradcheckOp : public ::testing::TestWithParam<std::string> {};

TEST_P(GradcheckOp, AnalyticMatchesCentralDifferences) {
  const auto table = gradcheck_table();
  const GradCase& c = table.at(GetParam());
  Rng rng(1234);
  std::vector<Tensor> inputs;
  for (const auto& s : c.input_shapes) inputs.push_back(random_tensor(s, rng, c.positive_offset).set_requires_grad(true));
  Tensor out = c.fn(inputs);
  std::vector<float> w(static_cast<size_t>(out.numel()));
  for (auto& v : w) v = static_cast<float>(rng.normal());
  autograd::backward(out, Tensor::from_floats(w, out.shape()));

  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor analytic = inputs[k].grad();
    ASSERT_TRUE(analytic.defined()) << GetParam() << ": no gradient reached input " << k;
    for (int64_t i = 0; i < inputs[k].numel(); ++i) {
      auto perturbed = [&](float delta) {
        std::vector<Tensor> xs;
        for (auto& x : inputs) xs.push_back(x.clone());
        xs[k].mutable_f32()[i] += delta;
        autograd::NoGradGuard guard;
        return projected(c.fn(xs), w);
      };
      const double numeric = (perturbed(c.step) - perturbed(-c.step)) / (2.0 * c.step);
      const double a = analytic.f32()[i];
      EXPECT_NEAR(a, numeric, c.tol * (1.0 + std::fabs(a))) << GetParam() << ": input " << k << " element " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllOps, GradcheckOp, ::testing::ValuesIn(ops::differentiable_ops()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace sllm
