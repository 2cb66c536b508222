#include "infer/text_session.h"

#include <algorithm>
#include <charconv>
#include <filesystem>

#include "core/error.h"
#include "infer/model_path.h"
#include "infer/text_stream.h"
#include "io/model_files.h"

namespace sllm::infer {

namespace fs = std::filesystem;

InferenceModel load_inference_model(const std::string& model_or_run, bool with_tokenizer) {
  InferenceModel m;
  m.dir = resolve_model_dir(model_or_run);
  if (with_tokenizer) {
    const fs::path tok_path = fs::path(m.dir) / "tokenizer.json";
    SLLM_CHECK(fs::is_regular_file(tok_path), str("model directory '", m.dir, "' has no tokenizer.json"),
               "copy the tokenizer the model was trained with into it (`sllm tokenizer train --out DIR` writes one; "
               "`sllm pretrain --tokenizer` copies it into checkpoints)");
    m.tokenizer = tokenizer::Tokenizer::load(tok_path.string());
  }
  m.model = io::load_model(m.dir);
  if (m.tokenizer) {
    const int64_t tok_vocab = m.tokenizer->vocab_size(), model_vocab = m.model->config().vocab_size;
    SLLM_CHECK(tok_vocab <= model_vocab,
               str("the tokenizer in '", m.dir, "' has ", tok_vocab, " tokens but the model's vocabulary holds only ", model_vocab),
               "the tokenizer.json does not belong to this model: use the one it was trained with");
  }
  return m;
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

TextGeneration generate_text(InferenceModel& m, const std::vector<int32_t>& prompt_ids, int64_t max_new_tokens,
                             const SamplingConfig& config, const std::function<void(const std::string&)>& on_text) {
  SLLM_ASSERT(m.model && m.tokenizer);
  const tokenizer::Tokenizer& tok = *m.tokenizer;
  const std::optional<int32_t> eot = tok.special_id("<|endoftext|>");
  TextGeneration g;
  g.prompt_ids = prompt_ids;
  SamplingConfig c = config;
  c.vocab_limit = c.vocab_limit > 0 ? std::min(c.vocab_limit, tok.vocab_size()) : tok.vocab_size();
  std::vector<int32_t> stop_ids;
  if (eot) stop_ids.push_back(*eot);
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
