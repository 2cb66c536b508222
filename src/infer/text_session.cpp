#include "infer/text_session.h"

#include <algorithm>
#include <charconv>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "infer/model_path.h"
#include "infer/text_stream.h"
#include "io/gguf_model.h"
#include "io/model_files.h"
#include "lora/peft_files.h"
#include "quant/bnb_files.h"
#include "tokenizer/gguf_tokenizer.h"

namespace sllm::infer {

namespace fs = std::filesystem;

InferenceModel load_inference_model(const std::string& model_or_run, bool with_tokenizer) {
  InferenceSpec spec;
  spec.model = model_or_run;
  spec.with_tokenizer = with_tokenizer;
  return load_inference_model(spec);
}

// tokenizer_config.json's eos_token (a string, or transformers' AddedToken object with
// "content"), when it is a special token of the tokenizer: what `sllm convert` writes for a
// GGUF's eos, and what Hugging Face model directories carry. Absent, or not a special token:
// none. A file that is not JSON is an error.
static std::optional<int32_t> eos_from_tokenizer_config(const tokenizer::Tokenizer& tok, const fs::path& path) {
  if (!fs::is_regular_file(path)) return std::nullopt;
  const nlohmann::json j = nlohmann::json::parse(read_file(path.string()), nullptr, /*allow_exceptions=*/false);
  SLLM_CHECK(!j.is_discarded(), str(path.string(), " is not valid JSON"),
             "fix or remove it: sllm reads only its eos_token (transformers writes it with save_pretrained)");
  if (!j.is_object() || !j.contains("eos_token")) return std::nullopt;
  const nlohmann::json& e = j["eos_token"];
  const nlohmann::json* text = e.is_string() ? &e : e.is_object() && e.contains("content") ? &e["content"] : nullptr;
  if (!text || !text->is_string()) return std::nullopt;
  return tok.special_id(text->get<std::string>());
}

InferenceModel load_inference_model(const InferenceSpec& spec) {
  InferenceModel m;
  // Resolve both directories before reading any weights, so a bad --adapter fails fast.
  const std::string adapter_dir = spec.adapter.empty() ? "" : resolve_adapter_dir(spec.adapter);
  std::string model_or_run = spec.model;
  if (model_or_run.empty()) {
    SLLM_CHECK(!adapter_dir.empty(), "no --model given", "pass --model DIR (a model directory or a training run)");
    model_or_run = adapter_base_model_dir(adapter_dir);
    SLLM_CHECK(!model_or_run.empty(),
               str("no --model given, and the adapter '", adapter_dir, "' names no existing base model directory"),
               "pass the base model the adapter was trained on as --model DIR");
  }
  m.dir = resolve_model_dir(model_or_run);
  if (spec.with_tokenizer) {
    // An sft LoRA checkpoint carries the tokenizer it was trained with; a bare base model
    // directory (an HF download without tokenizer.json, say) may not.
    // A GGUF file carries its tokenizer in its metadata (tokenizer/gguf_tokenizer.h).
    fs::path tok_path = io::is_gguf_file(m.dir) ? fs::path(m.dir) : fs::path(m.dir) / "tokenizer.json";
    if (!fs::is_regular_file(tok_path) && !adapter_dir.empty()) tok_path = fs::path(adapter_dir) / "tokenizer.json";
    SLLM_CHECK(fs::is_regular_file(tok_path),
               str("model directory '", m.dir, "' has no tokenizer.json", adapter_dir.empty() ? "" : " and neither has the adapter's"),
               "copy the tokenizer the model was trained with into it (`sllm tokenizer train --out DIR` writes one; "
               "`sllm pretrain --tokenizer` copies it into checkpoints)");
    if (io::is_gguf_file(tok_path.string())) {
      tokenizer::GgufTokenizer g = tokenizer::load_gguf_tokenizer(tok_path.string());
      m.tokenizer = g.tokenizer;
      m.eos_id = g.eos_id;  // SmolLM2-Instruct: <|im_end|>, the end of every reply
    } else {
      m.tokenizer = tokenizer::Tokenizer::load(tok_path.string());
      m.eos_id = eos_from_tokenizer_config(*m.tokenizer, tok_path.parent_path() / "tokenizer_config.json");
    }
  }
  m.model = quant::load_model(m.dir);  // a plain, GGUF or 4-bit (bitsandbytes) model
  if (m.tokenizer) {
    const int64_t tok_vocab = m.tokenizer->vocab_size(), model_vocab = m.model->config().vocab_size;
    SLLM_CHECK(tok_vocab <= model_vocab,
               str("the tokenizer in '", m.dir, "' has ", tok_vocab, " tokens but the model's vocabulary holds only ", model_vocab),
               "the tokenizer.json does not belong to this model: use the one it was trained with");
  }
  if (spec.device != Device::CPU) m.model->to(spec.device);
  if (!adapter_dir.empty()) attach_adapter(m, adapter_dir);
  return m;
}

void attach_adapter(InferenceModel& m, const std::string& adapter_or_run) {
  SLLM_ASSERT(m.model);
  SLLM_CHECK(!m.lora, str("the model already carries the adapter '", m.adapter_dir, "'"), "pass one --adapter");
  const std::string dir = resolve_adapter_dir(adapter_or_run);
  auto lora = std::make_unique<lora::LoraModel>(*m.model);
  lora::load_adapter(*lora, dir);  // checks every name and shape before touching the model
  lora->set_training(false);       // inference: no dropout
  m.lora = std::move(lora);
  m.adapter_dir = dir;
}

std::vector<int32_t> encode_prompt(const InferenceModel& m, const std::string& prompt) {
  SLLM_ASSERT(m.model && m.tokenizer);
  std::vector<int32_t> ids = m.tokenizer->encode(prompt, /*allow_special=*/true);
  if (ids.empty()) {
    // GPT-2 convention for unconditional samples: documents are separated by <|endoftext|>,
    // so it is the natural "start of a document" context.
    const std::optional<int32_t> eot = m.tokenizer->special_id("<|endoftext|>");
    SLLM_CHECK(eot.has_value(), "generate: the prompt is empty and the tokenizer has no <|endoftext|> to start from",
               "give a non-empty --prompt");
    ids = {*eot};
  }
  const int64_t n_ctx = m.model->config().n_ctx;
  SLLM_CHECK(static_cast<int64_t>(ids.size()) <= n_ctx,
             str("the prompt is ", ids.size(), " tokens long but the model's context is ", n_ctx, " tokens"),
             str("use a shorter prompt (at most ", n_ctx, " tokens, fewer to leave room for new ones)"));
  return ids;
}

std::vector<int32_t> text_stop_ids(const InferenceModel& m) {
  SLLM_ASSERT(m.tokenizer);
  std::vector<int32_t> ids;
  if (const std::optional<int32_t> eot = m.tokenizer->special_id("<|endoftext|>")) ids.push_back(*eot);
  if (m.eos_id) ids.push_back(*m.eos_id);
  return ids;
}

TextGeneration generate_text(InferenceModel& m, const std::vector<int32_t>& prompt_ids, int64_t max_new_tokens,
                             const SamplingConfig& config, const std::function<void(const std::string&)>& on_text,
                             const std::vector<int32_t>& extra_stop_ids) {
  SLLM_ASSERT(m.model && m.tokenizer);
  const tokenizer::Tokenizer& tok = *m.tokenizer;
  TextGeneration g;
  g.prompt_ids = prompt_ids;
  SamplingConfig c = config;
  c.vocab_limit = c.vocab_limit > 0 ? std::min(c.vocab_limit, tok.vocab_size()) : tok.vocab_size();
  std::vector<int32_t> stop_ids = extra_stop_ids;
  for (int32_t id : text_stop_ids(m)) stop_ids.push_back(id);
  TokenTextStream stream(tok);
  g.new_ids = generate(*m.model, g.prompt_ids, max_new_tokens, c, stop_ids,
                       [&](int32_t id) { on_text(stream.push(id)); }, &g.reason);
  on_text(stream.finish());
  return g;
}

std::vector<int32_t> parse_token_ids(const std::vector<std::string>& words, int64_t vocab_size) {
  const std::string hint = str("give token ids as a comma-separated list, e.g. --ids 15496,995 (each in 0..", vocab_size - 1, ")");
  std::vector<int32_t> ids;
  for (const std::string& word : words) {
    size_t start = 0;
    while (start <= word.size()) {
      size_t end = word.find(',', start);
      if (end == std::string::npos) end = word.size();
      size_t a = start, b = end;
      while (a < b && word[a] == ' ') ++a;
      while (b > a && word[b - 1] == ' ') --b;
      const std::string item = word.substr(a, b - a);
      SLLM_CHECK(!item.empty(), str("malformed id list '", word, "': empty item"), hint);
      int64_t v = 0;
      const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
      SLLM_CHECK(ec == std::errc() && ptr == item.data() + item.size(), str("malformed id list '", word, "': '", item, "' is not an integer"),
                 hint);
      SLLM_CHECK(v >= 0 && v < vocab_size, str("token id ", v, " is outside the model's vocabulary (", vocab_size, " ids)"), hint);
      ids.push_back(static_cast<int32_t>(v));
      start = end + 1;
    }
  }
  return ids;
}

}  // namespace sllm::infer
