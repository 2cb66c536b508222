// The model as modules (src/nn: Linear, norms, attention, MLP, trunks): a Linear's forward
// is ops::linear on its own weight and bias; the parameters keep their Hugging Face names
// and file order (checkpoints, optimizer state and golden fixtures depend on it); the
// Linears are found by HF module path (LoRA's --lora-targets), and the entries that
// parameters() returns are the modules' own tensors.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "autograd/autograd.h"
#include "nn/linear.h"
#include "ops/ops.h"
#include "tests/nn/nn_test_support.h"

namespace sllm::nn {
namespace {

using testing::random_ids;
using testing::small_gpt2;
using testing::small_llama;

Tensor random_tensor(const Shape& shape, uint32_t seed) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  uint32_t x = seed * 2654435761u + 7;
  for (float& f : v) {
    x = x * 1664525u + 1013904223u;  // any spread of values in [-1, 1) will do
    f = static_cast<float>(x >> 8) / 8388608.0f - 1.0f;
  }
  return Tensor::from_floats(v, shape);
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

std::vector<std::string> names_of(const std::vector<Parameter>& params) {
  std::vector<std::string> names;
  for (const Parameter& p : params) names.push_back(p.name);
  return names;
}

std::vector<std::string> paths_of(const std::vector<Linear*>& linears) {
  std::vector<std::string> paths;
  for (const Linear* l : linears) paths.push_back(l->path());
  return paths;
}

TEST(Linear, ForwardIsOpsLinearOnItsWeightAndBias) {
  for (bool bias : {true, false}) {
    SCOPED_TRACE(bias ? "with bias" : "without bias");
    Linear lin("blocks.0.proj", /*in=*/6, /*out=*/5, bias, /*conv1d=*/false);
    lin.weight().copy_from(random_tensor({5, 6}, 1));
    if (bias) lin.bias().copy_from(random_tensor({5}, 2));
    const Tensor x = random_tensor({2, 3, 6}, 3);
    const Tensor y = lin.forward(x);
    EXPECT_EQ(y.shape(), (Shape{2, 3, 5}));
    EXPECT_TRUE(bitwise_equal(y, ops::linear(x, lin.weight(), bias ? lin.bias() : Tensor())));
    // A wrong bias would show: the bias-free product differs wherever the bias is not zero.
    if (bias) {
      EXPECT_FALSE(bitwise_equal(y, ops::linear(x, lin.weight())));
    }
  }
}

TEST(Linear, OwnsNamedTrainableParameters) {
  Linear lin("transformer.h.3.attn.c_attn", 4, 12, /*bias=*/true, /*conv1d=*/true);
  EXPECT_EQ(lin.path(), "transformer.h.3.attn.c_attn");
  EXPECT_EQ(lin.in_features(), 4);
  EXPECT_EQ(lin.out_features(), 12);
  EXPECT_TRUE(lin.conv1d());
  EXPECT_EQ(lin.weight().shape(), (Shape{12, 4}));  // (out, in), also for Conv1D
  EXPECT_EQ(lin.bias().shape(), (Shape{12}));
  std::vector<Parameter> params;
  lin.append_parameters(params);
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].name, "transformer.h.3.attn.c_attn.weight");
  EXPECT_TRUE(params[0].conv1d);
  EXPECT_TRUE(params[0].value.same_as(lin.weight()));
  EXPECT_EQ(params[1].name, "transformer.h.3.attn.c_attn.bias");
  EXPECT_FALSE(params[1].conv1d);  // a bias is a vector in both layouts
  for (const Parameter& p : params) {
    EXPECT_TRUE(p.value.requires_grad());
    EXPECT_EQ(p.value.name(), p.name);
  }
  Linear no_bias("model.layers.0.mlp.up_proj", 4, 7, false, false);
  EXPECT_FALSE(no_bias.has_bias());
  params.clear();
  no_bias.append_parameters(params);
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0].name, "model.layers.0.mlp.up_proj.weight");
}

TEST(Linear, ZeroSizeIsAnError) {
  EXPECT_THROW(Linear("x.proj", 0, 4, false, false), Error);
}

// The order of the Hugging Face files, written out: a change here breaks every checkpoint.
TEST(ModelModules, Gpt2ParameterNamesAndOrder) {
  Transformer model(small_gpt2());
  std::vector<std::string> expected = {"transformer.wte.weight", "transformer.wpe.weight"};
  for (int l = 0; l < 2; ++l) {
    const std::string pre = "transformer.h." + std::to_string(l) + ".";
    for (const char* s : {"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                          "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                          "mlp.c_proj.weight", "mlp.c_proj.bias"})
      expected.push_back(pre + s);
  }
  expected.push_back("transformer.ln_f.weight");
  expected.push_back("transformer.ln_f.bias");
  const std::vector<Parameter> params = model.parameters();
  EXPECT_EQ(names_of(params), expected);
  for (const Parameter& p : params) {
    const bool conv1d = p.name.find(".c_") != std::string::npos && p.name.ends_with(".weight");
    EXPECT_EQ(p.conv1d, conv1d) << p.name;
    EXPECT_EQ(p.value.name(), p.name);
  }
}

TEST(ModelModules, LlamaParameterNamesAndOrder) {
  for (bool tied : {false, true}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    ModelConfig c = small_llama();
    c.tie_embeddings = tied;
    Transformer model(c);
    std::vector<std::string> expected = {"model.embed_tokens.weight"};
    for (int l = 0; l < 2; ++l) {
      const std::string pre = "model.layers." + std::to_string(l) + ".";
      for (const char* s : {"input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                            "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
                            "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"})
        expected.push_back(pre + s);
    }
    expected.push_back("model.norm.weight");
    if (!tied) expected.push_back("lm_head.weight");
    EXPECT_EQ(names_of(model.parameters()), expected);
    for (const Parameter& p : model.parameters()) EXPECT_FALSE(p.conv1d) << p.name;
    EXPECT_TRUE(model.lm_head_weight().same_as(model.param(tied ? "model.embed_tokens.weight" : "lm_head.weight")));
  }
}

TEST(ModelModules, ConstParametersAreTheSameTensors) {
  Transformer model(small_llama());
  const Transformer& view = model;
  const std::vector<ConstParameter> read_only = view.parameters();
  const std::vector<Parameter> params = model.parameters();
  ASSERT_EQ(read_only.size(), params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(read_only[i].name, params[i].name);
    EXPECT_TRUE(read_only[i].value.same_as(params[i].value));
    EXPECT_EQ(read_only[i].conv1d, params[i].conv1d);
  }
}

// What LoRA's --lora-targets chooses from: every Linear of the trunk with its HF module
// path, the LM head excluded ("all-linear" as PEFT means it).
TEST(ModelModules, LinearsByHuggingFaceModulePath) {
  Transformer llama(small_llama());  // untied: lm_head exists, and is still not listed
  std::vector<std::string> expected;
  for (int l = 0; l < 2; ++l)
    for (const char* s : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                          "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"})
      expected.push_back("model.layers." + std::to_string(l) + "." + s);
  EXPECT_EQ(paths_of(llama.linears()), expected);

  Linear* k = llama.find_linear("model.layers.1.self_attn.k_proj");
  ASSERT_NE(k, nullptr);
  EXPECT_TRUE(k->weight().same_as(llama.param("model.layers.1.self_attn.k_proj.weight")));
  const ModelConfig& c = llama.config();
  EXPECT_EQ(k->in_features(), c.n_embd);
  EXPECT_EQ(k->out_features(), c.n_kv_head * c.head_dim());  // grouped-query: fewer key heads
  EXPECT_EQ(llama.find_linear("lm_head"), nullptr);
  EXPECT_EQ(llama.find_linear("q_proj"), nullptr);  // whole paths only; suffix matching is LoRA's
  EXPECT_EQ(llama.find_linear("model.layers.2.self_attn.q_proj"), nullptr);

  Transformer gpt2(small_gpt2());
  EXPECT_EQ(paths_of(gpt2.linears()),
            (std::vector<std::string>{"transformer.h.0.attn.c_attn", "transformer.h.0.attn.c_proj",
                                      "transformer.h.0.mlp.c_fc", "transformer.h.0.mlp.c_proj",
                                      "transformer.h.1.attn.c_attn", "transformer.h.1.attn.c_proj",
                                      "transformer.h.1.mlp.c_fc", "transformer.h.1.mlp.c_proj"}));
  Linear* c_attn = gpt2.find_linear("transformer.h.0.attn.c_attn");
  ASSERT_NE(c_attn, nullptr);
  EXPECT_TRUE(c_attn->conv1d());
  EXPECT_TRUE(c_attn->has_bias());
  EXPECT_EQ(c_attn->out_features(), 3 * gpt2.config().n_embd);
  EXPECT_TRUE(c_attn->bias().same_as(gpt2.param("transformer.h.0.attn.c_attn.bias")));
}

// The forward pass goes through the Linear that find_linear returns: changing its weight
// changes the logits, and putting the old values back restores them bit for bit.
TEST(ModelModules, ForwardReadsTheModulesWeights) {
  for (const ModelConfig& c : {small_gpt2(), small_llama()}) {
    SCOPED_TRACE(c.family == Family::GPT2 ? "gpt2" : "llama");
    Transformer model(c);
    model.init(5);
    autograd::NoGradGuard no_grad;
    const Tensor ids = random_ids(2, 7, c.vocab_size, 9);
    const Tensor before = model.forward(ids);
    Linear* last = model.linears().back();  // the last layer's MLP output projection
    const Tensor saved = last->weight().clone();
    last->weight().zero_();
    EXPECT_FALSE(bitwise_equal(model.forward(ids), before)) << last->path();
    last->weight().copy_from(saved);
    EXPECT_TRUE(bitwise_equal(model.forward(ids), before));
  }
}

// parameters() hands out the modules' own tensors: a tensor assigned through it is the
// one the module then holds (Transformer::to relies on this).
TEST(ModelModules, AssigningThroughParametersReplacesTheModulesTensor) {
  Transformer model(small_llama());
  const std::string path = "model.layers.0.self_attn.v_proj";
  Tensor replacement = random_tensor(model.param(path + ".weight").shape(), 4);
  for (const Parameter& p : model.parameters())
    if (p.name == path + ".weight") p.value = replacement;
  EXPECT_TRUE(model.find_linear(path)->weight().same_as(replacement));
  EXPECT_TRUE(model.param(path + ".weight").same_as(replacement));
}

// The parameter list is built once and refers to modules on the heap, so it survives a move.
TEST(ModelModules, MovedModelKeepsItsParameterList) {
  Transformer model(small_gpt2());
  model.init(3);
  const Tensor ids = random_ids(1, 5, 50, 2);
  autograd::NoGradGuard no_grad;
  const Tensor before = model.forward(ids);
  const Tensor ln_f_bias = model.param("transformer.ln_f.bias");
  Transformer moved = std::move(model);
  ASSERT_EQ(moved.parameters().size(), 28u);
  EXPECT_TRUE(moved.parameters().back().value.same_as(ln_f_bias));
  EXPECT_TRUE(bitwise_equal(moved.forward(ids), before));
}

TEST(ModelModules, UnknownParameterNameIsAnErrorWithAHint) {
  Transformer model(small_gpt2());
  try {
    model.param("transformer.h.0.attn.q_proj.weight");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("transformer.h.0.attn.q_proj.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sllm::nn
