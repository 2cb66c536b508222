// Llama from GGUF. Names and keys: llama.cpp's src/llama-arch.cpp (LLM_TENSOR_NAMES for
// LLM_ARCH_LLAMA, LLM_KV_NAMES) and gguf-py's constants.py (MODEL_TENSORS, Keys.LLM); the
// inverse of what convert_hf_to_gguf.py (LlamaModel) writes.
#include "io/gguf_model.h"

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <vector>

#include "core/error.h"

namespace sllm::io {

namespace {

const std::map<std::string, std::string>& block_names() {
  static const std::map<std::string, std::string> names = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},
  };
  return names;
}

}  // namespace

std::string gguf_to_hf_name(const std::string& name) {
  if (name == "token_embd.weight") return "model.embed_tokens.weight";
  if (name == "output_norm.weight") return "model.norm.weight";
  if (name == "output.weight") return "lm_head.weight";
  static const std::regex block(R"(blk\.(\d+)\.(.+))");
  std::smatch m;
  if (std::regex_match(name, m, block)) {
    auto it = block_names().find(m[2].str());
    if (it != block_names().end()) return "model.layers." + m[1].str() + "." + it->second;
  }
  return "";
}

// convert_hf_to_gguf.py, LlamaModel.permute(weights, n_head, n_head_kv):
//   weights.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(rows, cols)
// (n_head replaced by n_head_kv for K). HF's rotary embedding rotates the two halves of a head
// (rotate_half); llama.cpp's rotates adjacent pairs, so the converter interleaves each head's
// rows: GGUF row h*hd + 2j + i holds HF row h*hd + i*hd/2 + j (i in {0, 1}, j < hd/2).
void gguf_unpermute_rows(float* w, int64_t rows, int64_t cols, int64_t n_heads) {
  SLLM_CHECK(n_heads > 0 && rows % n_heads == 0 && (rows / n_heads) % 2 == 0,
             str("cannot undo the rotary permutation of a ", rows, "-row weight over ", n_heads, " heads"),
             "the head dimension must be even and divide the rows; the file's head counts are wrong");
  const int64_t hd = rows / n_heads, half = hd / 2;
  std::vector<float> head(static_cast<size_t>(hd * cols));
  for (int64_t h = 0; h < n_heads; ++h) {
    float* base = w + h * hd * cols;
    std::memcpy(head.data(), base, head.size() * sizeof(float));
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < half; ++j)
        std::memcpy(base + (i * half + j) * cols, head.data() + (2 * j + i) * cols, static_cast<size_t>(cols) * sizeof(float));
  }
}

// convert_hf_to_gguf.py stores config.json's decimals (rms_norm_eps 1e-5, rope_theta) as f32,
// which reads back as 9.99999974738e-06. The shortest decimal that rounds to the same f32 is
// what the config said, so that is what we keep (and what config.json then shows); the f32
// the math uses is unchanged.
static double float_key(const GgufFile& f, const std::string& key) {
  const double v = f.get_float(key);
  if (f.get(key).type != GgufType::F32) return v;
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), static_cast<float>(v));
  return std::strtod(std::string(buf, r.ptr).c_str(), nullptr);
}

nn::ModelConfig gguf_llama_config(const GgufFile& f) {
  const std::string arch = f.get_string("general.architecture");
  SLLM_CHECK(arch == "llama",
             str("GGUF file '", f.path(), "': architecture '", arch, "' is not supported"),
             "sllm loads GGUF models of architecture 'llama' (Llama, SmolLM2, TinyLlama, ...); convert other families "
             "from their Hugging Face directory instead");
  nn::ModelConfig c;
  c.family = nn::Family::Llama;
  c.n_layer = f.get_int("llama.block_count", 1, 1 << 16);
  c.n_embd = f.get_int("llama.embedding_length", 1, 1 << 20);
  c.n_inner = f.get_int("llama.feed_forward_length", 1, 1 << 22);
  c.n_head = f.get_int("llama.attention.head_count", 1, 1 << 12);
  c.n_kv_head = f.has("llama.attention.head_count_kv") ? f.get_int("llama.attention.head_count_kv", 1, 1 << 12) : c.n_head;
  c.n_ctx = f.get_int("llama.context_length", 1, 1 << 24);
  c.norm_eps = float_key(f, "llama.attention.layer_norm_rms_epsilon");
  c.rope_theta = f.has("llama.rope.freq_base") ? float_key(f, "llama.rope.freq_base") : 10000.0;
  const GgufTensor& embd = f.tensor("token_embd.weight");
  SLLM_CHECK(embd.dims.size() == 2 && embd.dims[0] == c.n_embd,
             str("GGUF file '", f.path(), "': token_embd.weight has dims ", embd.dims.size() == 2 ? embd.dims[0] : -1,
                 " x ?, expected llama.embedding_length ", c.n_embd),
             "the file's hyperparameters and tensors disagree; it is corrupt");
  c.vocab_size = f.has("llama.vocab_size") ? f.get_int("llama.vocab_size", 1, 1 << 24) : embd.dims[1];
  c.tie_embeddings = f.find_tensor("output.weight") == nullptr;  // SmolLM2 ships no output.weight
  // Keys that change the math and that sllm's Llama does not implement are refused, never ignored.
  SLLM_CHECK(c.n_head > 0 && c.n_embd % c.n_head == 0,
             str("GGUF file '", f.path(), "': embedding_length ", c.n_embd, " is not a multiple of head_count ", c.n_head),
             "sllm's Llama has head_dim = hidden / heads");
  if (f.has("llama.attention.key_length"))
    SLLM_CHECK(f.get_int("llama.attention.key_length") == c.head_dim(),
               str("GGUF file '", f.path(), "': llama.attention.key_length ", f.get_int("llama.attention.key_length"),
                   " differs from embedding_length / head_count = ", c.head_dim()),
               "a head_dim other than hidden / heads is not supported yet");
  if (f.has("llama.rope.dimension_count"))
    SLLM_CHECK(f.get_int("llama.rope.dimension_count") == c.head_dim(),
               str("GGUF file '", f.path(), "': partial rotary (llama.rope.dimension_count ",
                   f.get_int("llama.rope.dimension_count"), " of head_dim ", c.head_dim(), ")"),
               "sllm's Llama rotates the whole head");
  if (f.has("llama.rope.scaling.type")) {
    const std::string type = f.get_string("llama.rope.scaling.type");
    SLLM_CHECK(type == "none", str("GGUF file '", f.path(), "': RoPE scaling '", type, "' is not supported"),
               "sllm implements plain RoPE only");
  }
  c.validate();
  return c;
}

std::unique_ptr<nn::Transformer> load_gguf_model(const GgufFile& f) {
  const nn::ModelConfig c = gguf_llama_config(f);
  auto model = std::make_unique<nn::Transformer>(c, nn::ParamInit::Zeros);  // every parameter is set below
  std::map<std::string, const GgufTensor*> by_hf;
  for (const GgufTensor& t : f.tensors()) {
    const std::string hf = gguf_to_hf_name(t.name);
    SLLM_CHECK(!hf.empty(), str("GGUF file '", f.path(), "': unexpected tensor '", t.name, "' for a llama model"),
               "sllm maps token_embd, output_norm, output and blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, "
               "ffn_norm, ffn_gate, ffn_up, ffn_down}; tensors such as rope_freqs change the math and are not supported");
    by_hf[hf] = &t;
  }
  std::set<std::string> used;
  for (auto& prm : model->parameters()) {
    auto it = by_hf.find(prm.name);
    SLLM_CHECK(it != by_hf.end(), str("GGUF file '", f.path(), "': no tensor for '", prm.name, "'"),
               "the file's llama.block_count and its blk.N tensors disagree; it is incomplete");
    const GgufTensor& t = *it->second;
    const Shape& want = prm.value.shape();
    const Shape got = t.shape();
    SLLM_CHECK(got == want,
               str("GGUF file '", f.path(), "': tensor '", t.name, "' has shape ", shape_str(got),
                   ", the llama.* keys imply ", shape_str(want)),
               "the file's hyperparameters and tensors disagree; it is corrupt");
    float* dst = prm.value.mutable_f32();
    f.dequantize_into(t, dst, static_cast<size_t>(prm.value.numel()));
    if (t.name.find(".attn_q.") != std::string::npos) gguf_unpermute_rows(dst, want[0], want[1], c.n_head);
    if (t.name.find(".attn_k.") != std::string::npos) gguf_unpermute_rows(dst, want[0], want[1], c.n_kv_head);
    used.insert(prm.name);
  }
  for (const auto& [hf, t] : by_hf)
    SLLM_CHECK(used.count(hf) || (hf == "lm_head.weight" && c.tie_embeddings),
               str("GGUF file '", f.path(), "': tensor '", t->name, "' is not used by the model"),
               "the file's llama.block_count is smaller than its blk.N tensors; it is corrupt");
  return model;
}

bool is_gguf_file(const std::string& path) {
  std::error_code ec;
  return path.size() > 5 && path.compare(path.size() - 5, 5, ".gguf") == 0 && std::filesystem::is_regular_file(path, ec);
}

std::unique_ptr<nn::Transformer> load_gguf_model(const std::string& path) { return load_gguf_model(GgufFile::open(path)); }

}  // namespace sllm::io
