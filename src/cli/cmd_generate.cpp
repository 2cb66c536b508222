// `sllm generate`: sample a continuation of a prompt from a model directory or a training
// run, optionally with a LoRA adapter, streaming the text as it is produced
// (src/infer/text_session.h).
#include <omp.h>

#include <chrono>
#include <cstdio>

#include "cli/command.h"
#include "core/args.h"
#include "core/error.h"
#include "infer/text_session.h"
#include "ops/device.h"

namespace sllm::cli {
namespace {

int run_generate(const std::vector<std::string>& argv) {
  Args args("generate", argv,
            {{"--model", FlagSpec::Value,
              "model directory (config.json, model.safetensors, tokenizer.json) or run directory (required unless "
              "--adapter names an existing base directory)"},
             {"--adapter", FlagSpec::Value,
              "LoRA adapter directory (PEFT files) or `sllm sft --method lora` run, applied on the model; without "
              "--model its base_model_name_or_path is the model"},
             {"--prompt", FlagSpec::Value, "text to continue; special tokens such as <|endoftext|> are matched (required)"},
             {"--max-new-tokens", FlagSpec::Value, "tokens to generate at most [200]"},
             {"--temperature", FlagSpec::Value, "softmax temperature, 0 = greedy [0.8]"},
             {"--top-k", FlagSpec::Value, "sample among the K most likely tokens, 0 = all [0]"},
             {"--top-p", FlagSpec::Value, "nucleus sampling: smallest set holding this probability, in (0, 1] [1.0]"},
             {"--seed", FlagSpec::Value, "seed of the sampler [0]"},
             {"--threads", FlagSpec::Value, "CPU threads [all cores]"},
             {"--device", FlagSpec::Value, "cpu or cuda: where the model runs (logits come back to the host) [cpu]"}});
  infer::InferenceSpec spec;
  spec.model = args.has("--adapter") ? args.get("--model", "") : args.required("--model");
  spec.adapter = args.get("--adapter", "");
  spec.with_tokenizer = true;
  const std::string prompt = args.required("--prompt");
  const int64_t max_new = args.get_int("--max-new-tokens", 200);
  SLLM_CHECK(max_new >= 0, str("--max-new-tokens must be >= 0, got ", max_new), args.usage());
  infer::SamplingConfig sampling;
  sampling.temperature = static_cast<float>(args.get_double("--temperature", 0.8));
  sampling.top_k = args.get_int("--top-k", 0);
  sampling.top_p = static_cast<float>(args.get_double("--top-p", 1.0));
  const int64_t seed = args.get_int("--seed", 0);
  SLLM_CHECK(seed >= 0, str("--seed must be >= 0, got ", seed), args.usage());
  sampling.seed = static_cast<uint64_t>(seed);
  infer::validate(sampling);  // flag errors before the model loads
  const int64_t threads = args.get_int("--threads", 0);
  SLLM_CHECK(threads >= 0, str("--threads must be >= 0, got ", threads), args.usage());
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));

  spec.device = ops::parse_device(args.get("--device", "cpu"));
  ops::init_device(spec.device);  // a missing GPU is reported before the model loads
  infer::InferenceModel m = infer::load_inference_model(spec);
  const std::vector<int32_t> prompt_ids = infer::encode_prompt(m, prompt);
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  std::fflush(stdout);
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  auto t_first = t0;
  bool first = true;
  const infer::TextGeneration g = infer::generate_text(m, prompt_ids, max_new, sampling, [&](const std::string& text) {
    if (first) t_first = clock::now(), first = false;
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  });
  const auto t1 = clock::now();
  std::fputc('\n', stdout);
  std::fflush(stdout);

  const double total_s = std::chrono::duration<double>(t1 - t0).count();
  const double prefill_s = std::chrono::duration<double>(t_first - t0).count();
  const double n = static_cast<double>(g.new_ids.size());
  // Decode rate excludes the prefill (the first token costs a forward over the whole prompt).
  const double decode_rate = n > 1 && total_s > prefill_s ? (n - 1) / (total_s - prefill_s) : 0.0;
  std::fprintf(stderr, "[%zu prompt tokens, %zu new tokens (stop: %s), %.1f tokens/s overall, %.1f tokens/s decode, prefill %.1f ms]\n",
               g.prompt_ids.size(), g.new_ids.size(), infer::stop_reason_name(g.reason), total_s > 0 ? n / total_s : 0.0,
               decode_rate, prefill_s * 1e3);
  return 0;
}

CommandRegistrar reg("generate", "sample text from a model or a training run (KV cache, temperature / top-k / top-p)", run_generate);

}  // namespace
}  // namespace sllm::cli
