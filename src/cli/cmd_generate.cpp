// `sllm generate`: sample a continuation of a prompt from a model directory or a training
// run, optionally with a LoRA adapter, streaming the text as it is produced
// (src/infer/text_session.h).

#include <chrono>
#include <cstdio>

#include "cli/command.h"
#include "cli/inference_flags.h"
#include "core/args.h"
#include "core/error.h"
#include "infer/text_session.h"

namespace sllm::cli {
namespace {

int run_generate(const std::vector<std::string>& argv) {
  Args args("generate", argv,
            with_flags({{"--prompt", FlagSpec::Value,
                         "text to continue; special tokens such as <|endoftext|> are matched (required)"}},
                       model_flags(), sampling_flags()));
  const std::string prompt = args.required("--prompt");
  const SamplingFlags flags = read_sampling_flags(args);
  const infer::SamplingConfig& sampling = flags.sampling;
  const int64_t max_new = flags.max_new_tokens;
  const infer::InferenceSpec spec = read_model_flags(args, /*with_tokenizer=*/true);
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
