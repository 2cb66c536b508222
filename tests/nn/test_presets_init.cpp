// Built-in presets (names, validity, parameter counts) and the GPT-2 initialization
// (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners", §2.3:
// N(0, 0.02), residual projections scaled by 1/sqrt(N) with N = 2 · n_layer residual
// layers; biases 0 and norm gains 1 as in HF's GPT2PreTrainedModel._init_weights).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "nn/config.h"
#include "nn/transformer.h"
#include "tests/nn/nn_test_support.h"

namespace sllm::nn {
namespace {

using testing::small_gpt2;
using testing::small_llama;

int64_t sum_of_numels(const Transformer& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.value.numel();
  return n;
}

TEST(Presets, AllExistAndValidate) {
  const std::vector<std::string> expected = {"tiny", "small", "small-llama", "gpt2-124m", "smollm2-135m"};
  for (const auto& name : expected) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(is_preset(name));
    EXPECT_NE(std::find(preset_names().begin(), preset_names().end(), name), preset_names().end());
    const ModelConfig c = preset(name);
    EXPECT_NO_THROW(c.validate());
    EXPECT_EQ(load_config(name).n_embd, c.n_embd);  // load_config resolves preset names
  }
  EXPECT_EQ(preset("small-llama").family, Family::Llama);
  EXPECT_EQ(preset("gpt2-124m").family, Family::GPT2);
  EXPECT_EQ(preset("smollm2-135m").family, Family::Llama);
  EXPECT_FALSE(is_preset("gpt2-125m"));
  try {
    preset("gpt2-125m");
    ADD_FAILURE() << "unknown preset accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("gpt2-125m"), std::string::npos) << what;
    EXPECT_NE(what.find("HINT"), std::string::npos) << what;
    EXPECT_NE(what.find("small-llama"), std::string::npos) << what;  // the hint lists the presets
    EXPECT_NE(what.find("smollm2-135m"), std::string::npos) << what;
  }
}

TEST(Presets, ParameterCountEqualsConstructedModel) {
  for (const char* name : {"tiny", "small", "small-llama"}) {
    SCOPED_TRACE(name);
    const Transformer model(preset(name));
    EXPECT_EQ(preset(name).num_parameters(), sum_of_numels(model));
  }
}

TEST(Presets, Gpt2_124mHasHuggingFaceParameterCount) {
  // GPT2LMHeadModel.from_pretrained("gpt2").num_parameters() with the tied head: 124,439,808
  // = wte 50257·768 + wpe 1024·768 + 12 · 7,087,872 per block + ln_f 2·768.
  const ModelConfig c = preset("gpt2-124m");
  EXPECT_EQ(c.vocab_size, 50257);
  EXPECT_EQ(c.n_ctx, 1024);
  EXPECT_EQ(c.n_embd, 768);
  EXPECT_EQ(c.n_layer, 12);
  EXPECT_EQ(c.n_head, 12);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_EQ(c.num_parameters(), 124439808);
}

TEST(Presets, Smollm2_135mHasTheHuggingFaceShape) {
  // HuggingFaceTB/SmolLM2-135M's config.json (LlamaForCausalLM): vocab 49152, 2048 positions,
  // hidden 576, 30 layers, 9 heads, 3 KV heads, MLP 1536, tied embeddings, rope_theta 1e5,
  // rms_norm_eps 1e-5. Parameters: embed 49152·576 + final norm 576 + 30 · (norms 2·576
  // + q/o 2·576² + k/v 2·576·192 + gate/up/down 3·576·1536) = 134,515,008 (what HF counts).
  const ModelConfig c = preset("smollm2-135m");
  EXPECT_EQ(c.family, Family::Llama);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.n_ctx, 2048);
  EXPECT_EQ(c.n_embd, 576);
  EXPECT_EQ(c.n_layer, 30);
  EXPECT_EQ(c.n_head, 9);
  EXPECT_EQ(c.n_kv_head, 3);
  EXPECT_EQ(c.head_dim(), 64);
  EXPECT_EQ(c.n_inner, 1536);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_EQ(c.rope_theta, 100000.0);
  EXPECT_EQ(c.norm_eps, 1e-5);
  EXPECT_EQ(c.num_parameters(), 134515008);
  EXPECT_EQ(c.num_parameters(), 49152 * 576 + 576 + 30 * (2 * 576 + 2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536));
  // Written as config.json and read back: the same model (what `sllm bench train --config
  // smollm2_135m_config.json` ran before the preset existed).
  const ModelConfig back = config_from_json(config_to_json(c), "smollm2-135m");
  EXPECT_EQ(back.family, c.family);
  EXPECT_EQ(back.vocab_size, c.vocab_size);
  EXPECT_EQ(back.n_ctx, c.n_ctx);
  EXPECT_EQ(back.n_embd, c.n_embd);
  EXPECT_EQ(back.n_layer, c.n_layer);
  EXPECT_EQ(back.n_head, c.n_head);
  EXPECT_EQ(back.n_kv_head, c.n_kv_head);
  EXPECT_EQ(back.n_inner, c.n_inner);
  EXPECT_EQ(back.tie_embeddings, c.tie_embeddings);
  EXPECT_EQ(back.rope_theta, c.rope_theta);
  EXPECT_EQ(back.norm_eps, c.norm_eps);
}

TEST(Presets, HandCountedSmallConfigs) {
  // GPT-2, V 50, C 24, n_ctx 24, 2 layers, inner 40: wte 1200 + wpe 576 + ln_f 48
  // + 2 · (ln 96 + c_attn 24·72+72 + c_proj 576+24 + c_fc 24·40+40 + mlp.c_proj 40·24+24).
  EXPECT_EQ(small_gpt2().num_parameters(), 1200 + 576 + 48 + 2 * (96 + 1800 + 600 + 1000 + 984));
  // Llama, kv width 2 heads · 6 = 12, untied: embed 1200 + lm_head 1200 + norm 24
  // + 2 · (norms 48 + q 576 + k 288 + v 288 + o 576 + gate/up/down 3 · 960).
  EXPECT_EQ(small_llama().num_parameters(), 1200 + 1200 + 24 + 2 * (48 + 576 + 288 + 288 + 576 + 2880));
  for (const ModelConfig& c : {small_gpt2(), small_llama()}) EXPECT_EQ(c.num_parameters(), sum_of_numels(Transformer(c)));
}

// ---- init ---------------------------------------------------------------------------------

struct Stats {
  double mean = 0, std = 0, within_one_std = 0;  // fraction with |x − mean| ≤ std
  float min = 0, max = 0;
};

Stats stats(const Tensor& t) {
  const int64_t n = t.numel();
  const float* x = t.f32();
  Stats s;
  for (int64_t i = 0; i < n; ++i) s.mean += x[i];
  s.mean /= static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) s.std += (x[i] - s.mean) * (x[i] - s.mean);
  s.std = std::sqrt(s.std / static_cast<double>(n));
  int64_t inside = 0;
  for (int64_t i = 0; i < n; ++i) inside += std::fabs(x[i] - s.mean) <= s.std;
  s.within_one_std = static_cast<double>(inside) / static_cast<double>(n);
  s.min = *std::min_element(x, x + n);
  s.max = *std::max_element(x, x + n);
  return s;
}

// A matrix is N(0, std²): its sample std within 2% (the standard error of a sample std is
// std/sqrt(2n), ≤ 0.3% for the ≥ 65k-element matrices used here, so 2% is > 7 sigma), its
// mean within 6 standard errors of 0, and 68.3% of it within one std (a uniform
// distribution of the same std has 57.7%; the standard error of the fraction is ≤ 0.2%).
void expect_normal(const Tensor& t, double expected_std, const std::string& name) {
  SCOPED_TRACE(name);
  const Stats s = stats(t);
  const double n = static_cast<double>(t.numel());
  ASSERT_GE(n, 65536);
  EXPECT_NEAR(s.std / expected_std, 1.0, 0.02);
  EXPECT_LT(std::fabs(s.mean), 6 * expected_std / std::sqrt(n));
  EXPECT_NEAR(s.within_one_std, 0.6827, 0.01);
}

void expect_constant(const Tensor& t, float value, const std::string& name) {
  const Stats s = stats(t);
  EXPECT_EQ(s.min, value) << name;
  EXPECT_EQ(s.max, value) << name;
}

// Wide enough that every matrix has ≥ 65k elements for the statistics.
ModelConfig wide(Family family) {
  ModelConfig c;
  c.family = family;
  c.vocab_size = 512, c.n_ctx = 256, c.n_embd = 256, c.n_layer = 4, c.n_head = 4, c.n_kv_head = 4, c.n_inner = 1024;
  if (family == Family::Llama) c.n_kv_head = 2, c.tie_embeddings = false;
  return c;
}

TEST(Init, Gpt2Statistics) {
  const ModelConfig c = wide(Family::GPT2);
  Transformer model(c);
  model.init(1234);
  const double resid = 0.02 / std::sqrt(2.0 * c.n_layer);  // 0.00707
  expect_normal(model.param("transformer.wte.weight"), 0.02, "wte");
  expect_normal(model.param("transformer.wpe.weight"), 0.02, "wpe");
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string pre = "transformer.h." + std::to_string(l) + ".";
    expect_normal(model.param(pre + "attn.c_attn.weight"), 0.02, pre + "attn.c_attn.weight");
    expect_normal(model.param(pre + "mlp.c_fc.weight"), 0.02, pre + "mlp.c_fc.weight");
    expect_normal(model.param(pre + "attn.c_proj.weight"), resid, pre + "attn.c_proj.weight");
    expect_normal(model.param(pre + "mlp.c_proj.weight"), resid, pre + "mlp.c_proj.weight");
    for (const char* b : {"attn.c_attn.bias", "attn.c_proj.bias", "mlp.c_fc.bias", "mlp.c_proj.bias", "ln_1.bias", "ln_2.bias"})
      expect_constant(model.param(pre + b), 0.0f, pre + b);
    expect_constant(model.param(pre + "ln_1.weight"), 1.0f, pre + "ln_1.weight");
    expect_constant(model.param(pre + "ln_2.weight"), 1.0f, pre + "ln_2.weight");
  }
  expect_constant(model.param("transformer.ln_f.weight"), 1.0f, "ln_f.weight");
  expect_constant(model.param("transformer.ln_f.bias"), 0.0f, "ln_f.bias");
}

TEST(Init, LlamaStatistics) {
  // The same recipe: residual outputs (o_proj, down_proj) scaled, norms 1, no biases.
  const ModelConfig c = wide(Family::Llama);
  Transformer model(c);
  model.init(99);
  const double resid = 0.02 / std::sqrt(2.0 * c.n_layer);
  expect_normal(model.param("model.embed_tokens.weight"), 0.02, "embed_tokens");
  expect_normal(model.param("lm_head.weight"), 0.02, "lm_head");
  expect_normal(model.param("model.layers.2.self_attn.q_proj.weight"), 0.02, "q_proj");
  expect_normal(model.param("model.layers.2.mlp.gate_proj.weight"), 0.02, "gate_proj");
  expect_normal(model.param("model.layers.2.self_attn.o_proj.weight"), resid, "o_proj");
  expect_normal(model.param("model.layers.2.mlp.down_proj.weight"), resid, "down_proj");
  expect_constant(model.param("model.layers.2.input_layernorm.weight"), 1.0f, "input_layernorm");
  expect_constant(model.param("model.layers.2.post_attention_layernorm.weight"), 1.0f, "post_attention_layernorm");
  expect_constant(model.param("model.norm.weight"), 1.0f, "norm");
}

bool same_parameters(const Transformer& a, const Transformer& b) {
  for (size_t i = 0; i < a.parameters().size(); ++i) {
    const Tensor& x = a.parameters()[i].value;
    const Tensor& y = b.parameters()[i].value;
    if (std::memcmp(x.raw(), y.raw(), x.nbytes()) != 0) return false;
  }
  return true;
}

TEST(Init, DeterministicForASeed) {
  for (const ModelConfig& c : {small_gpt2(), small_llama()}) {
    SCOPED_TRACE(c.family_name());
    Transformer a(c), b(c), other(c);
    a.init(42);
    b.init(42);
    other.init(43);
    EXPECT_TRUE(same_parameters(a, b));
    EXPECT_FALSE(same_parameters(a, other));
    // init is a pure function of the seed: re-running it over changed weights restores them.
    for (auto& p : other.parameters()) p.value.fill_(0.5f);
    other.init(42);
    EXPECT_TRUE(same_parameters(a, other));
    // Distinct matrices get distinct draws (no stream restarted per parameter).
    const bool gpt2 = c.family == Family::GPT2;
    const Tensor& q = a.param(gpt2 ? "transformer.h.0.attn.c_attn.weight" : "model.layers.0.self_attn.q_proj.weight");
    const Tensor& emb = a.param(gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight");
    EXPECT_NE(std::memcmp(q.raw(), emb.raw(), std::min(q.nbytes(), emb.nbytes())), 0);
  }
}

}  // namespace
}  // namespace sllm::nn
