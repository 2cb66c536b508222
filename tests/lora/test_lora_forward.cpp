// LoRA forward and backward (src/lora/lora_layer.h): B = 0 leaves the model unchanged, the
// adapter's gradients match central differences, only A and B get gradients, the base stays
// bit-identical through AdamW, the disabled scope is the base model, and adapters switch.
#include <cmath>

#include "autograd/autograd.h"
#include "core/error.h"
#include "lora/lora_config.h"
#include "lora/lora_layer.h"
#include "lora/lora_model.h"
#include "lora_test_support.h"
#include "ops/ops.h"
#include "optim/adamw.h"

namespace sllm::lora {
namespace {

using namespace testing;

class BothFamilies : public ::testing::TestWithParam<nn::Family> {};
INSTANTIATE_TEST_SUITE_P(Lora, BothFamilies, ::testing::Values(nn::Family::GPT2, nn::Family::Llama),
                         family_name);

TEST_P(BothFamilies, FreshAdapterWithZeroBEqualsTheBase) {
  auto model = tiny_model(GetParam());
  auto [ids, targets] = batch();
  const std::vector<float> base = floats(model->forward(ids));
  LoraModel lora(*model);
  LoraConfig cfg;
  cfg.r = 4;
  cfg.lora_alpha = 8;
  lora.add_adapter("default", cfg);
  EXPECT_EQ(floats(model->forward(ids)), base);  // x·Wᵀ + s·(x·Aᵀ)·0ᵀ adds exact zeros
  randomize_B(lora, 1);
  EXPECT_NE(floats(model->forward(ids)), base);
}

TEST_P(BothFamilies, BackwardReachesAAndBOnly) {
  auto model = tiny_model(GetParam());
  auto [ids, targets] = batch();
  LoraModel lora(*model);
  LoraConfig cfg;
  cfg.r = 2;
  lora.add_adapter("default", cfg);
  randomize_B(lora, 2);
  autograd::backward(model->loss(ids, targets));
  for (const nn::Parameter& p : model->parameters()) {
    EXPECT_FALSE(p.value.requires_grad()) << p.name;
    EXPECT_FALSE(p.value.grad().defined()) << p.name << " is frozen but got a gradient";
  }
  const auto params = lora.parameters();
  EXPECT_EQ(params.size(), 2 * model->linears().size());  // all-linear: every trunk Linear
  for (const nn::Parameter& p : params) {
    ASSERT_TRUE(p.value.grad().defined()) << p.name;
    EXPECT_EQ(p.value.grad().shape(), p.value.shape()) << p.name;
  }
}

std::vector<optim::ParamRef> refs(const std::vector<nn::Parameter>& params) {
  std::vector<optim::ParamRef> out;
  for (const nn::Parameter& p : params) out.push_back({p.name, p.value, true});
  return out;
}

TEST_P(BothFamilies, BaseWeightsBitIdenticalAfterAdamWSteps) {
  auto model = tiny_model(GetParam());
  auto [ids, targets] = batch();
  const auto before = snapshot(*model);
  LoraModel lora(*model);
  LoraConfig cfg;
  cfg.r = 4;
  cfg.lora_dropout = 0.1f;
  lora.add_adapter("default", cfg);
  lora.set_training(true);
  const std::vector<float> A0 = floats(lora.parameters()[0].value);
  optim::AdamW opt(refs(lora.parameters()), optim::AdamWConfig{.lr = 1e-2f});
  float first_loss = 0, last_loss = 0;
  for (int step = 0; step < 4; ++step) {
    lora.set_dropout_step(step);
    Tensor loss = model->loss(ids, targets);
    (step == 0 ? first_loss : last_loss) = loss.item();
    autograd::backward(loss);
    opt.step(1e-2f);
    opt.zero_grad();
  }
  EXPECT_EQ(snapshot(*model), before);
  EXPECT_NE(floats(lora.parameters()[0].value), A0);
  EXPECT_LT(last_loss, first_loss);
}

TEST_P(BothFamilies, DisabledScopeIsTheBaseModel) {
  auto model = tiny_model(GetParam());
  auto [ids, targets] = batch();
  const std::vector<float> base = floats(model->forward(ids));
  LoraModel lora(*model);
  lora.add_adapter("default", LoraConfig{});
  randomize_B(lora, 3);
  const std::vector<float> adapted = floats(model->forward(ids));
  EXPECT_NE(adapted, base);
  {
    auto off = lora.disabled();
    EXPECT_EQ(floats(model->forward(ids)), base);
    auto nested = lora.disabled();
  }
  EXPECT_EQ(floats(model->forward(ids)), adapted);
}

TEST(Lora, SeveralAdaptersOneActive) {
  auto model = tiny_model(nn::Family::Llama);
  auto [ids, targets] = batch();
  LoraModel lora(*model);
  LoraConfig qv;
  qv.target_modules = parse_targets("q_proj, v_proj");
  qv.r = 2;
  lora.add_adapter("qv", qv);
  randomize_B(lora, 4, "qv");
  const std::vector<float> with_qv = floats(model->forward(ids));
  LoraConfig mlp;
  mlp.target_modules = {"down_proj"};
  mlp.seed = 9;
  lora.add_adapter("mlp", mlp);  // becomes active
  EXPECT_EQ(lora.active(), "mlp");
  randomize_B(lora, 5, "mlp");
  const std::vector<float> with_mlp = floats(model->forward(ids));
  EXPECT_NE(with_mlp, with_qv);
  EXPECT_EQ(lora.parameters("qv").size(), 2u * 2 * 2);  // 2 layers x (q, v) x (A, B)
  EXPECT_EQ(lora.parameters("mlp").size(), 2u * 2);
  for (const auto& p : lora.parameters("qv")) EXPECT_FALSE(p.value.requires_grad()) << p.name;
  for (const auto& p : lora.parameters("mlp")) EXPECT_TRUE(p.value.requires_grad()) << p.name;
  lora.set_active("qv");
  EXPECT_EQ(floats(model->forward(ids)), with_qv);
  for (const auto& p : lora.parameters("mlp")) EXPECT_FALSE(p.value.requires_grad()) << p.name;
  EXPECT_NE(error_of([&] { lora.set_active("nope"); }).find("no LoRA adapter named 'nope'"), std::string::npos);
  EXPECT_NE(error_of([&] { lora.add_adapter("qv", qv); }).find("already exists"), std::string::npos);
}

TEST(Lora, TargetsMatchAsPeftDoes) {
  EXPECT_TRUE(match_target("model.layers.0.self_attn.q_proj", "q_proj"));
  EXPECT_TRUE(match_target("model.layers.0.self_attn.q_proj", "self_attn.q_proj"));
  EXPECT_TRUE(match_target("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.q_proj"));
  EXPECT_FALSE(match_target("model.layers.0.self_attn.q_proj", "proj"));
  EXPECT_FALSE(match_target("model.layers.0.self_attn.xq_proj", "q_proj"));
  auto gpt2 = tiny_model(nn::Family::GPT2);
  LoraConfig cfg;
  cfg.target_modules = {"c_proj"};  // attn.c_proj and mlp.c_proj of both blocks
  EXPECT_EQ(select_targets(*gpt2, cfg).size(), 4u);
  cfg.target_modules = {"attn.c_proj"};
  EXPECT_EQ(select_targets(*gpt2, cfg).size(), 2u);
  cfg.target_modules = {};
  cfg.target_regex = R"(transformer\.h\.1\..*c_attn)";
  const auto chosen = select_targets(*gpt2, cfg);
  ASSERT_EQ(chosen.size(), 1u);
  EXPECT_EQ(chosen[0]->path(), "transformer.h.1.attn.c_attn");
  EXPECT_EQ(parse_targets("all-linear"), std::vector<std::string>{"all-linear"});
}

TEST(Lora, InitAsPeft) {
  auto model = tiny_model(nn::Family::Llama);
  LoraModel lora(*model);
  LoraConfig cfg;
  cfg.r = 8;
  cfg.target_modules = {"gate_proj"};  // in = 32
  lora.add_adapter("kaiming", cfg);
  double max_abs = 0;
  for (const auto& p : lora.parameters()) {
    const auto v = floats(p.value);
    if (p.name.find("lora_B") != std::string::npos) {
      for (float x : v) EXPECT_EQ(x, 0.0f);
      continue;
    }
    for (float x : v) max_abs = std::max(max_abs, std::fabs(static_cast<double>(x)));
  }
  EXPECT_LE(max_abs, 1.0 / std::sqrt(32.0));
  EXPECT_GT(max_abs, 0.8 / std::sqrt(32.0));  // 512 uniform draws reach near the bound
  cfg.init_a = InitA::Gaussian;
  cfg.target_modules = {"down_proj"};  // in = 96
  lora.add_adapter("gauss", cfg);
  double sum_sq = 0;
  int64_t n = 0;
  for (const auto& p : lora.parameters("gauss"))
    if (p.name.find("lora_A") != std::string::npos)
      for (float x : floats(p.value)) sum_sq += double(x) * x, ++n;
  EXPECT_NEAR(std::sqrt(sum_sq / n), 1.0 / 8, 0.01);  // std 1/r over 1536 draws
}

TEST(Lora, ScaleIsAlphaOverROrSqrtR) {
  LoraConfig cfg;
  cfg.r = 16;
  cfg.lora_alpha = 32;
  EXPECT_FLOAT_EQ(lora_scale(cfg), 2.0f);
  cfg.use_rslora = true;
  EXPECT_FLOAT_EQ(lora_scale(cfg), 8.0f);
}

TEST(Lora, DropoutOnlyInTrainingAndDeterministic) {
  auto model = tiny_model(nn::Family::GPT2);
  auto [ids, targets] = batch();
  LoraModel lora(*model);
  LoraConfig cfg;
  cfg.lora_dropout = 0.5f;
  lora.add_adapter("default", cfg);
  randomize_B(lora, 6);
  const std::vector<float> eval = floats(model->forward(ids));
  lora.set_training(true);
  lora.set_dropout_step(0);
  const std::vector<float> step0 = floats(model->forward(ids));
  EXPECT_NE(step0, eval);
  EXPECT_EQ(floats(model->forward(ids)), step0);  // same step, same masks
  lora.set_dropout_step(1);
  EXPECT_NE(floats(model->forward(ids)), step0);
  lora.set_training(false);
  EXPECT_EQ(floats(model->forward(ids)), eval);
}

// Central differences through one adapted Linear, dropout on (its mask is fixed by the
// seed, so the function is smooth): d/dx, d/dA and d/dB of sum(w ⊙ y).
TEST(Lora, GradientMatchesCentralDifferences) {
  nn::Linear linear("layer", 5, 4, /*bias=*/true, /*conv1d=*/false);
  Rng rng(11);
  auto fill = [&](Tensor t) {
    for (int64_t i = 0; i < t.numel(); ++i) t.mutable_f32()[i] = static_cast<float>(rng.normal()) * 0.5f;
  };
  fill(linear.weight());
  fill(linear.bias());
  auto state = std::make_shared<LoraState>();
  state->active = "a";
  state->training = true;
  auto layer = std::make_shared<LoraLayer>(linear, state);
  AdapterWeights w;
  w.A = Tensor::empty({3, 5});
  w.B = Tensor::empty({4, 3});
  w.scale = 1.5f;
  w.dropout = 0.3f;
  w.dropout_seed = 42;
  fill(w.A);
  fill(w.B);
  w.A.set_requires_grad(true);
  w.B.set_requires_grad(true);
  layer->adapters().emplace("a", w);
  linear.set_adapter(layer);
  Tensor x = Tensor::empty({2, 3, 5});
  fill(x);
  x.set_requires_grad(true);
  std::vector<float> proj(2 * 3 * 4);
  for (auto& v : proj) v = static_cast<float>(rng.normal());
  const Tensor weights = Tensor::from_floats(proj, {2, 3, 4});
  auto objective = [&] { return ops::sum(ops::mul(linear.forward(x), weights)); };

  linear.weight().set_requires_grad(false);
  linear.bias().set_requires_grad(false);
  autograd::backward(objective());
  for (Tensor* t : {&x, &w.A, &w.B}) {
    const std::vector<float> analytic = floats(t->grad());
    for (int64_t i = 0; i < t->numel(); ++i) {
      auto at = [&](float delta) {
        autograd::NoGradGuard no_grad;
        const float saved = t->f32()[i];
        t->mutable_f32()[i] = saved + delta;
        const double f = objective().item();
        t->mutable_f32()[i] = saved;
        return f;
      };
      const float h = 1e-2f;
      const double numeric = (at(h) - at(-h)) / (2.0 * h);
      EXPECT_NEAR(analytic[i], numeric, 2e-3 * (1.0 + std::fabs(numeric))) << t->name() << " element " << i;
    }
  }
  EXPECT_FALSE(linear.weight().grad().defined());
  EXPECT_FALSE(linear.bias().grad().defined());
}

TEST(LoraErrors, TargetMatchingNothingListsTheValidNames) {
  auto model = tiny_model(nn::Family::Llama);
  LoraModel lora(*model);
  LoraConfig cfg;
  cfg.target_modules = {"q_proj", "c_attn"};
  const std::string e = error_of([&] { lora.add_adapter("x", cfg); });
  EXPECT_NE(e.find("'c_attn' matches no Linear"), std::string::npos) << e;
  EXPECT_NE(e.find("down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj"), std::string::npos) << e;
  EXPECT_NE(e.find("HINT"), std::string::npos) << e;
  EXPECT_TRUE(lora.adapter_names().empty());
  for (const auto& p : model->parameters()) EXPECT_TRUE(p.value.requires_grad()) << "a failed add froze " << p.name;
}

TEST(LoraErrors, RankAlphaAndDropoutAreChecked) {
  auto model = tiny_model(nn::Family::GPT2);
  LoraModel lora(*model);
  LoraConfig cfg;
  cfg.r = 0;
  EXPECT_NE(error_of([&] { lora.add_adapter("x", cfg); }).find("LoRA rank r = 0"), std::string::npos);
  cfg.r = -3;
  EXPECT_NE(error_of([&] { lora.add_adapter("x", cfg); }).find("LoRA rank r = -3"), std::string::npos);
  cfg.r = 4;
  cfg.lora_alpha = 0;
  EXPECT_NE(error_of([&] { lora.add_adapter("x", cfg); }).find("lora_alpha = 0"), std::string::npos);
  cfg.lora_alpha = 8;
  cfg.lora_dropout = 1;
  EXPECT_NE(error_of([&] { lora.add_adapter("x", cfg); }).find("lora_dropout = 1"), std::string::npos);
  EXPECT_NE(error_of([&] { LoraModel second(*model); lora.add_adapter("ok", LoraConfig{}); LoraModel third(*model); })
                .find("already carries an adapter"),
            std::string::npos);
}

}  // namespace
}  // namespace sllm::lora
