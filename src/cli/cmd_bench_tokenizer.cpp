// `sllm bench tokenizer`: encode throughput (MB/s, 1 thread) of the cl100k tokenizer on a few
// MB of mixed text (English, code, CJK, emoji) generated here from a fixed seed, so every
// run and tools/bench_tokenizer_vs_tiktoken.py (via --dump-text) measure the same bytes.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "core/args.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/rng.h"
#include "tokenizer/tokenizer.h"

namespace sllm::cli {
namespace {

namespace fs = std::filesystem;

void append_cp(std::string& s, uint32_t cp) {  // UTF-8 of a valid code point
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6)), s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12)), s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18)), s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Mixed text: 60% English-like prose, 20% C-like code, 12% CJK, 8% emoji-laden chat, by
// paragraph. Word choice is Zipf-like (lower indices more often), as in real text.
std::string mixed_text(size_t bytes, uint64_t seed) {
  static const char* words[] = {
      "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not", "he",
      "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were", "their", "one",
      "all", "we", "can", "her", "has", "there", "been", "if", "more", "when", "will", "would", "who", "so", "no", "model",
      "training", "tokenizer", "gradient", "learning", "language", "small", "engine", "kernel", "memory", "throughput",
      "attention", "matrix", "vector", "sequence", "parameter", "optimizer", "batch", "layer", "weights", "loss", "data",
      "people", "government", "university", "history", "between", "through", "important", "development", "information",
      "Paris", "London", "Tokyo", "September", "Monday", "however", "therefore", "don't", "it's", "we're", "they've"};
  static const char* code_lines[] = {
      "for (int64_t i = 0; i < n; ++i) {", "  sum += a[i] * b[i];", "}", "return std::max(lo, std::min(x, hi));",
      "def forward(self, x):", "    return self.proj(F.gelu(self.fc(x)))", "if (err != 0) { fprintf(stderr, \"%s\\n\", msg); }",
      "const auto& [key, value] = *it;", "x = np.zeros((B, T, C), dtype=np.float32)", "// TODO: fuse the bias add",
      "    self.weight = nn.Parameter(torch.empty(out_features, in_features))", "#include <vector>",
      "std::vector<float> grad(static_cast<size_t>(n), 0.0f);", "print(f\"step {step}: loss={loss:.4f}\")"};
  const uint32_t emoji[] = {0x1F600, 0x1F602, 0x1F44D, 0x1F525, 0x2764, 0x1F680, 0x1F389, 0x1F914, 0x2705, 0x1F4AF};
  Rng rng(seed);
  auto zipf = [&](size_t n) {  // index with probability ~ 1/(i+1), by inverse transform on a log scale
    const double u = rng.uniform_double();
    return std::min(n - 1, static_cast<size_t>(std::exp(u * std::log(static_cast<double>(n) + 1.0)) - 1.0));
  };
  std::string s;
  s.reserve(bytes + 1024);
  while (s.size() < bytes) {
    const uint64_t kind = rng.below(100);
    if (kind < 60) {  // prose
      const int sentences = 2 + static_cast<int>(rng.below(5));
      for (int k = 0; k < sentences; ++k) {
        const int n = 5 + static_cast<int>(rng.below(15));
        for (int w = 0; w < n; ++w) {
          std::string word = words[zipf(std::size(words))];
          if (w == 0) word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
          s += word;
          if (rng.below(20) == 0) s += ' ', s += std::to_string(rng.below(100000));
          if (w + 1 < n) s += rng.below(12) == 0 ? ", " : " ";
        }
        s += rng.below(8) == 0 ? "? " : ". ";
      }
      s += "\n\n";
    } else if (kind < 80) {  // code
      const int n = 3 + static_cast<int>(rng.below(10));
      for (int k = 0; k < n; ++k) s.append(2 * rng.below(4), ' ').append(code_lines[rng.below(std::size(code_lines))]).append("\n");
      s += "\n";
    } else if (kind < 92) {  // CJK: common Han characters, kana, CJK punctuation
      const int n = 20 + static_cast<int>(rng.below(100));
      for (int k = 0; k < n; ++k) {
        const uint64_t r = rng.below(20);
        if (r == 0) append_cp(s, 0x3002);                              // 。
        else if (r == 1) append_cp(s, 0xFF0C);                         // ，
        else if (r < 6) append_cp(s, 0x3041 + static_cast<uint32_t>(rng.below(0x56)));  // hiragana
        else append_cp(s, 0x4E00 + static_cast<uint32_t>(zipf(3000)));   // Han, frequent ones first
      }
      s += "\n\n";
    } else {  // chat with emoji
      const int n = 3 + static_cast<int>(rng.below(8));
      for (int w = 0; w < n; ++w) {
        s += words[zipf(std::size(words))];
        s += ' ';
        if (rng.below(3) == 0) append_cp(s, emoji[rng.below(std::size(emoji))]), s += ' ';
      }
      append_cp(s, emoji[rng.below(std::size(emoji))]);
      s += "\n";
    }
  }
  return s;
}

// cl100k_base.tiktoken in a `shared/data/tokenizers` beside an ancestor of the binary or cwd.
std::string find_default_rank_file() {
  std::error_code ec;
  for (fs::path start : {fs::read_symlink("/proc/self/exe", ec).parent_path(), fs::current_path(ec)})
    for (fs::path p = start; !p.empty(); p = p.parent_path()) {
      const fs::path f = p / "shared/data/tokenizers/cl100k_base.tiktoken";
      if (fs::exists(f, ec)) return f.string();
      if (p == p.parent_path()) break;
    }
  return "";
}

int run(const std::vector<std::string>& argv) {
  Args args("bench tokenizer", argv,
            {{"--json", FlagSpec::Switch, "print one JSON object"},
             {"--dump-text", FlagSpec::Value, "also write the benchmark text to this file"},
             {"--tokenizer", FlagSpec::Value, "tokenizer path (default: cl100k_base.tiktoken under ../shared)"},
             {"--pattern", FlagSpec::Value, "pattern for a .tiktoken file (default cl100k)"},
             {"--mb", FlagSpec::Value, "text size in MB (default 4)"},
             {"--repeat", FlagSpec::Value, "timed passes, each with a fresh tokenizer and cold caches (default 3)"}});
  const double mb = args.get_double("--mb", 4.0);
  const int64_t repeat = args.get_int("--repeat", 3);
  SLLM_CHECK(mb > 0 && mb <= 1024 && repeat >= 1, "bench tokenizer: --mb must be in (0, 1024] and --repeat >= 1", args.usage());
  std::string path = args.get("--tokenizer", "");
  if (path.empty()) path = find_default_rank_file();
  SLLM_CHECK(!path.empty(), "bench tokenizer: cl100k_base.tiktoken not found under shared/data/tokenizers",
             "pass --tokenizer PATH (and --pattern for a .tiktoken file)");
  const std::string pattern = args.get("--pattern", path.size() > 9 && path.ends_with(".tiktoken") ? "cl100k" : "");

  const std::string text = mixed_text(static_cast<size_t>(mb * 1e6), 20240601);
  if (args.has("--dump-text")) write_file_atomic(args.get("--dump-text", ""), text);

  double best = 1e30;
  size_t n_tokens = 0;
  for (int64_t r = 0; r < repeat; ++r) {
    const auto tok = tokenizer::Tokenizer::load(path, pattern);  // fresh model: the piece cache starts cold
    const auto t0 = std::chrono::steady_clock::now();
    const auto ids = tok.encode(text);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, dt);
    n_tokens = ids.size();
  }
  const double mbps = static_cast<double>(text.size()) / 1e6 / best;
  if (args.has("--json")) {
    std::printf("{\"bench\": \"tokenizer\", \"tokenizer\": \"%s\", \"bytes\": %zu, \"tokens\": %zu, \"threads\": 1, "
                "\"seconds\": %.6f, \"mb_per_s\": %.3f}\n",
                path.c_str(), text.size(), n_tokens, best, mbps);
  } else {
    std::printf("tokenizer encode (%s, 1 thread): %.2f MB of mixed text -> %zu tokens in %.3f s = %.2f MB/s (best of %lld, MB = 1e6 bytes)\n",
                fs::path(path).filename().c_str(), static_cast<double>(text.size()) / 1e6, n_tokens, best, mbps,
                static_cast<long long>(repeat));
  }
  return 0;
}

CommandRegistrar reg("bench tokenizer", "tokenizer encode MB/s on mixed text (1 thread)", run);

}  // namespace
}  // namespace sllm::cli
