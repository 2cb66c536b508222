// Llama from GGUF (issue 12, deliverable 3): tests/golden/gguf/tiny_llama.gguf is a random
// 2-layer Llama converted as convert_hf_to_gguf.py converts (Q/K rows permuted, tied head,
// matrices in Q8_0/Q4_0/Q4_1/Q5_0/Q5_1/F16/BF16, norms F32), and tiny_llama_logits.safetensors
// holds the logits Hugging Face transformers computes after loading that same file. sllm's
// logits must match them to float32 round-off: the weights are the same dequantized values
// (bit-equal to gguf-py's, test_gguf_golden), so only the order of the forward's sums differs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/gguf_model.h"
#include "io/safetensors.h"

using namespace sllm;
using namespace sllm::io;

namespace {
const std::string kDir = std::string(SLLM_SOURCE_DIR) + "/tests/golden/gguf/";
}

TEST(GgufModel, ConfigFromLlamaKeys) {
  GgufFile f = GgufFile::open(kDir + "tiny_llama.gguf");
  const nn::ModelConfig c = gguf_llama_config(f);
  EXPECT_EQ(c.family, nn::Family::Llama);
  EXPECT_EQ(c.vocab_size, 320);
  EXPECT_EQ(c.n_embd, 64);
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_head, 4);
  EXPECT_EQ(c.n_kv_head, 2);
  EXPECT_EQ(c.n_inner, 128);
  EXPECT_EQ(c.n_ctx, 64);
  EXPECT_EQ(c.rope_theta, 100000.0);
  EXPECT_EQ(c.norm_eps, 1e-5);  // the decimal the f32 in the file came from, not 9.99999974738e-06
  EXPECT_TRUE(c.tie_embeddings);  // no output.weight in the file
}

TEST(GgufModel, NamesMapToHuggingFace) {
  EXPECT_EQ(gguf_to_hf_name("token_embd.weight"), "model.embed_tokens.weight");
  EXPECT_EQ(gguf_to_hf_name("output_norm.weight"), "model.norm.weight");
  EXPECT_EQ(gguf_to_hf_name("output.weight"), "lm_head.weight");
  EXPECT_EQ(gguf_to_hf_name("blk.12.attn_output.weight"), "model.layers.12.self_attn.o_proj.weight");
  EXPECT_EQ(gguf_to_hf_name("blk.0.ffn_norm.weight"), "model.layers.0.post_attention_layernorm.weight");
  EXPECT_EQ(gguf_to_hf_name("blk.1.ffn_gate.weight"), "model.layers.1.mlp.gate_proj.weight");
  EXPECT_EQ(gguf_to_hf_name("rope_freqs.weight"), "");
  EXPECT_EQ(gguf_to_hf_name("blk.x.attn_q.weight"), "");
}

// Rows of one head of dim 4 (cols 1): HF order [a0 a1 | b0 b1] (two rotary halves) is stored
// by the converter as [a0 b0 a1 b1]; undoing it gives the HF order back.
TEST(GgufModel, UnpermuteIsTheConvertersInverse) {
  std::vector<float> w = {0, 10, 1, 11, /* head 2 */ 2, 12, 3, 13};
  gguf_unpermute_rows(w.data(), 8, 1, 2);
  EXPECT_EQ(w, (std::vector<float>{0, 1, 10, 11, 2, 3, 12, 13}));
  std::vector<float> wide = {1, 2, 3, 4, 5, 6, 7, 8};  // 4 rows x 2 cols, one head
  gguf_unpermute_rows(wide.data(), 4, 2, 1);
  EXPECT_EQ(wide, (std::vector<float>{1, 2, 5, 6, 3, 4, 7, 8}));
  EXPECT_THROW(gguf_unpermute_rows(wide.data(), 4, 2, 3), Error);
}

TEST(GgufModel, LogitsMatchTransformersLoadingTheSameFile) {
  auto model = load_gguf_model(kDir + "tiny_llama.gguf");
  auto golden = SafetensorsFile::open(kDir + "tiny_llama_logits.safetensors");
  const auto& ids_e = golden.get("ids");
  const auto& logits_e = golden.get("logits");
  ASSERT_EQ(ids_e.shape, (std::vector<int64_t>{2, 12}));
  std::vector<int32_t> ids(24);
  std::memcpy(ids.data(), ids_e.data, ids_e.nbytes);
  Tensor out = model->forward(Tensor::from_ints(ids, {2, 12}));
  ASSERT_EQ(out.shape(), (Shape{2, 12, 320}));
  const float* ours = out.f32();
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < logits_e.nbytes / 4; ++i) {
    float want;
    std::memcpy(&want, logits_e.data + 4 * i, 4);
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(ours[i]) - want));
    max_abs = std::max(max_abs, std::fabs(static_cast<double>(want)));
  }
  // float32 sums in a different order: a few ulps of logits of magnitude ~max_abs.
  EXPECT_LT(max_diff, 1e-4 * std::max(1.0, max_abs)) << "max |logit| " << max_abs;
  EXPECT_GT(max_abs, 0.05);  // not a degenerate all-zero comparison
}

TEST(GgufModel, OtherArchitecturesAndMissingKeysAreClearErrors) {
  // A header-only GGUF v3 file: 0 tensors, 1 key general.architecture = "qwen2".
  auto le = [](uint64_t v, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
    return out;
  };
  const std::string key = "general.architecture", arch = "qwen2";
  const std::string bytes = "GGUF" + le(3, 4) + le(0, 8) + le(1, 8) + le(key.size(), 8) + key + le(8, 4) +
                            le(arch.size(), 8) + arch;
  GgufFile qwen = GgufFile::from_bytes(bytes, "qwen.gguf");
  try {
    gguf_llama_config(qwen);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("architecture 'qwen2' is not supported"), std::string::npos) << e.what();
  }
  // types.gguf says llama but has no llama.* keys: the missing key is named.
  GgufFile f = GgufFile::open(kDir + "types.gguf");
  try {
    gguf_llama_config(f);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'llama.block_count' is missing"), std::string::npos) << e.what();
  }
}
