// The text side of `sllm generate` and `sllm score`: find and load a model with its
// tokenizer, turn a text prompt into a stream of generated text, parse id lists. The CLI
// files only map flags onto these functions, so tests run the same path end to end.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "infer/generate.h"
#include "infer/sampling.h"
#include "nn/transformer.h"
#include "tokenizer/tokenizer.h"

namespace sllm::infer {

struct InferenceModel {
  std::string dir;                                // the resolved model directory
  std::unique_ptr<nn::Transformer> model;
  std::optional<tokenizer::Tokenizer> tokenizer;  // DIR/tokenizer.json, when asked for
};

// Resolves `model_or_run` (model_path.h), loads config.json + model.safetensors and, when
// with_tokenizer, DIR/tokenizer.json (sllm::Error with a hint when it is absent or holds
// more tokens than the model's vocabulary).
InferenceModel load_inference_model(const std::string& model_or_run, bool with_tokenizer);

struct TextGeneration {
  std::vector<int32_t> prompt_ids, new_ids;
  StopReason reason = StopReason::MaxTokens;
};

// The prompt's ids: special-token text such as <|endoftext|> becomes its id (as in Hugging
// Face tokenizers); an empty prompt starts from <|endoftext|>. sllm::Error with a hint when
// the prompt does not fit the model's context, so a caller can fail before printing anything.
std::vector<int32_t> encode_prompt(const InferenceModel& m, const std::string& prompt);

// Generates after prompt_ids and calls on_text once per new token with the text that token
// completed ("" while a multi-byte character is unfinished) and once more at the end with
// the rest. Generation stops at <|endoftext|> when the tokenizer has it, and never draws
// ids the tokenizer cannot decode.
TextGeneration generate_text(InferenceModel& m, const std::vector<int32_t>& prompt_ids, int64_t max_new_tokens,
                             const SamplingConfig& config, const std::function<void(const std::string&)>& on_text);

// Token ids from command-line words: each word a comma-separated list ("1,2,3" or "1, 2"
// split over several words). sllm::Error on an empty item, a non-integer, or an id outside
// [0, vocab_size).
std::vector<int32_t> parse_token_ids(const std::vector<std::string>& words, int64_t vocab_size);

}  // namespace sllm::infer
