#include "nn/config.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace sllm::nn {

using nlohmann::json;

void ModelConfig::validate() const {
  auto positive = [](int64_t v, const char* key) {
    SLLM_CHECK(v > 0, str("model config: ", key, " must be > 0, got ", v), "fix the value in config.json");
  };
  positive(vocab_size, "vocab_size");
  positive(n_ctx, "n_positions / max_position_embeddings");
  positive(n_embd, "n_embd / hidden_size");
  positive(n_layer, "n_layer / num_hidden_layers");
  positive(n_head, "n_head / num_attention_heads");
  positive(n_kv_head, "num_key_value_heads");
  positive(n_inner, "n_inner / intermediate_size");
  SLLM_CHECK(n_embd % n_head == 0, str("model config: hidden size ", n_embd, " is not divisible by ", n_head, " heads"),
             "hidden size must be a multiple of the head count");
  SLLM_CHECK(n_head % n_kv_head == 0,
             str("model config: ", n_head, " attention heads are not a multiple of ", n_kv_head, " key/value heads"),
             "num_attention_heads must be divisible by num_key_value_heads");
  SLLM_CHECK(family != Family::Llama || head_dim() % 2 == 0, str("model config: head_dim ", head_dim(), " is odd"),
             "RoPE needs an even head dimension");
  SLLM_CHECK(family != Family::GPT2 || n_kv_head == n_head, "model config: GPT-2 has no grouped-query attention",
             "remove num_key_value_heads or use model_type llama");
  SLLM_CHECK(norm_eps > 0.0f, "model config: the norm epsilon must be > 0", "use e.g. 1e-5");
}

int64_t ModelConfig::num_parameters() const {
  const int64_t C = n_embd, kv = n_kv_head * head_dim();
  int64_t per_layer = 0, total = vocab_size * C;
  if (family == Family::GPT2) {
    per_layer = 2 * 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + (C * n_inner + n_inner) + (n_inner * C + C);
    total += n_ctx * C + 2 * C;
  } else {
    per_layer = 2 * C + C * C + 2 * C * kv + C * C + 3 * C * n_inner;
    total += C;
  }
  if (!tie_embeddings) total += vocab_size * C;
  return total + n_layer * per_layer;
}

namespace {

int64_t get_int(const json& j, std::initializer_list<const char*> keys, const std::string& where, int64_t fallback = -1) {
  for (const char* k : keys) {
    if (!j.contains(k) || j[k].is_null()) continue;
    SLLM_CHECK(j[k].is_number_integer(), str(where, ": key '", k, "' must be an integer"), "fix config.json");
    return j[k].get<int64_t>();
  }
  SLLM_CHECK(fallback >= 0, str(where, ": missing key '", *keys.begin(), "'"),
             "a Hugging Face config.json for this model family needs it");
  return fallback;
}

double get_num(const json& j, const char* key, double fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  SLLM_CHECK(j[key].is_number(), str(where, ": key '", key, "' must be a number"), "fix config.json");
  return j[key].get<double>();
}

}  // namespace

static ModelConfig parse_config(const json& j, const std::string& where) {
  SLLM_CHECK(j.is_object(), str(where, ": config must be a JSON object"), "see a Hugging Face config.json for the layout");
  SLLM_CHECK(j.contains("model_type") && j["model_type"].is_string(), str(where, ": missing \"model_type\""),
             "set \"model_type\": \"gpt2\" or \"llama\"");
  const std::string type = j["model_type"].get<std::string>();
  ModelConfig c;
  if (type == "gpt2") {
    c.family = Family::GPT2;
    c.vocab_size = get_int(j, {"vocab_size"}, where);
    c.n_ctx = get_int(j, {"n_positions", "n_ctx"}, where);
    c.n_embd = get_int(j, {"n_embd"}, where);
    c.n_layer = get_int(j, {"n_layer"}, where);
    c.n_head = get_int(j, {"n_head"}, where);
    c.n_kv_head = c.n_head;
    c.n_inner = get_int(j, {"n_inner"}, where, 4 * c.n_embd);
    c.norm_eps = get_num(j, "layer_norm_epsilon", 1e-5, where);
    c.tie_embeddings = !j.contains("tie_word_embeddings") || j["tie_word_embeddings"].get<bool>();
    const std::string act = j.value("activation_function", std::string("gelu_new"));
    SLLM_CHECK(act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu",
               str(where, ": unsupported activation_function '", act, "'"), "use gelu_new (GPT-2) or gelu");
    c.gelu_tanh = act != "gelu";
    // transformers' GPT2Attention options that change the function (not just its numerics).
    SLLM_CHECK(j.value("scale_attn_weights", true),
               str(where, ": scale_attn_weights = false (unscaled attention scores) is not supported"),
               "sllm's GPT-2 scales scores by 1/sqrt(head_dim); remove the key or set it true");
    SLLM_CHECK(!j.value("scale_attn_by_inverse_layer_idx", false),
               str(where, ": scale_attn_by_inverse_layer_idx = true is not supported"),
               "sllm's GPT-2 scales scores by 1/sqrt(head_dim) only; remove the key or set it false");
    SLLM_CHECK(c.tie_embeddings, str(where, ": untied GPT-2 embeddings are not supported"),
               "GPT-2 ties lm_head to wte; set tie_word_embeddings true");
  } else if (type == "llama") {
    c.family = Family::Llama;
    c.vocab_size = get_int(j, {"vocab_size"}, where);
    c.n_ctx = get_int(j, {"max_position_embeddings"}, where);
    c.n_embd = get_int(j, {"hidden_size"}, where);
    c.n_layer = get_int(j, {"num_hidden_layers"}, where);
    c.n_head = get_int(j, {"num_attention_heads"}, where);
    c.n_kv_head = get_int(j, {"num_key_value_heads"}, where, c.n_head);
    c.n_inner = get_int(j, {"intermediate_size"}, where);
    c.norm_eps = get_num(j, "rms_norm_eps", 1e-6, where);
    c.rope_theta = get_num(j, "rope_theta", 10000.0, where);
    c.tie_embeddings = j.value("tie_word_embeddings", false);
    const std::string act = j.value("hidden_act", std::string("silu"));
    SLLM_CHECK(act == "silu", str(where, ": unsupported hidden_act '", act, "'"), "Llama uses silu (SwiGLU)");
    SLLM_CHECK(!j.value("attention_bias", false) && !j.value("mlp_bias", false),
               str(where, ": Llama with attention/MLP biases is not supported"), "set attention_bias and mlp_bias false");
    if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
      fail(str(where, ": rope_scaling is not supported"), "remove rope_scaling (plain RoPE only)");
    if (j.contains("head_dim") && !j["head_dim"].is_null())
      SLLM_CHECK(j["head_dim"].get<int64_t>() * c.n_head == c.n_embd, str(where, ": head_dim * heads != hidden_size"),
                 "only head_dim = hidden_size / num_attention_heads is supported");
  } else {
    fail(str(where, ": unsupported model_type '", type, "'"), "sllm supports \"gpt2\" and \"llama\"");
  }
  c.validate();
  return c;
}

ModelConfig config_from_json(const json& j, const std::string& where) {
  try {
    return parse_config(j, where);
  } catch (const json::exception& e) {  // a key with the wrong JSON type
    fail(str(where, ": malformed config: ", e.what()), "compare with a Hugging Face config.json of this family");
  }
}

json config_to_json(const ModelConfig& c) {
  if (c.family == Family::GPT2) {
    return json{{"architectures", {"GPT2LMHeadModel"}},
                {"model_type", "gpt2"},
                {"vocab_size", c.vocab_size},
                {"n_positions", c.n_ctx},
                {"n_ctx", c.n_ctx},
                {"n_embd", c.n_embd},
                {"n_layer", c.n_layer},
                {"n_head", c.n_head},
                {"n_inner", c.n_inner},
                {"activation_function", c.gelu_tanh ? "gelu_new" : "gelu"},
                {"layer_norm_epsilon", c.norm_eps},
                {"resid_pdrop", 0.0},
                {"embd_pdrop", 0.0},
                {"attn_pdrop", 0.0},
                {"initializer_range", 0.02},
                {"tie_word_embeddings", true},
                {"torch_dtype", "float32"}};
  }
  return json{{"architectures", {"LlamaForCausalLM"}},
              {"model_type", "llama"},
              {"vocab_size", c.vocab_size},
              {"max_position_embeddings", c.n_ctx},
              {"hidden_size", c.n_embd},
              {"intermediate_size", c.n_inner},
              {"num_hidden_layers", c.n_layer},
              {"num_attention_heads", c.n_head},
              {"num_key_value_heads", c.n_kv_head},
              {"hidden_act", "silu"},
              {"rms_norm_eps", c.norm_eps},
              {"rope_theta", c.rope_theta},
              {"attention_bias", false},
              {"mlp_bias", false},
              {"tie_word_embeddings", c.tie_embeddings},
              {"initializer_range", 0.02},
              {"torch_dtype", "float32"}};
}

std::vector<std::string> preset_names() { return {"tiny", "small", "small-llama", "gpt2-124m", "smollm2-135m"}; }

bool is_preset(const std::string& name) {
  for (const auto& p : preset_names())
    if (p == name) return true;
  return false;
}

ModelConfig preset(const std::string& name) {
  ModelConfig c;
  if (name == "tiny") {  // for tests: a few thousand parameters, any tokenizer up to 512 ids
    c = {Family::GPT2, 512, 64, 32, 2, 4, 4, 128};
  } else if (name == "small") {  // the PyTorch anchor's shape
    c = {Family::GPT2, 8192, 256, 384, 6, 6, 6, 1536};
  } else if (name == "small-llama") {
    c = {Family::Llama, 8192, 256, 384, 6, 6, 2, 1024};
    c.tie_embeddings = false;
    c.norm_eps = 1e-5;
  } else if (name == "gpt2-124m") {
    c = {Family::GPT2, 50257, 1024, 768, 12, 12, 12, 3072};
  } else if (name == "smollm2-135m") {  // HuggingFaceTB/SmolLM2-135M's config.json: 134,515,008 params
    c = {Family::Llama, 49152, 2048, 576, 30, 9, 3, 1536};
    c.norm_eps = 1e-5;
    c.rope_theta = 100000.0;
    c.tie_embeddings = true;
  } else {
    std::string names;
    for (const auto& p : preset_names()) names += " " + p;
    fail(str("unknown model preset '", name, "'"), str("use one of:", names, ", or a config.json path"));
  }
  c.validate();
  return c;
}

ModelConfig load_config(const std::string& preset_or_path) {
  if (is_preset(preset_or_path)) return preset(preset_or_path);
  namespace fs = std::filesystem;
  fs::path p = preset_or_path;
  if (fs::is_directory(p)) p /= "config.json";
  SLLM_CHECK(fs::is_regular_file(p), str("config '", preset_or_path, "' is neither a preset nor a config.json file"),
             "pass a preset (tiny, small, small-llama, gpt2-124m, smollm2-135m), a config.json, or a model directory");
  std::ifstream in(p);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail(str(p.string(), ": invalid JSON: ", e.what()), "fix or regenerate config.json");
  }
  return config_from_json(j, p.string());
}

}  // namespace sllm::nn
