// The tokenizer inside a GGUF file (gguf_tokenizer.h): llama.cpp's metadata keys turned into
// the same Model the tokenizer.json reader builds.
#include <unordered_map>

#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/formats.h"
#include "tokenizer/gguf_tokenizer.h"

namespace sllm::tokenizer {

// llama.h, enum llama_token_type.
enum GgufTokenType : int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

static const char* kHint = "expected a GGUF file whose tokenizer.ggml.* keys describe a byte-level BPE vocabulary, "
                           "as llama.cpp's convert_hf_to_gguf.py writes them";

Pattern pattern_for_gguf_pre(const std::string& pre) {
  // llama.cpp src/llama-vocab.cpp: llama_vocab::impl::load maps the name to a pre type, and
  // llm_tokenizer_bpe's constructor gives each type its regexes; these are the names whose
  // regexes are exactly one of our scanners (pretokenizer.h).
  static const std::unordered_map<std::string, Pattern> by_name = {
      {"gpt2", Pattern::Gpt2},        {"mpt", Pattern::Gpt2},          {"olmo", Pattern::Gpt2},
      {"jais", Pattern::Gpt2},        {"llama-bpe", Pattern::Cl100k},  {"llama3", Pattern::Cl100k},
      {"llama-v3", Pattern::Cl100k},  {"falcon3", Pattern::Cl100k},    {"dbrx", Pattern::Cl100k},
      {"smaug-bpe", Pattern::Cl100k}, {"gpt-4o", Pattern::O200k},      {"smollm", Pattern::Digits},
      {"starcoder", Pattern::Digits}, {"refact", Pattern::Digits},     {"codeshell", Pattern::Digits},
  };
  auto it = by_name.find(pre);
  if (it != by_name.end()) return it->second;
  fail(str("tokenizer.ggml.pre '", pre, "' is not a pre-tokenizer sllm has"),
       "supported: gpt2, mpt, olmo, jais (gpt2 split), llama-bpe, llama3, llama-v3, falcon3, dbrx, smaug-bpe (cl100k), "
       "gpt-4o (o200k), smollm, starcoder, refact, codeshell (digits); pass --pattern to choose one yourself");
}

static std::optional<int32_t> optional_id(const io::GgufFile& f, const std::string& key, int64_t vocab) {
  if (!f.has(key)) return std::nullopt;
  const int64_t id = f.get_int(key);
  SLLM_CHECK(id >= 0 && id < vocab, str(f.path(), ": ", key, " is ", id, ", outside the vocabulary of ", vocab, " tokens"), kHint);
  return static_cast<int32_t>(id);
}

static bool optional_bool(const io::GgufFile& f, const std::string& key, bool fallback) {
  return f.has(key) ? f.get_bool(key) : fallback;
}

GgufTokenizer load_gguf_tokenizer(const io::GgufFile& f, const std::string& pattern) {
  const std::string& where = f.path();
  const std::string& kind = f.get_string("tokenizer.ggml.model");
  SLLM_CHECK(kind == "gpt2", str(where, ": tokenizer.ggml.model is '", kind, "'; sllm reads byte-level BPE ('gpt2') only"),
             "SentencePiece ('llama'), WordPiece ('bert') and other vocabularies are not supported");
  const std::string pre = f.has("tokenizer.ggml.pre") ? f.get_string("tokenizer.ggml.pre") : "";
  auto m = std::make_shared<Model>();
  if (!pattern.empty()) {
    m->pattern = parse_pattern(pattern);
  } else {
    SLLM_CHECK(!pre.empty(), str(where, ": no tokenizer.ggml.pre, so the split of the text before BPE is unknown"),
               "pass --pattern gpt2|cl100k|o200k|digits");
    m->pattern = pattern_for_gguf_pre(pre);
  }

  const std::vector<std::string>& tokens = f.get_string_array("tokenizer.ggml.tokens");
  const auto V = static_cast<int64_t>(tokens.size());
  SLLM_CHECK(V > 0 && V < (int64_t{1} << 24), str(where, ": tokenizer.ggml.tokens holds ", V, " tokens"), kHint);
  std::vector<int64_t> types;
  if (f.has("tokenizer.ggml.token_type")) {
    types = f.get_int_array("tokenizer.ggml.token_type");
    SLLM_CHECK(static_cast<int64_t>(types.size()) == V,
               str(where, ": tokenizer.ggml.token_type has ", types.size(), " entries for ", V, " tokens"), kHint);
  } else {
    types.assign(static_cast<size_t>(V), kNormal);
  }

  m->tokens.resize(static_cast<size_t>(V));
  std::unordered_map<std::string, int32_t> id_of;  // spelled token -> id, for the merges
  id_of.reserve(static_cast<size_t>(V));
  std::string bytes;
  for (int64_t id = 0; id < V; ++id) {
    const std::string& text = tokens[static_cast<size_t>(id)];
    const auto i = static_cast<int32_t>(id);
    switch (types[static_cast<size_t>(id)]) {
      case kNormal:
        SLLM_CHECK(unicode_to_bytes(text, bytes),
                   str(where, ": token ", id, " '", text, "' is not written in the byte-level alphabet"), kHint);
        m->tokens[static_cast<size_t>(id)] = bytes;
        id_of.emplace(text, i);  // the first of repeated spellings, as finalize() then refuses the repeat
        break;
      case kControl:
      case kUserDefined:
        SLLM_CHECK(!text.empty(), str(where, ": special token ", id, " is empty"), kHint);
        m->tokens[static_cast<size_t>(id)] = text;
        m->specials.emplace_back(text, i);
        break;
      case kUnused:
        break;  // an unused id ("" token): never produced, never decoded
      default:
        fail(str(where, ": token ", id, " '", text, "' has token type ", types[static_cast<size_t>(id)],
                 ", which a byte-level BPE vocabulary does not use"),
             "byte-level vocabularies have normal (1), control (3), user-defined (4) and unused (5) tokens");
    }
  }

  if (f.has("tokenizer.ggml.merges")) {
    const std::vector<std::string>& merges = f.get_string_array("tokenizer.ggml.merges");
    m->merges.reserve(merges.size());
    for (size_t r = 0; r < merges.size(); ++r) {
      const std::string& s = merges[r];
      const size_t space = s.find(' ');
      SLLM_CHECK(space != std::string::npos && space > 0 && space + 1 < s.size() && s.find(' ', space + 1) == std::string::npos,
                 str(where, ": tokenizer.ggml.merges[", r, "] '", s, "' is not 'left right'"), kHint);
      auto a = id_of.find(s.substr(0, space)), b = id_of.find(s.substr(space + 1));
      SLLM_CHECK(a != id_of.end() && b != id_of.end(),
                 str(where, ": tokenizer.ggml.merges[", r, "] '", s, "' names a token missing from tokenizer.ggml.tokens"), kHint);
      m->merges.emplace_back(a->second, b->second);
    }
  }
  // llama.cpp and transformers' GGUF tokenizer (a BPE without unk_token) both drop a byte that
  // has no token; SmolLM2's vocabulary lacks 21 of them.
  m->drop_missing_bytes = true;
  m->finalize(where);  // specials are already in id order

  GgufTokenizer t{Tokenizer(std::move(m))};
  t.pre = pre;
  t.bos_id = optional_id(f, "tokenizer.ggml.bos_token_id", V);
  t.eos_id = optional_id(f, "tokenizer.ggml.eos_token_id", V);
  t.unk_id = optional_id(f, "tokenizer.ggml.unknown_token_id", V);
  t.pad_id = optional_id(f, "tokenizer.ggml.padding_token_id", V);
  t.add_bos = optional_bool(f, "tokenizer.ggml.add_bos_token", false);
  t.add_eos = optional_bool(f, "tokenizer.ggml.add_eos_token", false);
  if (f.has("tokenizer.chat_template")) t.chat_template = f.get_string("tokenizer.chat_template");
  return t;
}

GgufTokenizer load_gguf_tokenizer(const std::string& path, const std::string& pattern) {
  return load_gguf_tokenizer(io::GgufFile::open(path), pattern);
}

}  // namespace sllm::tokenizer
