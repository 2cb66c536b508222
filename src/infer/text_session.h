// The text side of `sllm generate`, `score`, `chat` and `merge`: find and load a model with
// its tokenizer and an optional LoRA adapter, turn a text prompt into a stream of generated
// text, parse id lists. The CLI files only map flags onto these functions, so tests run the
// same path end to end.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "infer/generate.h"
#include "infer/sampling.h"
#include "lora/lora_model.h"
#include "nn/transformer.h"
#include "tokenizer/tokenizer.h"

namespace sllm::infer {

struct InferenceModel {
  std::string dir;                                // the resolved model directory
  std::string adapter_dir;                        // the resolved adapter directory, "" without one
  std::unique_ptr<nn::Transformer> model;
  std::unique_ptr<lora::LoraModel> lora;          // after model: destroyed before it
  std::optional<tokenizer::Tokenizer> tokenizer;  // DIR/tokenizer.json, when asked for
  std::optional<int32_t> eos_id;                  // a .gguf's tokenizer.ggml.eos_token_id: generation stops there too
};

// Resolves `model_or_run` (model_path.h), loads config.json + model.safetensors and, when
// with_tokenizer, DIR/tokenizer.json (sllm::Error with a hint when it is absent or holds
// more tokens than the model's vocabulary).
InferenceModel load_inference_model(const std::string& model_or_run, bool with_tokenizer);

// What generate, score, chat and merge load: a base model and an optional adapter.
struct InferenceSpec {
  std::string model;    // model or run directory; "" = the adapter's base_model_name_or_path
  std::string adapter;  // adapter directory or LoRA run directory; "" = none
  bool with_tokenizer = false;
  Device device = Device::CPU;  // the model moves there before the adapter is made on it
};

// The one loading path: the model (on spec.device) with the adapter attached. The tokenizer
// is the model directory's tokenizer.json, else the adapter directory's (an sft LoRA
// checkpoint carries one). sllm::Error with a hint for a missing --model that the adapter
// cannot name, and for everything attach_adapter rejects.
InferenceModel load_inference_model(const InferenceSpec& spec);

// Resolves `adapter_or_run` (model_path.h) and loads its adapter onto m.model as the active
// one (lora::load_adapter: an adapter made for another base fails naming the tensor and both
// shapes, and leaves the model unchanged). Add it after the model has moved to its device.
void attach_adapter(InferenceModel& m, const std::string& adapter_or_run);

struct TextGeneration {
  std::vector<int32_t> prompt_ids, new_ids;
  StopReason reason = StopReason::MaxTokens;
};

// The prompt's ids: special-token text such as <|endoftext|> becomes its id (as in Hugging
// Face tokenizers); an empty prompt starts from <|endoftext|>. sllm::Error with a hint when
// the prompt does not fit the model's context, so a caller can fail before printing anything.
std::vector<int32_t> encode_prompt(const InferenceModel& m, const std::string& prompt);

// The ids generation stops at with m's tokenizer: <|endoftext|> when it has one, and the
// model's own end of reply (m.eos_id) when known. generate_text, sllm verify and the RL
// rollouts stop alike.
std::vector<int32_t> text_stop_ids(const InferenceModel& m);

// Generates after prompt_ids and calls on_text once per new token with the text that token
// completed ("" while a multi-byte character is unfinished) and once more at the end with
// the rest. Generation stops at <|endoftext|> when the tokenizer has it, at the model's eos_id,
// or at one of extra_stop_ids (chat's end-of-turn token), and never draws ids the tokenizer
// cannot decode.
TextGeneration generate_text(InferenceModel& m, const std::vector<int32_t>& prompt_ids, int64_t max_new_tokens,
                             const SamplingConfig& config, const std::function<void(const std::string&)>& on_text,
                             const std::vector<int32_t>& extra_stop_ids = {});

// Token ids from command-line words: each word a comma-separated list ("1,2,3" or "1, 2"
// split over several words). sllm::Error on an empty item, a non-integer, or an id outside
// [0, vocab_size).
std::vector<int32_t> parse_token_ids(const std::vector<std::string>& words, int64_t vocab_size);

}  // namespace sllm::infer
