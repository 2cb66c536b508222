// prepare_shards with a real tokenizer. Kept apart from prepare.cpp so that code using only
// the DocumentEncoder overload (tests with a stand-in encoder) does not pull in the tokenizer.
#include <optional>

#include "core/error.h"
#include "data/prepare.h"
#include "data/synth_corpus.h"
#include "tokenizer/tokenizer.h"

namespace sllm::data {

PrepareSummary prepare_shards(const PrepareOptions& options, const std::string& tokenizer_path) {
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(tokenizer_path);
  const std::optional<int32_t> eot = tok.special_id(kDocumentSeparator);
  SLLM_CHECK(eot.has_value(),
             str("sllm prepare: tokenizer '", tokenizer_path, "' has no \"", kDocumentSeparator, "\" special token"),
             str("documents are separated by that token; use a tokenizer that registers it (GPT-2 files do, and "
                 "`Tokenizer::train` adds it by default)"));
  DocumentEncoder encoder;
  encoder.encode = [&tok](std::string_view text) { return tok.encode(text, /*allow_special=*/false); };
  encoder.vocab_size = tok.vocab_size();
  encoder.eot_id = *eot;
  encoder.name = tokenizer_path;
  return prepare_shards(options, encoder);
}

}  // namespace sllm::data
