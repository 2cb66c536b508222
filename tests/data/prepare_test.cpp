// `sllm prepare`: documents split at the separator, encoded, each followed by end-of-text,
// whole documents drawn into validation by seed; the shards decode back to the documents.
#include "data/prepare.h"

#include <omp.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/synth_corpus.h"
#include "data/token_shard.h"
#include "test_dir.h"
#include "tokenizer/tokenizer.h"

namespace sllm::data {
namespace {

// A stand-in tokenizer: one id per byte, end-of-text = 256.
DocumentEncoder byte_encoder() {
  DocumentEncoder e;
  e.encode = [](std::string_view text) {
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  };
  e.vocab_size = 257;
  e.eot_id = 256;
  e.name = "bytes";
  return e;
}

std::vector<int32_t> all_ids(const TokenShard& shard) {
  std::vector<int32_t> ids(static_cast<size_t>(shard.size()));
  if (!ids.empty()) shard.read(0, shard.size(), ids.data());
  return ids;
}

// Splits a shard's ids at `eot`; every document must end with it.
std::vector<std::vector<int32_t>> documents_of(const TokenShard& shard, int32_t eot) {
  std::vector<std::vector<int32_t>> docs(1);
  for (int32_t id : all_ids(shard)) {
    if (id == eot) {
      docs.emplace_back();
    } else {
      docs.back().push_back(id);
    }
  }
  EXPECT_TRUE(docs.back().empty()) << shard.path() << " does not end with end-of-text";
  docs.pop_back();
  return docs;
}

std::string as_text(const std::vector<int32_t>& bytes) { return std::string(bytes.begin(), bytes.end()); }

TEST(SplitDocuments, SplitsAtSeparatorsAndTrimsLineBreaks) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(split_documents("one\n<|endoftext|>\ntwo\r\n<|endoftext|>\n"), (V{"one", "two"}));
  EXPECT_EQ(split_documents("no separator at all\n"), (V{"no separator at all"}));
  EXPECT_EQ(split_documents("\n<|endoftext|>\n\n<|endoftext|><|endoftext|>x"), (V{"x"}));
  EXPECT_EQ(split_documents("  indented\nkept  \n<|endoftext|>"), (V{"  indented\nkept  "}));
  EXPECT_TRUE(split_documents("").empty());
}

struct Corpus {
  testing::TempDir dir;
  std::vector<std::string> docs;  // in input order
  std::vector<std::string> files;
  explicit Corpus(int n_docs) {
    std::string a, b;
    for (int i = 0; i < n_docs; ++i) {
      docs.push_back(str("Document ", i, " says \"hello\" ", std::string(static_cast<size_t>(i % 7), '!'), "\nline two"));
      (i < n_docs / 2 ? a : b) += docs.back() + "\n<|endoftext|>\n";
    }
    files = {dir.path + "/a.txt", dir.path + "/b.txt"};
    write_file_atomic(files[0], a);
    write_file_atomic(files[1], b.substr(0, b.size() - 15));  // the last document has no trailing separator
  }
  PrepareOptions options(const std::string& out, double fraction, uint64_t seed) const {
    PrepareOptions o;
    o.inputs = files;
    o.out_dir = dir.path + "/" + out;
    o.val_fraction = fraction;
    o.seed = seed;
    return o;
  }
};

TEST(Prepare, ShardsHoldEveryDocumentOnceWithEndOfText) {
  Corpus corpus(100);
  const PrepareSummary s = prepare_shards(corpus.options("out", 0.1, 3), byte_encoder());
  const std::string out = corpus.dir.path + "/out";
  const TokenShard train = TokenShard::open(out + "/train.bin"), val = TokenShard::open(out + "/val.bin");
  EXPECT_EQ(train.dtype_bytes(), 2u);
  const auto train_docs = documents_of(train, 256), val_docs = documents_of(val, 256);
  EXPECT_EQ(val_docs.size(), 10u);  // round(0.1 * 100)
  EXPECT_EQ(train_docs.size(), 90u);
  // Train keeps input order; together with val it is exactly the input documents.
  std::vector<std::string> seen;
  for (const auto& d : train_docs) seen.push_back(as_text(d));
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end(), [&](const std::string& x, const std::string& y) {
    return std::find(corpus.docs.begin(), corpus.docs.end(), x) < std::find(corpus.docs.begin(), corpus.docs.end(), y);
  }));
  for (const auto& d : val_docs) seen.push_back(as_text(d));
  std::sort(seen.begin(), seen.end());
  std::vector<std::string> expected = corpus.docs;
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(seen, expected);

  EXPECT_EQ(s.train_tokens, train.size());
  EXPECT_EQ(s.val_tokens, val.size());
  const auto meta = nlohmann::json::parse(read_file(out + "/meta.json"));
  EXPECT_EQ(meta["tokenizer"], "bytes");
  EXPECT_EQ(meta["vocab_size"], 257);
  EXPECT_EQ(meta["eot_id"], 256);
  EXPECT_EQ(meta["train"]["tokens"], train.size());
  EXPECT_EQ(meta["val"]["tokens"], val.size());
  EXPECT_EQ(meta["val"]["documents"], 10);
}

TEST(Prepare, SameSeedSameShardsWhateverTheThreadCount) {
  Corpus corpus(300);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  prepare_shards(corpus.options("one", 0.2, 7), byte_encoder());
  omp_set_num_threads(std::max(2, threads));
  prepare_shards(corpus.options("two", 0.2, 7), byte_encoder());
  prepare_shards(corpus.options("other", 0.2, 8), byte_encoder());
  omp_set_num_threads(threads);
  const std::string d = corpus.dir.path;
  EXPECT_EQ(read_file(d + "/one/train.bin"), read_file(d + "/two/train.bin"));
  EXPECT_EQ(read_file(d + "/one/val.bin"), read_file(d + "/two/val.bin"));
  EXPECT_NE(read_file(d + "/one/val.bin"), read_file(d + "/other/val.bin"));
}

TEST(Prepare, ZeroFractionPutsEverythingInTrain) {
  Corpus corpus(20);
  const PrepareSummary s = prepare_shards(corpus.options("out", 0.0, 1), byte_encoder());
  EXPECT_EQ(s.train_documents, 20);
  EXPECT_EQ(s.val_documents, 0);
  EXPECT_EQ(TokenShard::open(corpus.dir.path + "/out/val.bin").size(), 0);
}

TEST(Prepare, BadOptionsRaiseErrors) {
  Corpus corpus(4);
  EXPECT_THROW(prepare_shards(corpus.options("out", 1.0, 1), byte_encoder()), Error);
  EXPECT_THROW(prepare_shards(corpus.options("out", -0.1, 1), byte_encoder()), Error);
  PrepareOptions missing = corpus.options("out", 0.1, 1);
  missing.inputs.push_back(corpus.dir.path + "/missing.txt");
  EXPECT_THROW(prepare_shards(missing, byte_encoder()), Error);
  DocumentEncoder no_eot = byte_encoder();
  no_eot.eot_id = 257;
  EXPECT_THROW(prepare_shards(corpus.options("out", 0.1, 1), no_eot), Error);
  EXPECT_FALSE(std::filesystem::exists(corpus.dir.path + "/out"));
}

// With the project's tokenizer: train a small BPE on synthetic stories, prepare, and decode.
TEST(Prepare, TrainedTokenizerShardsDecodeToTheDocuments) {
  testing::TempDir dir;
  const std::string text = synth_corpus(60000, 11);
  write_file_atomic(dir.path + "/stories.txt", text);
  const auto tok = tokenizer::Tokenizer::train({text}, 600, "gpt2");
  tok.save(dir.path + "/tok");

  PrepareOptions o;
  o.inputs = {dir.path + "/stories.txt"};
  o.out_dir = dir.path + "/shards";
  o.val_fraction = 0.1;
  prepare_shards(o, dir.path + "/tok");

  const int32_t eot = *tok.special_id("<|endoftext|>");
  std::vector<std::string> decoded;
  for (const char* split : {"/train.bin", "/val.bin"})
    for (const auto& ids : documents_of(TokenShard::open(o.out_dir + split), eot)) decoded.push_back(tok.decode(ids));
  const auto docs = split_documents(text);
  std::vector<std::string> expected(docs.begin(), docs.end());
  EXPECT_EQ(decoded.size(), expected.size());
  std::sort(decoded.begin(), decoded.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(decoded, expected);
}

TEST(Prepare, TokenizerWithoutEndOfTextIsRejectedWithHint) {
  testing::TempDir dir;
  const std::string text = synth_corpus(20000, 2);
  write_file_atomic(dir.path + "/stories.txt", text);
  tokenizer::Tokenizer::train({text}, 300, "gpt2", /*specials=*/{}).save(dir.path + "/tok");
  PrepareOptions o;
  o.inputs = {dir.path + "/stories.txt"};
  o.out_dir = dir.path + "/shards";
  try {
    prepare_shards(o, dir.path + "/tok");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("<|endoftext|>"), std::string::npos) << e.what();
    EXPECT_FALSE(e.hint().empty());
  }
}

// With GPT-2's own files from ../shared, when present: uint16 ids, end-of-text 50256.
TEST(Prepare, Gpt2TokenizerShardsDecodeToTheDocuments) {
  const std::string gpt2 = std::string(SLLM_SOURCE_DIR) + "/../shared/data/tokenizers/gpt2";
  if (!std::filesystem::exists(gpt2 + "/vocab.json")) GTEST_SKIP() << "GPT-2 tokenizer files not found at " << gpt2;
  testing::TempDir dir;
  const std::string text = synth_corpus(30000, 5);
  write_file_atomic(dir.path + "/stories.txt", text);
  PrepareOptions o;
  o.inputs = {dir.path + "/stories.txt"};
  o.out_dir = dir.path + "/shards";
  o.val_fraction = 0;
  prepare_shards(o, gpt2);
  const auto tok = tokenizer::Tokenizer::load(gpt2);
  const TokenShard train = TokenShard::open(o.out_dir + "/train.bin");
  EXPECT_EQ(train.dtype_bytes(), 2u);
  EXPECT_EQ(train[train.size() - 1], 50256);
  std::vector<std::string> decoded;
  for (const auto& ids : documents_of(train, 50256)) decoded.push_back(tok.decode(ids));
  const auto docs = split_documents(text);
  EXPECT_EQ(decoded, std::vector<std::string>(docs.begin(), docs.end()));  // val empty: train keeps input order
  EXPECT_EQ(nlohmann::json::parse(read_file(o.out_dir + "/meta.json"))["vocab_size"], 50257);
}

}  // namespace
}  // namespace sllm::data
