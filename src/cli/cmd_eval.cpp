// `sllm eval`: held-out exact-match accuracy of a model (optionally with a LoRA adapter) on
// question/answer JSONL, zero-shot or few-shot (src/infer/eval_exact_match.h).
#include <omp.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "core/args.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "infer/eval_exact_match.h"
#include "infer/text_session.h"
#include "lora/lora_model.h"
#include "lora/peft_files.h"

namespace sllm::cli {
namespace {

namespace fs = std::filesystem;

// An adapter directory holds adapter_config.json; an `sllm sft --method lora` run names its
// newest checkpoint (an adapter directory) in RUN/latest.
std::string resolve_adapter_dir(const std::string& dir) {
  if (fs::is_regular_file(fs::path(dir) / lora::kAdapterConfigFile)) return dir;
  const fs::path latest = fs::path(dir) / "latest";
  if (fs::is_regular_file(latest)) {
    const std::string name = infer::trim_whitespace(read_file(latest.string()));
    const fs::path ckpt = fs::path(dir) / name;
    if (fs::is_regular_file(ckpt / lora::kAdapterConfigFile)) return ckpt.string();
  }
  fail(str("--adapter '", dir, "' is neither an adapter directory (", lora::kAdapterConfigFile, ") nor a LoRA run"),
       "pass the --out directory of `sllm sft --method lora`, or one of its ckpt-<step> directories");
}

// Newlines shown as "\\n", so each printed example stays on its lines.
std::string one_line(std::string s) {
  for (size_t at = s.find('\n'); at != std::string::npos; at = s.find('\n', at + 2)) s.replace(at, 1, "\\n");
  return s;
}

int64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

int run_eval(const std::vector<std::string>& argv) {
  Args args("eval", argv,
            {{"--model", FlagSpec::Value, "model directory (config.json, model.safetensors, tokenizer.json), .gguf file or run directory (required)"},
             {"--adapter", FlagSpec::Value, "LoRA adapter directory (PEFT files) or `sllm sft --method lora` run to apply"},
             {"--data", FlagSpec::Value, "JSONL questions: chat lines whose last turn is the answer, or prompt/completion (required)"},
             {"--format", FlagSpec::Value, "chat (ChatML, for chat fine-tunes) or plain (\"...\\nAnswer:\", for base models) [chat]"},
             {"--shots", FlagSpec::Value, "few-shot examples in each prompt, drawn from --shots-from [0]"},
             {"--shots-from", FlagSpec::Value, "JSONL to draw the shots from (e.g. the train split; never the test set)"},
             {"--max-new-tokens", FlagSpec::Value, "tokens generated per answer at most [16]"},
             {"--limit", FlagSpec::Value, "evaluate only the first N questions, 0 = all [0]"},
             {"--seed", FlagSpec::Value, "seed of the shot draws [1337]"},
             {"--examples", FlagSpec::Value, "examples printed (prompt tail, expected, got) [5]"},
             {"--json", FlagSpec::Switch, "print the report as JSON on stdout instead of text"},
             {"--out", FlagSpec::Value, "also write the JSON report to this file (atomically)"},
             {"--threads", FlagSpec::Value, "CPU threads [all cores]"}});
  const std::string model_arg = args.required("--model");
  const std::string data_path = args.required("--data");
  infer::EvalOptions opts;
  opts.format = infer::parse_prompt_format(args.get("--format", "chat"));
  opts.shots = args.get_int("--shots", 0);
  opts.max_new_tokens = args.get_int("--max-new-tokens", opts.max_new_tokens);
  opts.limit = args.get_int("--limit", 0);
  const int64_t seed = args.get_int("--seed", 1337);
  const int64_t n_examples = args.get_int("--examples", 5);
  const int64_t threads = args.get_int("--threads", 0);
  SLLM_CHECK(opts.shots >= 0, str("sllm eval: --shots must be >= 0, got ", opts.shots), "e.g. --shots 3");
  SLLM_CHECK(opts.shots == 0 || args.has("--shots-from"), str("sllm eval: --shots ", opts.shots, " without --shots-from"),
             "name the file to draw the shots from, e.g. --shots-from data/story-qa/train.jsonl");
  SLLM_CHECK(opts.max_new_tokens > 0, str("sllm eval: --max-new-tokens must be > 0, got ", opts.max_new_tokens), args.usage());
  SLLM_CHECK(opts.limit >= 0, str("sllm eval: --limit must be >= 0, got ", opts.limit), "0 evaluates every question");
  SLLM_CHECK(seed >= 0 && n_examples >= 0 && threads >= 0, "sllm eval: --seed, --examples and --threads must be >= 0",
             args.usage());
  opts.seed = static_cast<uint64_t>(seed);
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));

  // Inputs first (cheap), so a bad file fails before the model loads.
  const std::vector<infer::QaItem> items = infer::load_qa_jsonl(data_path);
  std::vector<infer::QaItem> pool;
  if (args.has("--shots-from")) pool = infer::load_qa_jsonl(args.get("--shots-from", ""));
  (void)infer::pick_shots(pool, opts.shots, opts.seed, 0);  // K larger than the pool: fail now
  const std::string adapter_dir = args.has("--adapter") ? resolve_adapter_dir(args.get("--adapter", "")) : "";

  infer::InferenceModel m = infer::load_inference_model(model_arg, /*with_tokenizer=*/true);
  // Declared after m, so destroyed before the model it hooks into.
  std::unique_ptr<lora::LoraModel> lora;
  if (!adapter_dir.empty()) {
    lora = std::make_unique<lora::LoraModel>(*m.model);
    lora::load_adapter(*lora, adapter_dir);
  }

  const auto start = std::chrono::steady_clock::now();
  const infer::EvalReport report = infer::evaluate_exact_match(*m.model, *m.tokenizer, items, pool, opts);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  nlohmann::json j;
  j["model"] = m.dir;
  j["adapter"] = adapter_dir;
  j["data"] = data_path;
  j["format"] = infer::prompt_format_name(opts.format);
  j["shots"] = opts.shots;
  j["count"] = report.count;
  j["correct"] = report.correct;
  j["accuracy"] = report.accuracy;
  for (const auto& [type, s] : report.per_type)
    j["per_type"][type] = {{"count", s.count}, {"correct", s.correct},
                           {"accuracy", s.count ? static_cast<double>(s.correct) / static_cast<double>(s.count) : 0.0}};
  j["seconds"] = seconds;
  j["prompt_tokens"] = report.prompt_tokens;
  j["generated_tokens"] = report.generated_tokens;
  j["peak_rss_bytes"] = peak_rss_bytes();
  j["examples"] = nlohmann::json::array();
  for (int64_t i = 0; i < n_examples && i < static_cast<int64_t>(report.records.size()); ++i) {
    const infer::EvalRecord& r = report.records[static_cast<size_t>(i)];
    j["examples"].push_back({{"line", r.line}, {"type", r.type}, {"prompt_tail", r.prompt_tail},
                             {"expected", r.expected}, {"got", r.got}, {"correct", r.correct}});
  }
  if (args.has("--out")) write_file_atomic(args.get("--out", ""), j.dump(2) + "\n");
  if (args.has("--json")) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("eval %s%s%s on %s: %s format, %lld shots\n", m.dir.c_str(), adapter_dir.empty() ? "" : " + adapter ",
              adapter_dir.c_str(), data_path.c_str(), infer::prompt_format_name(opts.format),
              static_cast<long long>(opts.shots));
  std::printf("exact match: %.1f%% (%lld / %lld) in %.1f s\n", 100.0 * report.accuracy,
              static_cast<long long>(report.correct), static_cast<long long>(report.count), seconds);
  for (const auto& [type, s] : report.per_type)
    std::printf("  %-10s %5.1f%% (%lld / %lld)\n", type.c_str(), s.count ? 100.0 * s.correct / s.count : 0.0,
                static_cast<long long>(s.correct), static_cast<long long>(s.count));
  for (const auto& e : j["examples"]) {
    std::printf("\n[line %lld] %s\n  prompt: %s\n  expected: '%s'  got: '%s'\n", static_cast<long long>(e["line"].get<int64_t>()),
                e["correct"].get<bool>() ? "correct" : "wrong", one_line(e["prompt_tail"].get<std::string>()).c_str(),
                e["expected"].get<std::string>().c_str(), e["got"].get<std::string>().c_str());
  }
  return 0;
}

CommandRegistrar reg("eval", "held-out exact-match accuracy: zero-shot, few-shot, or a fine-tuned model / adapter", run_eval);

}  // namespace
}  // namespace sllm::cli
