// `sllm tokenizer train|encode|decode|info`: train a byte-level BPE tokenizer, and run any
// tokenizer file we read (tokenizer.json, vocab.json+merges.txt, .tiktoken) from the shell.
#include <climits>
#include <cstdio>
#include <iostream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/args.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace sllm::cli {
namespace {

using tokenizer::Tokenizer;

const char* kVerbs = "sllm tokenizer train|encode|decode|info [flags]; `sllm tokenizer <verb> --help` lists the flags";

std::string read_stdin() {
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  return text;
}

int train(const std::vector<std::string>& argv) {
  Args args("tokenizer train", argv,
            {{"--input", FlagSpec::List, "text files to train on"},
             {"--vocab-size", FlagSpec::Value, "tokens in the vocabulary, special tokens included"},
             {"--pattern", FlagSpec::Value, "pre-tokenizer: gpt2 | cl100k | o200k | digits (default gpt2)"},
             {"--out", FlagSpec::Value, "output directory (writes tokenizer.json)"}});
  const auto inputs = args.get_list("--input");
  SLLM_CHECK(!inputs.empty(), "sllm tokenizer train: missing --input", args.usage());
  const int64_t vocab = args.get_int("--vocab-size", 0);
  SLLM_CHECK(args.has("--vocab-size"), "sllm tokenizer train: missing --vocab-size", args.usage());
  const std::string out = args.required("--out");
  std::vector<std::string> texts;
  for (const auto& path : inputs) texts.push_back(read_file(path));
  // "<|endoftext|>" separates documents in pretraining; the ChatML pair serves fine-tuning.
  const Tokenizer tok = Tokenizer::train(texts, vocab, args.get("--pattern", "gpt2"), {"<|endoftext|>", "<|im_start|>", "<|im_end|>"});
  tok.save(out);
  std::fprintf(stderr, "trained %lld tokens (%lld merges, pattern %s) -> %s/tokenizer.json\n",
               static_cast<long long>(tok.vocab_size()), static_cast<long long>(tok.num_merges()), tok.pattern_name().c_str(), out.c_str());
  return 0;
}

std::vector<FlagSpec> load_flags() {
  return {{"--tokenizer", FlagSpec::Value, "dir with tokenizer.json or vocab.json+merges.txt, a tokenizer.json, a .gguf, or a .tiktoken file"},
          {"--pattern", FlagSpec::Value, "pre-tokenizer (required for .tiktoken): gpt2 | cl100k | o200k | digits"}};
}

int encode(const std::vector<std::string>& argv) {
  auto spec = load_flags();
  spec.push_back({"--allow-special", FlagSpec::Switch, "match special tokens such as <|endoftext|> in the text"});
  Args args("tokenizer encode", argv, spec);
  const Tokenizer tok = Tokenizer::load(args.required("--tokenizer"), args.get("--pattern", ""));
  const auto ids = tok.encode(read_stdin(), args.has("--allow-special"));
  std::string out = "[";
  for (size_t k = 0; k < ids.size(); ++k) {
    if (k) out += ',';
    out += std::to_string(ids[k]);
  }
  out += "]\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int decode(const std::vector<std::string>& argv) {
  Args args("tokenizer decode", argv, load_flags());
  const Tokenizer tok = Tokenizer::load(args.required("--tokenizer"), args.get("--pattern", ""));
  const std::string hint = "stdin must hold one JSON array of token ids, e.g. [15496, 995]";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_stdin());
  } catch (const nlohmann::json::exception& e) {
    fail(str("sllm tokenizer decode: stdin is not JSON (", e.what(), ")"), hint);
  }
  SLLM_CHECK(j.is_array(), "sllm tokenizer decode: stdin is not a JSON array", hint);
  std::vector<int32_t> ids;
  for (const auto& v : j) {
    SLLM_CHECK(v.is_number_integer() && v.get<int64_t>() >= INT32_MIN && v.get<int64_t>() <= INT32_MAX,
               str("sllm tokenizer decode: '", v.dump(), "' is not a token id"), hint);
    ids.push_back(v.get<int32_t>());
  }
  const std::string text = tok.decode(ids);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

int info(const std::vector<std::string>& argv) {
  Args args("tokenizer info", argv, load_flags());
  const Tokenizer tok = Tokenizer::load(args.required("--tokenizer"), args.get("--pattern", ""));
  std::printf("vocab size: %lld\nmerges:     %lld\npattern:    %s\nspecial tokens:\n", static_cast<long long>(tok.vocab_size()),
              static_cast<long long>(tok.num_merges()), tok.pattern_name().c_str());
  for (const auto& [text, id] : tok.special_tokens()) std::printf("  %d %s\n", id, text.c_str());
  return 0;
}

int run(const std::vector<std::string>& args) {
  SLLM_CHECK(!args.empty(), "sllm tokenizer: missing verb", kVerbs);
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "train") return train(rest);
  if (args[0] == "encode") return encode(rest);
  if (args[0] == "decode") return decode(rest);
  if (args[0] == "info") return info(rest);
  if (args[0] == "--help" || args[0] == "help") throw HelpRequested(kVerbs);
  fail(str("sllm tokenizer: unknown verb '", args[0], "'"), kVerbs);
}

CommandRegistrar reg("tokenizer", "train / encode / decode / inspect a byte-level BPE tokenizer", run);

}  // namespace
}  // namespace sllm::cli
