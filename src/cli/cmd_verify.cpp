// `sllm verify`: a model's pass rate on a prompts file under a rule-based verifier
// (src/rl/verifier.h): the number that `make demo-rlhf` reports before and after RL.
//
// Each prompt line is a JSON object {"prompt": "...", <the verifier's fields>, "verifier": NAME}
// (`sllm data rlhf-story` writes them). For every prompt, K responses are sampled (seeded per
// response, so the report is reproducible), each is the text of the new tokens up to
// <|endoftext|> (the stop a PPO rollout uses) or --max-new-tokens, and the verifier grades it.
// Every line is checked (JSON, prompt, verifier name and fields, length) before the model runs.
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/inference_flags.h"
#include "core/args.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/rng.h"
#include "infer/batch_generate.h"
#include "infer/text_session.h"
#include "rl/verifier.h"

namespace sllm::cli {
namespace {

using nlohmann::json;

struct PromptLine {
  json example;
  std::string prompt;
  const rl::Verifier* verifier = nullptr;
  int64_t line = 0;
};

// Parses the prompts file; every error names file:line. Verifiers are made once per name.
std::vector<PromptLine> load_prompts(const std::string& path, const std::string& override_name,
                                     std::map<std::string, std::unique_ptr<rl::Verifier>>& verifiers) {
  const char* hint = "each line: {\"prompt\": \"...\", <the verifier's fields>, \"verifier\": \"<name>\"}, "
                     "as `sllm data rlhf-story` writes in prompts.test.jsonl";
  std::vector<PromptLine> out;
  std::istringstream in(read_file(path));
  std::string text;
  for (int64_t number = 1; std::getline(in, text); ++number) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = str(path, ":", number);
    PromptLine p;
    p.line = number;
    try {
      p.example = json::parse(text);
    } catch (const json::exception& e) {
      fail(str(where, ": not valid JSON (", e.what(), ")"), hint);
    }
    SLLM_CHECK(p.example.is_object() && p.example.contains("prompt") && p.example["prompt"].is_string(),
               str(where, ": no string \"prompt\""), hint);
    p.prompt = p.example["prompt"].get<std::string>();
    SLLM_CHECK(!p.prompt.empty(), str(where, ": the prompt is empty"), "every line needs a prompt to answer; remove the line");
    try {
      const std::string name = rl::verifier_name_for(p.example, override_name);
      auto& v = verifiers[name];
      if (!v) v = rl::make_verifier(name);
      p.verifier = v.get();
      (void)v->reward(p.example, "");  // a missing or mistyped field fails now, not after sampling
    } catch (const Error& e) {
      fail(str(where, ": ", e.message()), e.hint());
    }
    out.push_back(std::move(p));
  }
  SLLM_CHECK(!out.empty(), str(path, ": no prompt in the file"), hint);
  return out;
}

int run_verify(const std::vector<std::string>& argv) {
  Args args("verify", argv,
            with_flags({{"--prompts", FlagSpec::Value, "JSONL prompts, each with the fields its verifier reads (required)"},
                        {"--verifier", FlagSpec::Value,
                         str("verifier for every line (", [] {
                           std::string s;
                           for (const auto& n : rl::verifier_names()) s += (s.empty() ? "" : ", ") + n;
                           return s;
                         }(), ") [each line's \"verifier\"]")},
                        {"--samples", FlagSpec::Value, "responses sampled per prompt [1]"},
                        {"--limit", FlagSpec::Value, "use only the first N prompts, 0 = all [0]"},
                        {"--max-new-tokens", FlagSpec::Value, "tokens per response at most [32]"},
                        {"--temperature", FlagSpec::Value, "softmax temperature, 0 = greedy [1.0, as PPO samples]"},
                        {"--top-k", FlagSpec::Value, "sample among the K most likely tokens, 0 = all [0]"},
                        {"--top-p", FlagSpec::Value, "nucleus sampling, in (0, 1] [1.0]"},
                        {"--seed", FlagSpec::Value, "seed of the samplers; each response gets its own [0]"},
                        {"--examples", FlagSpec::Value, "responses kept in the report's examples [5]"},
                        {"--out", FlagSpec::Value, "write the JSON report here (atomically) (required)"}},
                       model_flags()));
  const std::string prompts_path = args.required("--prompts");
  const std::string out_path = args.required("--out");
  const int64_t samples = args.get_int("--samples", 1), limit = args.get_int("--limit", 0);
  const int64_t max_new = args.get_int("--max-new-tokens", 32), n_examples = args.get_int("--examples", 5);
  const int64_t seed = args.get_int("--seed", 0);
  SLLM_CHECK(samples > 0, str("sllm verify: --samples must be > 0, got ", samples), "e.g. --samples 4");
  SLLM_CHECK(limit >= 0, str("sllm verify: --limit must be >= 0, got ", limit), "0 uses every prompt");
  SLLM_CHECK(max_new > 0, str("sllm verify: --max-new-tokens must be > 0, got ", max_new), "e.g. --max-new-tokens 32");
  SLLM_CHECK(n_examples >= 0 && seed >= 0, "sllm verify: --examples and --seed must be >= 0", args.usage());
  infer::SamplingConfig sampling;
  sampling.temperature = static_cast<float>(args.get_double("--temperature", 1.0));
  sampling.top_k = args.get_int("--top-k", 0);
  sampling.top_p = static_cast<float>(args.get_double("--top-p", 1.0));
  infer::validate(sampling);

  // Inputs first (cheap): a bad line or verifier name fails before the model loads.
  std::map<std::string, std::unique_ptr<rl::Verifier>> verifiers;
  std::vector<PromptLine> prompts = load_prompts(prompts_path, args.get("--verifier", ""), verifiers);
  if (limit > 0 && limit < static_cast<int64_t>(prompts.size())) prompts.resize(static_cast<size_t>(limit));

  const infer::InferenceSpec spec = read_model_flags(args, /*with_tokenizer=*/true);
  infer::InferenceModel m = infer::load_inference_model(spec);
  const int64_t n_ctx = m.model->config().n_ctx;
  std::vector<std::vector<int32_t>> ids(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    ids[i] = m.tokenizer->encode(prompts[i].prompt);  // data, not markup: no special tokens
    SLLM_CHECK(static_cast<int64_t>(ids[i].size()) < n_ctx,
               str(prompts_path, ":", prompts[i].line, ": the prompt is ", ids[i].size(), " tokens; the model's context is ",
                   n_ctx, " and a response needs at least one more"),
               "shorten the prompt or use a model with a longer context");
  }

  // One seed per response, drawn in order from Rng(--seed): reproducible, and independent of
  // how many prompts or samples follow.
  Rng seeds(static_cast<uint64_t>(seed));
  double reward_sum = 0;
  int64_t passed = 0, responses = 0, new_tokens = 0, hit_context = 0, hit_max = 0;
  std::map<std::string, std::pair<int64_t, int64_t>> per_verifier;  // name -> (passed, responses)
  json examples = json::array();
  const auto start = std::chrono::steady_clock::now();
  // Every (prompt, sample) is one row of infer::generate_batch, kBatch rows at a time: a row
  // is bit-for-bit what it would be generated alone (batch_generate.h), so the report does not
  // depend on the batching.
  constexpr size_t kBatch = 64;
  infer::BatchGenerateOptions gen;
  gen.max_new_tokens = max_new;
  gen.sampling = sampling;
  gen.sampling.vocab_limit = m.tokenizer->vocab_size();
  gen.stop_ids = infer::text_stop_ids(m);
  std::vector<std::pair<size_t, std::vector<int32_t>>> rows;  // (prompt index, its ids), in report order
  for (size_t i = 0; i < prompts.size(); ++i)
    for (int64_t k = 0; k < samples; ++k) rows.emplace_back(i, ids[i]);
  for (size_t r0 = 0; r0 < rows.size(); r0 += kBatch) {
    const size_t r1 = std::min(rows.size(), r0 + kBatch);
    std::vector<std::vector<int32_t>> batch;
    gen.seeds.clear();
    for (size_t r = r0; r < r1; ++r) {
      batch.push_back(rows[r].second);
      gen.seeds.push_back(seeds.next_u64());
    }
    const std::vector<infer::GeneratedRow> out = infer::generate_batch(*m.model, batch, gen);
    for (size_t r = r0; r < r1; ++r) {
      const size_t i = rows[r].first;
      const infer::GeneratedRow& g = out[r - r0];
      const std::string response = m.tokenizer->decode(g.tokens);
      const double reward = prompts[i].verifier->reward(prompts[i].example, response);
      reward_sum += reward;
      passed += reward >= 1.0;
      ++responses;
      new_tokens += static_cast<int64_t>(g.tokens.size());
      hit_context += g.reason == infer::StopReason::Context;
      hit_max += g.reason == infer::StopReason::MaxTokens;
      auto& pv = per_verifier[prompts[i].verifier->name()];
      pv.first += reward >= 1.0;
      ++pv.second;
      if (static_cast<int64_t>(examples.size()) < n_examples)
        examples.push_back({{"line", prompts[i].line}, {"prompt", prompts[i].prompt}, {"response", response}, {"reward", reward}});
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  json report;
  report["model"] = m.dir;
  report["adapter"] = m.adapter_dir;
  report["prompts_file"] = prompts_path;
  report["prompts"] = static_cast<int64_t>(prompts.size());
  report["samples"] = samples;
  report["responses"] = responses;
  report["pass_rate"] = static_cast<double>(passed) / static_cast<double>(responses);
  report["mean_reward"] = reward_sum / static_cast<double>(responses);
  for (const auto& [name, pv] : per_verifier)
    report["per_verifier"][name] = {{"responses", pv.second}, {"pass_rate", static_cast<double>(pv.first) / pv.second}};
  report["temperature"] = sampling.temperature;
  report["top_k"] = sampling.top_k;
  report["top_p"] = sampling.top_p;
  report["max_new_tokens"] = max_new;
  report["seed"] = seed;
  report["mean_response_tokens"] = static_cast<double>(new_tokens) / static_cast<double>(responses);
  report["stopped_at_max_tokens"] = hit_max;
  report["stopped_at_context"] = hit_context;
  report["seconds"] = seconds;
  report["examples"] = std::move(examples);
  // A response cut at --max-new-tokens may end inside a UTF-8 character: written as U+FFFD.
  write_file_atomic(out_path, report.dump(2, ' ', false, json::error_handler_t::replace) + "\n");

  std::printf("verify %s%s%s on %s: pass rate %.1f%% (%lld / %lld responses, %lld prompts x %lld), mean reward %.4f, %.1f s\n",
              m.dir.c_str(), m.adapter_dir.empty() ? "" : " + adapter ", m.adapter_dir.c_str(), prompts_path.c_str(),
              100.0 * report["pass_rate"].get<double>(), static_cast<long long>(passed), static_cast<long long>(responses),
              static_cast<long long>(prompts.size()), static_cast<long long>(samples), report["mean_reward"].get<double>(),
              seconds);
  // Cut responses are graded as they are; say how many, since a longer budget could change them.
  if (hit_context > 0)
    std::fprintf(stderr, "warning: %lld of %lld responses reached the model's context (%lld tokens) and were cut\n",
                 static_cast<long long>(hit_context), static_cast<long long>(responses), static_cast<long long>(n_ctx));
  return 0;
}

CommandRegistrar reg("verify", "pass rate of a model (or model + adapter) on prompts graded by a rule-based verifier", run_verify);

}  // namespace
}  // namespace sllm::cli
