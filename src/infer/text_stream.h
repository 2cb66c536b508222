// Streaming detokenization. Byte-level BPE splits text at byte boundaries, so one token can
// end in the middle of a multi-byte UTF-8 character ("é" = C3 A9 may arrive as C3, then
// A9). Printing each token's bytes as they come would put half characters on the terminal;
// instead the bytes wait in a buffer and only complete characters are released.
//
// Ill-formed bytes that no later byte can repair become U+FFFD, one per maximal subpart
// (Unicode 15, section 3.9), so the concatenation of everything a stream releases equals
// Tokenizer::decode of all its tokens.
#pragma once
#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

namespace sllm::infer {

// Removes from `pending` and returns its longest prefix that later bytes cannot change:
// complete characters (ill-formed parts replaced by U+FFFD), stopping before an incomplete
// but so far well-formed character at the end.
std::string take_complete_utf8(std::string& pending);

class TokenTextStream {
 public:
  explicit TokenTextStream(tokenizer::Tokenizer tok) : tok_(std::move(tok)) {}
  // The text completed by this token (often the token's own text, sometimes "").
  std::string push(int32_t id);
  // The rest of the buffer; an unfinished character at the end becomes U+FFFD.
  std::string finish();

 private:
  tokenizer::Tokenizer tok_;
  std::string pending_;  // bytes of an unfinished character
};

}  // namespace sllm::infer
