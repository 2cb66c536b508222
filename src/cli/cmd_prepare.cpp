// `sllm prepare`: tokenizes text files into token shards for pretraining (src/data/prepare.h).
#include <cstdio>

#include "cli/command.h"
#include "core/args.h"
#include "core/error.h"
#include "data/prepare.h"

namespace sllm::cli {

static int run_prepare(const std::vector<std::string>& argv) {
  Args args("prepare", argv,
            {{"--tokenizer", FlagSpec::Value, "tokenizer directory or file (tokenizer.json, vocab.json+merges.txt)"},
             {"--input", FlagSpec::List, "text files; documents are separated by <|endoftext|> lines"},
             {"--out", FlagSpec::Value, "output directory; receives train.bin, val.bin and meta.json"},
             {"--val-fraction", FlagSpec::Value, "share of documents held out for validation (default 0.05)"},
             {"--seed", FlagSpec::Value, "seed of the train/validation draw (default 1337)"}});
  data::PrepareOptions options;
  const std::string tokenizer = args.required("--tokenizer");
  options.inputs = args.get_list("--input");
  SLLM_CHECK(!options.inputs.empty(), "sllm prepare: missing required flag --input", args.usage());
  options.out_dir = args.required("--out");
  options.val_fraction = args.get_double("--val-fraction", 0.05);
  const int64_t seed = args.get_int("--seed", 1337);
  SLLM_CHECK(seed >= 0, str("sllm prepare: --seed must be non-negative, got ", seed), "e.g. --seed 1337");
  options.seed = static_cast<uint64_t>(seed);
  options.progress = true;

  const data::PrepareSummary s = data::prepare_shards(options, tokenizer);
  std::fprintf(stderr, "wrote %s/train.bin (%lld documents, %lld tokens) and val.bin (%lld documents, %lld tokens), uint%u ids\n",
               options.out_dir.c_str(), static_cast<long long>(s.train_documents), static_cast<long long>(s.train_tokens),
               static_cast<long long>(s.val_documents), static_cast<long long>(s.val_tokens), s.dtype_bytes * 8);
  if (s.val_documents == 0 && options.val_fraction > 0)
    std::fprintf(stderr, "warning: val.bin is empty (only one document); separate documents with <|endoftext|> lines\n");
  return 0;
}

static CommandRegistrar registrar("prepare", "tokenize text files into train/val token shards", run_prepare);

}  // namespace sllm::cli
