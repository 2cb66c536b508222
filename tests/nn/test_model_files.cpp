// Model directories (io::save_model / io::load_model): what sllm writes reloads bit for bit
// and is laid out the Hugging Face way (names, GPT-2 Conv1D [in, out], config.json keys);
// bad directories and files raise sllm::Error with a hint; half-precision weights and
// GPT-2 files in the original OpenAI/HF layout load.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "autograd/autograd.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "io/model_files.h"
#include "io/safetensors.h"
#include "tensor/dtype.h"
#include "tests/nn/nn_test_support.h"

namespace sllm::nn {
namespace {

namespace fs = std::filesystem;

using testing::FileTensor;
using testing::file_tensors;
using testing::find_tensor;
using testing::golden_dir;
using testing::random_ids;
using testing::ScratchDir;
using testing::small_gpt2;
using testing::small_llama;
using testing::write_tensors;

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

void expect_same_config(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.family, b.family);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.n_ctx, b.n_ctx);
  EXPECT_EQ(a.n_embd, b.n_embd);
  EXPECT_EQ(a.n_layer, b.n_layer);
  EXPECT_EQ(a.n_head, b.n_head);
  EXPECT_EQ(a.n_kv_head, b.n_kv_head);
  EXPECT_EQ(a.n_inner, b.n_inner);
  EXPECT_EQ(a.norm_eps, b.norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.tie_embeddings, b.tie_embeddings);
  EXPECT_EQ(a.gelu_tanh, b.gelu_tanh);
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_file(path)); }

// ---- round trip -----------------------------------------------------------------------

class ModelRoundTrip : public ::testing::TestWithParam<bool> {  // true: GPT-2, false: Llama
 protected:
  ModelConfig config() const { return GetParam() ? small_gpt2() : small_llama(); }
};

TEST_P(ModelRoundTrip, SaveThenLoadIsBitwiseIdentical) {
  ScratchDir dir("model");
  Transformer model(config());
  model.init(7);
  io::save_model(model, dir.str());
  auto loaded = io::load_model(dir.str());

  expect_same_config(loaded->config(), model.config());
  ASSERT_EQ(loaded->parameters().size(), model.parameters().size());
  for (size_t i = 0; i < model.parameters().size(); ++i) {
    EXPECT_EQ(loaded->parameters()[i].name, model.parameters()[i].name);
    EXPECT_TRUE(bitwise_equal(loaded->parameters()[i].value, model.parameters()[i].value)) << model.parameters()[i].name;
  }
  autograd::NoGradGuard no_grad;
  const Tensor ids = random_ids(2, 9, model.config().vocab_size, 3);
  EXPECT_TRUE(bitwise_equal(loaded->forward(ids), model.forward(ids)));
}

TEST_P(ModelRoundTrip, WrittenFilesUseHuggingFaceNamesShapesAndKeys) {
  ScratchDir dir("model");
  const ModelConfig c = config();
  Transformer model(c);
  model.init(11);
  io::save_model(model, dir.str());

  io::SafetensorsFile file = io::SafetensorsFile::open(dir.file("model.safetensors"));
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.entries().size(), model.parameters().size());
  const int64_t C = c.n_embd, H = c.n_inner;
  if (c.family == Family::GPT2) {
    // HF's GPT-2 is built from Conv1D modules whose weight is [in, out]: c_attn is (C, 3C).
    const io::SafetensorsEntry& e = file.get("transformer.h.1.attn.c_attn.weight");
    EXPECT_EQ(e.dtype, "F32");
    EXPECT_EQ(e.shape, (std::vector<int64_t>{C, 3 * C}));
    EXPECT_EQ(file.get("transformer.h.0.mlp.c_fc.weight").shape, (std::vector<int64_t>{C, H}));
    EXPECT_EQ(file.get("transformer.h.0.mlp.c_proj.weight").shape, (std::vector<int64_t>{H, C}));
    EXPECT_EQ(file.get("transformer.wpe.weight").shape, (std::vector<int64_t>{c.n_ctx, C}));
    EXPECT_EQ(file.find("lm_head.weight"), nullptr);  // tied: HF does not store it
    // The file element [i][o] is our weight (o, i).
    const Tensor& w = model.param("transformer.h.1.attn.c_attn.weight");  // (3C, C)
    const float* stored = reinterpret_cast<const float*>(e.data);
    for (int64_t i = 0; i < C; ++i)
      for (int64_t o = 0; o < 3 * C; ++o) ASSERT_EQ(stored[i * 3 * C + o], w.f32()[o * C + i]) << i << "," << o;
  } else {
    const int64_t kvC = c.n_kv_head * c.head_dim();
    EXPECT_EQ(file.get("model.layers.1.self_attn.k_proj.weight").shape, (std::vector<int64_t>{kvC, C}));
    EXPECT_EQ(file.get("model.layers.0.mlp.gate_proj.weight").shape, (std::vector<int64_t>{H, C}));
    EXPECT_EQ(file.get("lm_head.weight").shape, (std::vector<int64_t>{c.vocab_size, C}));
    EXPECT_EQ(file.get("model.norm.weight").shape, (std::vector<int64_t>{C}));
  }

  // config.json: the HF keys of the family, and it parses back to the same config.
  const nlohmann::json j = read_json(dir.file("config.json"));
  if (c.family == Family::GPT2) {
    EXPECT_EQ(j.at("model_type"), "gpt2");
    EXPECT_EQ(j.at("n_embd"), C);
    EXPECT_EQ(j.at("n_positions"), c.n_ctx);
    EXPECT_EQ(j.at("activation_function"), "gelu_new");
  } else {
    EXPECT_EQ(j.at("model_type"), "llama");
    EXPECT_EQ(j.at("hidden_size"), C);
    EXPECT_EQ(j.at("num_key_value_heads"), c.n_kv_head);
    EXPECT_EQ(j.at("intermediate_size"), H);
    EXPECT_EQ(j.at("tie_word_embeddings"), false);
  }
  expect_same_config(config_from_json(j, "config.json"), c);
}

INSTANTIATE_TEST_SUITE_P(Families, ModelRoundTrip, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Gpt2" : "Llama"; });

// Re-saving the PyTorch-written fixtures gives the same tensors (names, dtypes, shapes and
// bytes) as the files transformers reads: our writer and loader are each other's inverse
// on a file we did not write.
TEST(ModelFiles, ResavedFixturesHoldTheSameTensors) {
  for (const char* name : {"gpt2_tiny", "llama_tiny"}) {
    SCOPED_TRACE(name);
    ScratchDir dir(name);
    io::save_model(*io::load_model(golden_dir(name)), dir.str());
    io::SafetensorsFile ours = io::SafetensorsFile::open(dir.file("model.safetensors"));
    io::SafetensorsFile theirs = io::SafetensorsFile::open(golden_dir(name) + "/model.safetensors");
    EXPECT_EQ(ours.entries().size(), theirs.entries().size());
    for (const auto& e : theirs.entries()) {
      const io::SafetensorsEntry* o = ours.find(e.name);
      ASSERT_NE(o, nullptr) << e.name;
      EXPECT_EQ(o->dtype, e.dtype) << e.name;
      EXPECT_EQ(o->shape, e.shape) << e.name;
      ASSERT_EQ(o->nbytes, e.nbytes) << e.name;
      EXPECT_EQ(std::memcmp(o->data, e.data, e.nbytes), 0) << e.name;
    }
    expect_same_config(load_config(dir.str()), load_config(golden_dir(name)));
  }
}

// ---- bad inputs -------------------------------------------------------------------------

// Runs `fn`, expecting an sllm::Error whose text contains every one of `needles` and a hint.
template <typename Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "no sllm::Error thrown";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("HINT"), std::string::npos) << what;
    EXPECT_FALSE(e.hint().empty()) << what;
    for (const auto& n : needles) EXPECT_NE(what.find(n), std::string::npos) << "'" << n << "' not in: " << what;
  }
}

// A saved small GPT-2 whose weight file a test then replaces with edited tensors.
struct EditableModel {
  ScratchDir dir{"edit"};
  Transformer model{small_gpt2()};
  std::vector<FileTensor> tensors;
  EditableModel() {
    model.init(5);
    io::save_model(model, dir.str());
    tensors = file_tensors(model);
  }
  void rewrite() const { write_tensors(tensors, dir.file("model.safetensors")); }
};

TEST(ModelFilesErrors, MissingTensor) {
  EditableModel m;
  std::erase_if(m.tensors, [](const FileTensor& t) { return t.name == "transformer.h.1.ln_2.bias"; });
  m.rewrite();
  expect_error([&] { io::load_model(m.dir.str()); }, {"missing tensor", "transformer.h.1.ln_2.bias"});
}

TEST(ModelFilesErrors, UnexpectedTensor) {
  EditableModel m;
  FileTensor extra = *find_tensor(m.tensors, "transformer.h.1.ln_2.bias");
  extra.name = "transformer.h.2.ln_2.bias";  // a third layer the config does not have
  m.tensors.push_back(extra);
  m.rewrite();
  expect_error([&] { io::load_model(m.dir.str()); }, {"unexpected tensor", "transformer.h.2.ln_2.bias"});
}

TEST(ModelFilesErrors, WrongShape) {
  EditableModel m;
  // c_fc stored (out, in) instead of Conv1D's [in, out]: same bytes, transposed shape.
  FileTensor* t = find_tensor(m.tensors, "transformer.h.0.mlp.c_fc.weight");
  std::swap(t->shape[0], t->shape[1]);
  m.rewrite();
  expect_error([&] { io::load_model(m.dir.str()); }, {"transformer.h.0.mlp.c_fc.weight", "shape", "(40, 24)", "(24, 40)"});
}

TEST(ModelFilesErrors, WrongDtype) {
  EditableModel m;
  find_tensor(m.tensors, "transformer.wpe.weight")->dtype = "I32";  // same size, wrong type
  m.rewrite();
  expect_error([&] { io::load_model(m.dir.str()); }, {"transformer.wpe.weight", "I32"});
}

TEST(ModelFilesErrors, MissingConfigOrWeights) {
  EditableModel m;
  fs::remove(m.dir.file("config.json"));
  expect_error([&] { io::load_model(m.dir.str()); }, {"config.json"});
  EditableModel w;
  fs::remove(w.dir.file("model.safetensors"));
  expect_error([&] { io::load_model(w.dir.str()); }, {"model.safetensors"});
  expect_error([&] { io::load_model(w.dir.file("no_such_dir")); }, {"no_such_dir", "does not exist"});
}

// The same parameter under both GPT-2 spellings ("wte.weight" and "transformer.wte.weight")
// is ambiguous: which copy is meant cannot be known, so loading refuses instead of picking one.
TEST(ModelFilesErrors, SameParameterUnderTwoNames) {
  EditableModel m;
  FileTensor dup = *find_tensor(m.tensors, "transformer.wte.weight");
  dup.name = "wte.weight";
  dup.bytes.assign(dup.bytes.size(), '\0');  // different values: silently taking either is a bug
  m.tensors.push_back(dup);
  m.rewrite();
  expect_error([&] { io::load_model(m.dir.str()); }, {"wte.weight", "twice"});
}

TEST(ModelFilesErrors, TruncatedWeightsFile) {
  EditableModel m;
  const std::string bytes = read_file(m.dir.file("model.safetensors"));
  write_file_atomic(m.dir.file("model.safetensors"), bytes.substr(0, bytes.size() - 100));
  expect_error([&] { io::load_model(m.dir.str()); }, {"model.safetensors"});
}

TEST(ModelFilesErrors, ForwardRejectsBadInputs) {
  Transformer model(small_gpt2());
  const int64_t V = model.config().vocab_size, T = model.config().n_ctx;
  expect_error([&] { model.forward(Tensor::from_ints({1, 2, static_cast<int32_t>(V)}, {1, 3})); },
               {"token id", "outside the vocabulary"});
  expect_error([&] { model.forward(Tensor::from_ints({1, 2, -1}, {1, 3})); }, {"-1"});
  expect_error([&] { model.forward(Tensor::zeros({1, T + 1}, DType::I32)); }, {"exceeds the model's context"});
  expect_error([&] { model.forward(Tensor::zeros({2, 3})); }, {"ids"});  // f32 ids
}

// Writes `json_text` as the directory's config.json and expects load_model to refuse it.
void expect_config_error(const std::string& json_text, std::initializer_list<std::string> needles) {
  EditableModel m;
  write_file_atomic(m.dir.file("config.json"), json_text);
  expect_error([&] { io::load_model(m.dir.str()); }, needles);
}

TEST(ModelFilesErrors, BadConfigs) {
  nlohmann::json good = config_to_json(small_gpt2());
  {
    nlohmann::json j = good;
    j["model_type"] = "bert";
    expect_config_error(j.dump(), {"unsupported model_type", "bert"});
  }
  {
    nlohmann::json j = good;
    j["n_head"] = 5;  // 24 % 5 != 0
    expect_config_error(j.dump(), {"not divisible", "5 heads"});
  }
  {
    nlohmann::json j = good;
    j.erase("n_layer");
    expect_config_error(j.dump(), {"missing key 'n_layer'"});
  }
  {
    nlohmann::json j = good;
    j["n_embd"] = "24";
    expect_config_error(j.dump(), {"n_embd", "integer"});
  }
  {
    nlohmann::json j = config_to_json(small_llama());
    j["num_key_value_heads"] = 3;  // 4 heads are not a multiple of 3
    expect_config_error(j.dump(), {"key/value heads"});
  }
  {
    // GPT-2 variants whose attention scores are not scaled by 1/sqrt(HD) compute another
    // function with the same weights: loading them as plain GPT-2 would be silently wrong.
    nlohmann::json j = good;
    j["scale_attn_weights"] = false;
    expect_config_error(j.dump(), {"scale_attn_weights"});
    j = good;
    j["scale_attn_by_inverse_layer_idx"] = true;
    expect_config_error(j.dump(), {"scale_attn_by_inverse_layer_idx"});
  }
  expect_config_error("{\"model_type\": \"gpt2\", \"n_embd\": 24,", {"config.json", "invalid JSON"});
  expect_config_error("[1, 2]", {"config must be a JSON object"});
}

// ---- accepted variants -------------------------------------------------------------------

// Stores every tensor in `dtype` (F16 or BF16), loads, and checks each weight against the
// original within that format's rounding: RNE keeps |x − round(x)| ≤ 2^-p |x| for normal
// numbers (p = 11 for F16, 8 for BF16), plus F16's subnormal spacing 2^-24 / 2 below 2^-14.
void check_half_precision(const ModelConfig& c, const std::string& dtype, double rel, double abs) {
  SCOPED_TRACE(dtype);
  ScratchDir dir(dtype);
  Transformer model(c);
  model.init(21);
  io::save_model(model, dir.str());
  std::vector<FileTensor> tensors = file_tensors(model);
  for (auto& t : tensors) {
    std::vector<float> f(t.bytes.size() / 4);
    std::memcpy(f.data(), t.bytes.data(), t.bytes.size());
    std::vector<uint16_t> h(f.size());
    for (size_t i = 0; i < f.size(); ++i) h[i] = dtype == "BF16" ? f32_to_bf16(f[i]) : f32_to_f16(f[i]);
    t.dtype = dtype;
    t.bytes.assign(reinterpret_cast<const char*>(h.data()), h.size() * 2);
  }
  write_tensors(tensors, dir.file("model.safetensors"));
  auto loaded = io::load_model(dir.str());
  bool any_rounded = false;
  for (size_t p = 0; p < model.parameters().size(); ++p) {
    const Tensor& a = model.parameters()[p].value;
    const Tensor& b = loaded->parameters()[p].value;
    ASSERT_EQ(a.shape(), b.shape());
    for (int64_t i = 0; i < a.numel(); ++i) {
      const double x = a.f32()[i], y = b.f32()[i];
      ASSERT_LE(std::fabs(x - y), rel * std::fabs(x) + abs) << model.parameters()[p].name << "[" << i << "]";
      any_rounded |= x != y;
    }
  }
  EXPECT_TRUE(any_rounded);  // the values really went through the narrow format
}

TEST(ModelFiles, LoadsF16AndBf16Weights) {
  for (const ModelConfig& c : {small_gpt2(), small_llama()}) {
    SCOPED_TRACE(c.family_name());
    check_half_precision(c, "F16", std::ldexp(1.0, -11), std::ldexp(1.0, -25));
    check_half_precision(c, "BF16", std::ldexp(1.0, -8), 0.0);
  }
}

// The original GPT-2 checkpoints (openai-community/gpt2) name tensors without the
// "transformer." prefix and also store the attention mask buffers h.<l>.attn.bias
// (1, 1, n_ctx, n_ctx) and h.<l>.attn.masked_bias (a scalar); a tied lm_head.weight may be
// present too. All of that loads to the same model.
TEST(ModelFiles, LoadsGpt2FileWithoutPrefixAndWithHfBuffers) {
  ScratchDir dir("hf");
  const ModelConfig c = small_gpt2();
  Transformer model(c);
  model.init(9);
  std::vector<FileTensor> tensors = file_tensors(model);
  for (auto& t : tensors) t.name = t.name.substr(std::string("transformer.").size());
  const int64_t T = c.n_ctx;
  std::vector<float> mask(static_cast<size_t>(T * T));
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j <= i; ++j) mask[static_cast<size_t>(i * T + j)] = 1.0f;
  const float masked_bias = -1e4f;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string pre = "h." + std::to_string(l) + ".attn.";
    tensors.push_back({pre + "bias", "F32", {1, 1, T, T}, std::string(reinterpret_cast<const char*>(mask.data()), mask.size() * 4)});
    tensors.push_back({pre + "masked_bias", "F32", {}, std::string(reinterpret_cast<const char*>(&masked_bias), 4)});
  }
  FileTensor head = *find_tensor(tensors, "wte.weight");
  head.name = "lm_head.weight";
  tensors.push_back(head);
  write_tensors(tensors, dir.file("model.safetensors"));
  io::save_config(c, dir.file("config.json"));

  auto loaded = io::load_model(dir.str());
  for (size_t p = 0; p < model.parameters().size(); ++p)
    EXPECT_TRUE(bitwise_equal(loaded->parameters()[p].value, model.parameters()[p].value)) << model.parameters()[p].name;
}

// HF Llama checkpoints written by older transformers hold the RoPE buffer
// model.layers.<l>.self_attn.rotary_emb.inv_freq: it is recomputed from rope_theta, not loaded.
TEST(ModelFiles, LoadsLlamaFileWithRotaryBuffer) {
  ScratchDir dir("hf");
  const ModelConfig c = small_llama();
  Transformer model(c);
  model.init(10);
  std::vector<FileTensor> tensors = file_tensors(model);
  const int64_t half = c.head_dim() / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half), 0.25f);
  for (int64_t l = 0; l < c.n_layer; ++l)
    tensors.push_back({"model.layers." + std::to_string(l) + ".self_attn.rotary_emb.inv_freq", "F32", {half},
                       std::string(reinterpret_cast<const char*>(inv_freq.data()), inv_freq.size() * 4)});
  write_tensors(tensors, dir.file("model.safetensors"));
  io::save_config(c, dir.file("config.json"));
  auto loaded = io::load_model(dir.str());
  for (size_t p = 0; p < model.parameters().size(); ++p)
    EXPECT_TRUE(bitwise_equal(loaded->parameters()[p].value, model.parameters()[p].value)) << model.parameters()[p].name;
  autograd::NoGradGuard no_grad;
  const Tensor ids = random_ids(1, 7, c.vocab_size, 4);
  EXPECT_TRUE(bitwise_equal(loaded->forward(ids), model.forward(ids)));
}

}  // namespace
}  // namespace sllm::nn
