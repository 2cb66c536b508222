// `sllm prepare`: text files -> token shards (token_shard.h) for pretraining.
//
// Each input file is split into documents at the separator "<|endoftext|>" (a file's end also
// ends a document). Every document is encoded as plain text (a separator-looking string inside
// it would stay text) and followed by the tokenizer's "<|endoftext|>" id, so the model sees
// where one story ends and the next begins. Whole documents, never pieces, are drawn into the
// validation split by a seeded shuffle, so the same inputs and seed give the same shards.
// Outputs, each written atomically: DIR/train.bin, DIR/val.bin, DIR/meta.json.
//
// Memory: the input text and the output ids are held in memory (about 1.5x the input size
// in bytes for GPT-2-like tokenizers); fine up to a few GB of text.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace sllm::data {

// Splits text at every "<|endoftext|>", trims line breaks ('\n', '\r') from both ends of each
// piece (the separator sits on its own line) and drops pieces that are then empty.
std::vector<std::string_view> split_documents(std::string_view text);

// What prepare needs from a tokenizer; tests plug in a byte-level stand-in.
struct DocumentEncoder {
  std::function<std::vector<int32_t>(std::string_view)> encode;  // plain text -> ids; called from several threads
  int64_t vocab_size = 0;
  int32_t eot_id = -1;           // appended after every document
  std::string name;              // recorded in meta.json (the tokenizer path)
};

struct PrepareOptions {
  std::vector<std::string> inputs;  // text files
  std::string out_dir;
  double val_fraction = 0.05;       // share of documents drawn into val.bin, in [0, 1)
  uint64_t seed = 1337;
  bool progress = false;            // progress lines on stderr
};

struct PrepareSummary {
  int64_t input_bytes = 0;
  int64_t train_documents = 0, val_documents = 0;
  int64_t train_tokens = 0, val_tokens = 0;  // including one end-of-text id per document
  uint32_t dtype_bytes = 0;
};

PrepareSummary prepare_shards(const PrepareOptions& options, const DocumentEncoder& encoder);

// Loads the tokenizer at `tokenizer_path` (see tokenizer::Tokenizer::load) and prepares with
// it; a tokenizer without an "<|endoftext|>" special token raises sllm::Error with a hint.
PrepareSummary prepare_shards(const PrepareOptions& options, const std::string& tokenizer_path);

}  // namespace sllm::data
