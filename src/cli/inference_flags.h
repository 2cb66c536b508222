// The flags that the inference commands share (generate, chat, score, eval), declared and
// read in one place: which model (and LoRA adapter) on which device with how many threads,
// and how to sample. Each command lists them beside its own flags:
//   Args args("generate", argv, with_flags({{"--prompt", ...}}, model_flags(), sampling_flags()));
#pragma once
#include <omp.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/args.h"
#include "core/error.h"
#include "infer/sampling.h"
#include "infer/text_session.h"
#include "ops/device.h"

namespace sllm::cli {

// `own`, then each group in turn (--help lists them in this order).
inline std::vector<FlagSpec> with_flags(std::vector<FlagSpec> own, const std::vector<FlagSpec>& a,
                                        const std::vector<FlagSpec>& b = {}) {
  own.insert(own.end(), a.begin(), a.end());
  own.insert(own.end(), b.begin(), b.end());
  return own;
}

// --model, --adapter, --threads, --device.
inline std::vector<FlagSpec> model_flags() {
  return {{"--model", FlagSpec::Value,
           "model directory (config.json, model.safetensors, tokenizer.json), .gguf file or run directory (required unless "
           "--adapter names an existing base directory)"},
          {"--adapter", FlagSpec::Value,
           "LoRA adapter directory (PEFT files) or `sllm sft --method lora` run, applied on the model; without "
           "--model its base_model_name_or_path is the model"},
          {"--threads", FlagSpec::Value, "CPU threads [all cores]"},
          {"--device", FlagSpec::Value, "cpu or cuda: where the model runs (logits come back to the host) [cpu]"}};
}

// The model to load, with the thread count applied and the device initialized (a missing
// GPU is reported before any file is read).
inline infer::InferenceSpec read_model_flags(const Args& args, bool with_tokenizer) {
  infer::InferenceSpec spec;
  spec.model = args.has("--adapter") ? args.get("--model", "") : args.required("--model");
  spec.adapter = args.get("--adapter", "");
  spec.with_tokenizer = with_tokenizer;
  const int64_t threads = args.get_int("--threads", 0);
  SLLM_CHECK(threads >= 0, str("--threads must be >= 0, got ", threads), args.usage());
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));
  spec.device = ops::parse_device(args.get("--device", "cpu"));
  ops::init_device(spec.device);
  return spec;
}

// --max-new-tokens, --temperature, --top-k, --top-p, --seed.
inline std::vector<FlagSpec> sampling_flags(const std::string& seed_help = "seed of the sampler [0]") {
  return {{"--max-new-tokens", FlagSpec::Value, "tokens to generate at most [200]"},
          {"--temperature", FlagSpec::Value, "softmax temperature, 0 = greedy [0.8]"},
          {"--top-k", FlagSpec::Value, "sample among the K most likely tokens, 0 = all [0]"},
          {"--top-p", FlagSpec::Value, "nucleus sampling: smallest set holding this probability, in (0, 1] [1.0]"},
          {"--seed", FlagSpec::Value, seed_help}};
}

struct SamplingFlags {
  infer::SamplingConfig sampling;
  int64_t max_new_tokens = 200;
};

// Checked before the model loads (infer::validate).
inline SamplingFlags read_sampling_flags(const Args& args) {
  SamplingFlags f;
  f.max_new_tokens = args.get_int("--max-new-tokens", 200);
  SLLM_CHECK(f.max_new_tokens >= 0, str("--max-new-tokens must be >= 0, got ", f.max_new_tokens), args.usage());
  f.sampling.temperature = static_cast<float>(args.get_double("--temperature", 0.8));
  f.sampling.top_k = args.get_int("--top-k", 0);
  f.sampling.top_p = static_cast<float>(args.get_double("--top-p", 1.0));
  const int64_t seed = args.get_int("--seed", 0);
  SLLM_CHECK(seed >= 0, str("--seed must be >= 0, got ", seed), args.usage());
  f.sampling.seed = static_cast<uint64_t>(seed);
  infer::validate(f.sampling);
  return f;
}

}  // namespace sllm::cli
