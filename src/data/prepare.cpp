#include "data/prepare.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <numeric>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/synth_corpus.h"
#include "data/token_shard.h"

namespace sllm::data {

std::vector<std::string_view> split_documents(std::string_view text) {
  const std::string_view separator = kDocumentSeparator;
  std::vector<std::string_view> docs;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(separator, start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view doc = text.substr(start, end - start);
    while (!doc.empty() && (doc.front() == '\n' || doc.front() == '\r')) doc.remove_prefix(1);
    while (!doc.empty() && (doc.back() == '\n' || doc.back() == '\r')) doc.remove_suffix(1);
    if (!doc.empty()) docs.push_back(doc);
    start = end + separator.size();
  }
  return docs;
}

// Which documents go to validation: round(fraction * n) of them (at least one when the
// fraction is positive and there are two or more documents; never all of them), chosen by a
// seeded Fisher-Yates shuffle of the document indices.
static std::vector<bool> draw_validation(int64_t n, double fraction, uint64_t seed) {
  std::vector<bool> is_val(static_cast<size_t>(n), false);
  if (fraction <= 0 || n < 2) return is_val;
  int64_t n_val = std::llround(fraction * static_cast<double>(n));
  n_val = std::clamp<int64_t>(n_val, 1, n - 1);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  Rng rng(seed);
  for (int64_t i = 0; i < n_val; ++i) {  // the first n_val slots of a shuffle
    const auto j = i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(n - i)));
    std::swap(order[i], order[j]);
    is_val[order[i]] = true;
  }
  return is_val;
}

PrepareSummary prepare_shards(const PrepareOptions& options, const DocumentEncoder& encoder) {
  SLLM_CHECK(!options.inputs.empty(), "sllm prepare: no input files", "pass --input FILE [FILE...]");
  SLLM_CHECK(options.val_fraction >= 0 && options.val_fraction < 1,
             str("sllm prepare: --val-fraction must be in [0, 1), got ", options.val_fraction), "e.g. --val-fraction 0.05");
  SLLM_CHECK(encoder.vocab_size > 0 && encoder.eot_id >= 0 && encoder.eot_id < encoder.vocab_size,
             str("sllm prepare: end-of-text id ", encoder.eot_id, " is outside the vocabulary of ", encoder.vocab_size),
             "the tokenizer must register <|endoftext|> as a special token");

  PrepareSummary summary;
  std::vector<std::string> texts;
  std::vector<std::string_view> docs;
  for (const auto& path : options.inputs) {
    texts.push_back(read_file(path));
    summary.input_bytes += static_cast<int64_t>(texts.back().size());
  }
  for (const auto& text : texts)  // after all reads: `texts` no longer reallocates
    for (std::string_view doc : split_documents(text)) docs.push_back(doc);
  SLLM_CHECK(!docs.empty(), "sllm prepare: the input files hold no text", "check the --input paths");
  const auto n_docs = static_cast<int64_t>(docs.size());
  int64_t doc_bytes = 0;  // progress is measured in document bytes (separators excluded)
  for (std::string_view doc : docs) doc_bytes += static_cast<int64_t>(doc.size());
  const std::vector<bool> is_val = draw_validation(n_docs, options.val_fraction, options.seed);

  // Encode in chunks of documents: threads share a chunk (dynamic schedule, since documents
  // differ in length) and the chunk is appended in document order, so the output does not
  // depend on the thread count.
  std::vector<int32_t> train, val;
  constexpr int64_t kChunk = 2048;
  std::vector<std::vector<int32_t>> encoded(kChunk);
  int64_t bytes_done = 0;
  auto last_report = std::chrono::steady_clock::now();
  for (int64_t begin = 0; begin < n_docs; begin += kChunk) {
    const int64_t n = std::min(kChunk, n_docs - begin);
    std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 8)
    for (int64_t i = 0; i < n; ++i) {
      try {
        encoded[i] = encoder.encode(docs[begin + i]);
      } catch (...) {
#pragma omp critical
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    for (int64_t i = 0; i < n; ++i) {
      const bool to_val = is_val[begin + i];
      std::vector<int32_t>& out = to_val ? val : train;
      out.insert(out.end(), encoded[i].begin(), encoded[i].end());
      out.push_back(encoder.eot_id);
      (to_val ? summary.val_documents : summary.train_documents) += 1;
      bytes_done += static_cast<int64_t>(docs[begin + i].size());
    }
    const auto now = std::chrono::steady_clock::now();
    if (options.progress && (now - last_report > std::chrono::seconds(1) || begin + n == n_docs)) {
      last_report = now;
      std::fprintf(stderr, "prepare: %lld/%lld documents, %.1f/%.1f MiB, %lld tokens\n",
                   static_cast<long long>(begin + n), static_cast<long long>(n_docs), bytes_done / 1048576.0,
                   doc_bytes / 1048576.0, static_cast<long long>(train.size() + val.size()));
    }
  }
  summary.train_tokens = static_cast<int64_t>(train.size());
  summary.val_tokens = static_cast<int64_t>(val.size());
  summary.dtype_bytes = shard_dtype_for_vocab(encoder.vocab_size);

  std::error_code ec;
  std::filesystem::create_directories(options.out_dir, ec);
  SLLM_CHECK(!ec, str("sllm prepare: cannot create directory '", options.out_dir, "': ", ec.message()),
             "check the --out path and its permissions");
  write_token_shard(options.out_dir + "/train.bin", train, encoder.vocab_size);
  write_token_shard(options.out_dir + "/val.bin", val, encoder.vocab_size);
  const nlohmann::json meta = {
      {"format", "SLLMTOK1"},
      {"tokenizer", encoder.name},
      {"vocab_size", encoder.vocab_size},
      {"eot_id", encoder.eot_id},
      {"dtype_bytes", summary.dtype_bytes},
      {"inputs", options.inputs},
      {"input_bytes", summary.input_bytes},
      {"val_fraction", options.val_fraction},
      {"seed", options.seed},
      {"train", {{"file", "train.bin"}, {"documents", summary.train_documents}, {"tokens", summary.train_tokens}}},
      {"val", {{"file", "val.bin"}, {"documents", summary.val_documents}, {"tokens", summary.val_tokens}}},
  };
  write_file_atomic(options.out_dir + "/meta.json", meta.dump(2) + "\n");
  return summary;
}

}  // namespace sllm::data
