#include "infer/text_stream.h"

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace sllm::infer {

static const char* kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

// Lead bytes of multi-byte characters (Unicode Table 3-7): C2..DF, E0..EF, F0..F4.
static bool is_lead_byte(unsigned char c) { return c >= 0xC2 && c <= 0xF4; }

std::string take_complete_utf8(std::string& pending) {
  std::string out;
  size_t i = 0;
  while (i < pending.size()) {
    const tokenizer::Utf8Char ch = tokenizer::utf8_next(pending, i);
    const size_t len = static_cast<size_t>(ch.len);
    if (ch.cp >= 0) {
      out.append(pending, i, len);
    } else if (i + len == pending.size() && is_lead_byte(static_cast<unsigned char>(pending[i]))) {
      // utf8_next ran out of bytes inside a character that is well-formed so far: the
      // next token may complete it.
      break;
    } else {
      out += kReplacement;
    }
    i += len;
  }
  pending.erase(0, i);
  return out;
}

std::string TokenTextStream::push(int32_t id) {
  std::string bytes;
  try {
    bytes = tok_.token_bytes(id);
  } catch (const Error&) {
    // An id the tokenizer has no bytes for (a gap in a tiktoken vocabulary, or a model
    // vocabulary larger than the tokenizer's): show it as one replacement character
    // rather than abort a generation that has already printed text.
    bytes = kReplacement;
  }
  pending_ += bytes;
  return take_complete_utf8(pending_);
}

std::string TokenTextStream::finish() {
  std::string rest = tokenizer::utf8_sanitize(pending_);
  pending_.clear();
  return rest;
}

}  // namespace sllm::infer
