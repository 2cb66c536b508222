// AdamW against an independent double-precision implementation of the textbook update
// (torch.optim.AdamW's documented algorithm), plus freezing, the decay split, checkpoint
// state round trips and bad-state errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "core/error.h"
#include "optim/adamw.h"

namespace sllm::optim {
namespace {

// The quadratic loss L(p) = sum_i 0.5 * a_i * (p_i - c_i)², so dL/dp_i = a_i * (p_i - c_i).
struct Quadratic {
  std::vector<double> a, c;
  std::vector<double> grad(const std::vector<double>& p) const {
    std::vector<double> g(p.size());
    for (size_t i = 0; i < p.size(); ++i) g[i] = a[i] * (p[i] - c[i]);
    return g;
  }
};

Quadratic make_quadratic(size_t n, double seed) {
  Quadratic q;
  for (size_t i = 0; i < n; ++i) {
    q.a.push_back(0.5 + std::fmod(0.37 * double(i) + seed, 2.0));
    q.c.push_back(std::sin(1.3 * double(i) + seed));
  }
  return q;
}

std::vector<double> initial_values(size_t n, double seed) {
  std::vector<double> p;
  for (size_t i = 0; i < n; ++i) p.push_back(1.5 + std::cos(0.7 * double(i) + seed));
  return p;
}

Tensor leaf(const std::vector<double>& values, const Shape& shape) {
  Tensor t = Tensor::from_floats(std::vector<float>(values.begin(), values.end()), shape);
  t.set_requires_grad(true);
  return t;
}

std::vector<double> values_of(const Tensor& t) {
  std::vector<double> out;
  for (float f : t.to_floats()) out.push_back(f);
  return out;
}

void set_grad_from(Tensor& param, const Quadratic& q) {
  const auto g = q.grad(values_of(param));
  param.set_grad(Tensor::from_floats(std::vector<float>(g.begin(), g.end()), param.shape()));
}

// The textbook algorithm (Loshchilov & Hutter 2019 Alg. 2 in torch.optim.AdamW's order),
// written from the formulas in double precision, independent of kernels::adamw_update.
struct ReferenceAdamW {
  double beta1, beta2, eps, wd;
  std::vector<double> m = {}, v = {};
  int t = 0;
  void step(std::vector<double>& p, const std::vector<double>& g, double lr) {
    if (m.empty()) m.assign(p.size(), 0.0), v.assign(p.size(), 0.0);
    ++t;
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] -= lr * wd * p[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
      const double mhat = m[i] / (1 - std::pow(beta1, t));
      const double vhat = v[i] / (1 - std::pow(beta2, t));
      p[i] -= lr * mhat / (std::sqrt(vhat) + eps);
    }
  }
};

TEST(AdamW, MatchesDoublePrecisionTextbookAdamWForFiveSteps) {
  // 6x7 = 42 elements crosses a 16-wide SIMD block and leaves a tail; 37 is odd.
  const Quadratic qw = make_quadratic(42, 0.1), qb = make_quadratic(37, 0.9);
  std::vector<double> w_ref = initial_values(42, 0.2), b_ref = initial_values(37, 0.4);
  Tensor w = leaf(w_ref, {6, 7}), b = leaf(b_ref, {37});
  AdamWConfig cfg{.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f};
  AdamW opt({{"w", w, true}, {"b", b, false}}, cfg);
  // Reference with the float config values widened exactly, so only the arithmetic differs.
  ReferenceAdamW ref_w{cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay}, ref_b{cfg.beta1, cfg.beta2, cfg.eps, 0.0};

  const float lrs[5] = {2e-2f, 1e-2f, 3e-2f, 5e-3f, 1e-2f};  // changes each step, as a schedule does
  for (float lr : lrs) {
    set_grad_from(w, qw);
    set_grad_from(b, qb);
    opt.step(lr);
    opt.zero_grad();
    ref_w.step(w_ref, qw.grad(w_ref), lr);
    ref_b.step(b_ref, qb.grad(b_ref), lr);
  }
  EXPECT_EQ(opt.step_count(), 5);
  // Float arithmetic of O(1) values over 5 steps: a few ulps (u = 6e-8) per step, plus
  // gradients taken at float params (measured: <= 2e-7). 2e-6 is far below a single step's size (lr ~ 1e-2) and
  // below what a missing decay would change (lr * wd * |p| ~ 1e-3 per step).
  const auto w_got = values_of(w), b_got = values_of(b);
  for (size_t i = 0; i < w_ref.size(); ++i) EXPECT_NEAR(w_got[i], w_ref[i], 2e-6) << "w[" << i << "]";
  for (size_t i = 0; i < b_ref.size(); ++i) EXPECT_NEAR(b_got[i], b_ref[i], 2e-6) << "b[" << i << "]";
  EXPECT_FALSE(w.grad().defined());
}

TEST(AdamW, SkipsFrozenAndUnreachedParams) {
  Tensor frozen = Tensor::from_floats({1.f, 2.f, 3.f}, {3});  // requires_grad false
  frozen.set_grad(Tensor::from_floats({5.f, 5.f, 5.f}, {3}));  // a stray grad must still be ignored
  Tensor unreached = leaf({4.0, 5.0}, {1, 2});                 // trainable, but backward never reached it
  Tensor trained = leaf({1.0, 1.0}, {2, 1});
  AdamW opt({{"frozen", frozen, true}, {"unreached", unreached, true}, {"trained", trained, true}}, AdamWConfig{});
  trained.set_grad(Tensor::from_floats({1.f, -1.f}, {2, 1}));
  opt.step(1e-2f);
  EXPECT_EQ(frozen.to_floats(), (std::vector<float>{1.f, 2.f, 3.f}));
  EXPECT_EQ(unreached.to_floats(), (std::vector<float>{4.f, 5.f}));
  EXPECT_NE(trained.to_floats(), (std::vector<float>{1.f, 1.f}));
  EXPECT_EQ(opt.step_count(), 1);
  // The skipped params' moments stayed zero.
  for (const auto& [name, t] : opt.state_tensors()) {
    if (name.rfind("trained", 0) == 0) continue;
    for (float x : t.to_floats()) EXPECT_EQ(x, 0.f) << name;
  }
}

TEST(AdamW, DecaysOnlyParamsMarkedForDecay) {
  // With a zero gradient the Adam part is exactly 0 (m = v = 0, 0 / (0 + eps)), so the
  // only change left is the decoupled decay p *= 1 - lr * wd.
  Tensor decayed = leaf({2.0, -4.0}, {2, 1}), kept = leaf({2.0, -4.0}, {2});
  AdamW opt({{"decayed", decayed, true}, {"kept", kept, false}}, AdamWConfig{.weight_decay = 0.5f});
  for (Tensor* t : {&decayed, &kept}) t->set_grad(Tensor::zeros(t->shape()));
  opt.step(0.1f);
  EXPECT_EQ(kept.to_floats(), (std::vector<float>{2.f, -4.f}));
  const float factor = 1.0f - 0.1f * 0.5f;  // 0.95
  EXPECT_FLOAT_EQ(decayed.to_floats()[0], 2.f * factor);
  EXPECT_FLOAT_EQ(decayed.to_floats()[1], -4.f * factor);
}

// A small two-param problem stepped by a deterministic rule, for the checkpoint tests.
struct Problem {
  Quadratic qw = make_quadratic(40, 0.3), qb = make_quadratic(5, 0.6);
  Tensor w = leaf(initial_values(40, 0.5), {5, 8}), b = leaf(initial_values(5, 0.7), {5});
  std::vector<ParamRef> params() { return {{"h.0.w", w, true}, {"h.0.b", b, false}}; }
  void run(AdamW& opt, int steps) {
    for (int s = 0; s < steps; ++s) {
      set_grad_from(w, qw);
      set_grad_from(b, qb);
      opt.step(1e-2f * float(1 + opt.step_count() % 3));
      opt.zero_grad();
    }
  }
};

bool bit_identical(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

TEST(AdamW, StateRoundTripContinuesBitIdentically) {
  Problem uninterrupted;
  AdamW a(uninterrupted.params(), AdamWConfig{});
  uninterrupted.run(a, 6);

  Problem first_half;
  AdamW b(first_half.params(), AdamWConfig{});
  first_half.run(b, 3);
  // "Save": deep copies of params and optimizer state, as a checkpoint file would hold.
  std::vector<std::pair<std::string, Tensor>> saved;
  for (const auto& [name, t] : b.state_tensors()) saved.emplace_back(name, t.clone());
  ASSERT_EQ(saved.size(), 4u);
  EXPECT_EQ(saved[0].first, "h.0.w.exp_avg");
  EXPECT_EQ(saved[1].first, "h.0.w.exp_avg_sq");

  // "Resume": fresh params holding the saved values, a fresh optimizer, then load_state.
  Problem resumed;
  resumed.w.copy_from(first_half.w);
  resumed.b.copy_from(first_half.b);
  AdamW c(resumed.params(), AdamWConfig{});
  c.load_state(saved, b.step_count());
  EXPECT_EQ(c.step_count(), 3);
  resumed.run(c, 3);

  EXPECT_TRUE(bit_identical(resumed.w, uninterrupted.w));
  EXPECT_TRUE(bit_identical(resumed.b, uninterrupted.b));
  const auto sa = a.state_tensors(), sc = c.state_tensors();
  for (size_t i = 0; i < sa.size(); ++i) EXPECT_TRUE(bit_identical(sa[i].second, sc[i].second)) << sa[i].first;

  // Without load_state (fresh moments, step 0) the continuation differs: the test can fail.
  Problem cold;
  cold.w.copy_from(first_half.w);
  cold.b.copy_from(first_half.b);
  AdamW d(cold.params(), AdamWConfig{});
  cold.run(d, 3);
  EXPECT_FALSE(bit_identical(cold.w, uninterrupted.w));
}

void expect_error_mentioning(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected sllm::Error mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_FALSE(e.hint().empty());
  }
}

TEST(AdamW, LoadStateRejectsWrongNamesShapesAndDtypes) {
  Problem p;
  AdamW opt(p.params(), AdamWConfig{});
  p.run(opt, 1);
  const auto good = opt.state_tensors();
  auto with = [&](size_t index, std::string name, Tensor t) {
    auto s = good;
    s[index] = {std::move(name), std::move(t)};
    return s;
  };
  expect_error_mentioning([&] { opt.load_state(with(0, "h.1.w.exp_avg", good[0].second), 1); }, "h.0.w.exp_avg");
  expect_error_mentioning([&] { opt.load_state(with(2, "h.0.b.exp_avg", Tensor::zeros({6})), 1); }, "(6,)");
  expect_error_mentioning([&] { opt.load_state(with(3, "h.0.b.exp_avg_sq", Tensor::zeros({5}, DType::BF16)), 1); },
                          "bf16");
  auto missing = good;
  missing.pop_back();
  expect_error_mentioning([&] { opt.load_state(missing, 1); }, "h.0.b.exp_avg_sq");
  auto extra = good;
  extra.emplace_back("h.9.w.exp_avg", Tensor::zeros({5}));
  expect_error_mentioning([&] { opt.load_state(extra, 1); }, "h.9.w.exp_avg");
  auto twice = good;
  twice.push_back(good[0]);
  expect_error_mentioning([&] { opt.load_state(twice, 1); }, "twice");
  expect_error_mentioning([&] { opt.load_state(good, -1); }, "negative");

  // A rejected load leaves the optimizer as it was.
  const Tensor m_before = good[0].second.clone();
  auto bad = good;
  bad[0].second = Tensor::full({5, 8}, 7.f);
  bad[3].second = Tensor::zeros({4});
  EXPECT_THROW(opt.load_state(bad, 9), Error);
  EXPECT_EQ(opt.step_count(), 1);
  EXPECT_TRUE(bit_identical(opt.state_tensors()[0].second, m_before));
}

TEST(AdamW, RejectsBadParameterLists) {
  Tensor w = leaf({1.0, 2.0}, {2});
  expect_error_mentioning([&] { AdamW({{"w", w, true}, {"w", leaf({1.0}, {1}), true}}, AdamWConfig{}); }, "twice");
  expect_error_mentioning([&] { AdamW({{"wte", w, false}, {"lm_head", w, true}}, AdamWConfig{}); }, "same tensor");
  expect_error_mentioning([&] { AdamW({{"", w, true}}, AdamWConfig{}); }, "empty name");
  expect_error_mentioning([&] { AdamW({{"q", Tensor::zeros({2}, DType::BF16), true}}, AdamWConfig{}); }, "bf16");
  expect_error_mentioning([&] { AdamW({{"w", w, true}}, AdamWConfig{.beta2 = 1.0f}); }, "betas");
  AdamW ok({{"w", w, true}}, AdamWConfig{});
  expect_error_mentioning([&] { ok.step(std::nanf("")); }, "learning rate");
}

TEST(DefaultDecay, DecaysMatricesButNotNormsBiasesOrEmbeddings) {
  const Tensor matrix = Tensor::zeros({4, 4}), vector = Tensor::zeros({4});
  EXPECT_TRUE(default_decay("h.0.attn.c_attn.weight", matrix));
  EXPECT_TRUE(default_decay("model.layers.0.mlp.down_proj.weight", matrix));
  EXPECT_FALSE(default_decay("h.0.attn.c_attn.bias", vector));
  EXPECT_FALSE(default_decay("h.0.ln_1.weight", vector));
  EXPECT_FALSE(default_decay("wte.weight", matrix));
  EXPECT_FALSE(default_decay("transformer.wpe.weight", matrix));
  EXPECT_FALSE(default_decay("model.embed_tokens.weight", matrix));
}

}  // namespace
}  // namespace sllm::optim

namespace sllm::optim {
namespace {

// ZeRO-1 (issue 14): optimizers that own complementary spans of the same params update, each
// on its span, exactly what the whole optimizer updates, and take the whole optimizer's
// checkpoint tensors back (keeping their spans of them).
namespace sharded {

Tensor filled(const Shape& shape, float seed) {
  Tensor t = Tensor::empty(shape);
  float* p = t.mutable_f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = std::sin(seed + 0.37f * static_cast<float>(i));
  return t;
}

// Two params (3x5 and 7), fresh values; grads set from the step number.
std::vector<ParamRef> make_params() {
  std::vector<ParamRef> params{{"w", filled({3, 5}, 0.1f), true}, {"b", filled({7}, 0.2f), false}};
  for (auto& p : params) p.param.set_requires_grad(true);
  return params;
}

void set_grads(std::vector<ParamRef>& params, int step) {
  for (size_t i = 0; i < params.size(); ++i)
    params[i].param.set_grad(filled(params[i].param.shape(), 1.0f + static_cast<float>(step) + static_cast<float>(i)));
}

std::string bytes(const Tensor& t) { return std::string(reinterpret_cast<const char*>(t.f32()), t.nbytes()); }

}  // namespace sharded

TEST(AdamWSharded, SpansUpdateBitForBitLikeTheWholeOptimizer) {
  using namespace sharded;
  std::vector<ParamRef> whole_params = make_params();
  AdamW whole(whole_params, AdamWConfig{});
  // Rank 0 owns w[0:9); rank 1 owns w[9:15) and all of b (a cut inside a param).
  const std::vector<std::vector<ParamSpan>> spans{{{0, 9}, {0, 0}}, {{9, 15}, {0, 7}}};
  std::vector<std::vector<ParamRef>> shard_params{make_params(), make_params()};
  std::vector<AdamW> shards;
  for (int r = 0; r < 2; ++r) shards.emplace_back(shard_params[r], AdamWConfig{}, spans[r]);
  EXPECT_EQ(shards[0].state_tensors()[0].second.shape(), (Shape{9}));
  EXPECT_EQ(shards[0].state_tensors()[2].second.numel(), 0);

  for (int step = 1; step <= 3; ++step) {
    set_grads(whole_params, step);
    whole.step(1e-2f, 0.5f);
    for (int r = 0; r < 2; ++r) {
      set_grads(shard_params[r], step);
      shards[r].step(1e-2f, 0.5f);
      // A rank's params outside its span are stale until gathered: copy the owner's in,
      // as DataParallel::gather_parameters does.
    }
    for (size_t i = 0; i < whole_params.size(); ++i) {
      for (int r = 0; r < 2; ++r) {
        float* mine = shard_params[r][i].param.mutable_f32();
        for (int o = 0; o < 2; ++o) {
          const ParamSpan theirs = spans[o][i];
          if (o != r) std::memcpy(mine + theirs.begin, shard_params[o][i].param.f32() + theirs.begin, theirs.size() * sizeof(float));
        }
      }
      EXPECT_EQ(bytes(shard_params[0][i].param), bytes(whole_params[i].param)) << whole_params[i].name << " step " << step;
      EXPECT_EQ(bytes(shard_params[1][i].param), bytes(whole_params[i].param)) << whole_params[i].name << " step " << step;
    }
  }

  // The whole optimizer's checkpoint loads into a shard, which keeps its spans: its next
  // step matches again.
  AdamW reloaded(shard_params[1], AdamWConfig{}, spans[1]);
  reloaded.load_state(whole.state_tensors(), whole.step_count());
  const auto state = reloaded.state_tensors();
  EXPECT_EQ(bytes(state[0].second), std::string(reinterpret_cast<const char*>(whole.state_tensors()[0].second.f32() + 9), 6 * sizeof(float)));
  EXPECT_EQ(bytes(state[3].second), bytes(whole.state_tensors()[3].second));
  EXPECT_EQ(reloaded.step_count(), 3);
  // A span outside its param is refused.
  EXPECT_THROW(AdamW(make_params(), AdamWConfig{}, {{0, 16}, {0, 7}}), Error);
  EXPECT_THROW(AdamW(make_params(), AdamWConfig{}, {{0, 15}}), Error);
}

}  // namespace
}  // namespace sllm::optim
