// A .gguf wherever a model is taken (issue 12): resolve_model_dir keeps the file, the one
// loading path reads weights and tokenizer from it and stops generation at the file's eos; a
// model directory's tokenizer_config.json eos_token (what `sllm convert` writes) does the same.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/atomic_file.h"
#include "core/error.h"
#include "infer/model_path.h"
#include "infer/text_session.h"
#include "io/model_files.h"

using namespace sllm;

namespace {

namespace fs = std::filesystem;
const std::string kTiny = std::string(SLLM_SOURCE_DIR) + "/tests/golden/gguf/tiny_llama.gguf";

TEST(GgufLoading, ModelPathKeepsTheFile) {
  EXPECT_EQ(infer::resolve_model_dir(kTiny), kTiny);
}

TEST(GgufLoading, InferenceModelFromTheFile) {
  const infer::InferenceModel m = infer::load_inference_model(kTiny, /*with_tokenizer=*/true);
  ASSERT_TRUE(m.model && m.tokenizer);
  EXPECT_EQ(m.dir, kTiny);
  EXPECT_EQ(m.model->config().vocab_size, 320);
  EXPECT_EQ(m.tokenizer->vocab_size(), 320);
  EXPECT_EQ(m.eos_id, 2);  // tokenizer.ggml.eos_token_id: <|im_end|>
}

TEST(GgufLoading, EosFromTokenizerConfig) {
  const fs::path dir = fs::temp_directory_path() / ("sllm_gguf_loading_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const infer::InferenceModel from_file = infer::load_inference_model(kTiny, true);
  io::save_model(*from_file.model, dir.string());
  from_file.tokenizer->save(dir.string());
  const std::string cfg = (dir / "tokenizer_config.json").string();
  EXPECT_FALSE(infer::load_inference_model(dir.string(), true).eos_id.has_value());  // no tokenizer_config.json
  write_file_atomic(cfg, R"({"eos_token": "<|im_end|>"})");
  EXPECT_EQ(infer::load_inference_model(dir.string(), true).eos_id, 2);
  write_file_atomic(cfg, R"({"eos_token": {"content": "<|endoftext|>", "special": true}})");
  EXPECT_EQ(infer::load_inference_model(dir.string(), true).eos_id, 0);
  write_file_atomic(cfg, R"({"eos_token": "the"})");  // not a special token: ignored
  EXPECT_FALSE(infer::load_inference_model(dir.string(), true).eos_id.has_value());
  write_file_atomic(cfg, "not json");
  EXPECT_THROW(infer::load_inference_model(dir.string(), true), Error);
  fs::remove_all(dir);
}

}  // namespace
