// `sllm bench generate`: generation throughput of batched sampling with the KV cache
// (infer::generate_batch, the rollout engine of RLHF) against the baseline it replaces, one
// prompt at a time with no cache (every new token re-runs the whole sequence), side by side
// in one process on the same model, prompts and sampler.
//
// Both sample at temperature 1 with no stop id, so every row produces exactly --new-tokens
// tokens (unless the context ends it: then the prompt and token counts are lowered to fit).
// Prompts are random ids of --prompt-tokens tokens from a fixed seed. One untimed warm-up,
// then --repeats timed runs; figures are medians. tokens/s counts new tokens only:
// batched = batch * new_tokens / run time; baseline = new_tokens / run time of one row (the
// baseline's cost does not depend on the batch: it handles rows one after another).
//   sllm bench generate --model runs/demo --batch 16 --new-tokens 64 --json
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "cli/command.h"
#include "cli/inference_flags.h"
#include "core/args.h"
#include "core/error.h"
#include "core/rng.h"
#include "infer/batch_generate.h"
#include "infer/sampling.h"
#include "infer/text_session.h"
#include "nn/config.h"
#include "ops/device.h"
#include "ops/ops.h"

namespace sllm::cli {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The baseline: one row, no cache, a full forward over the whole sequence per new token.
std::vector<int32_t> sample_without_cache(nn::Transformer& model, std::vector<int32_t> seq, int64_t new_tokens,
                                          const infer::SamplingConfig& sampling) {
  autograd::NoGradGuard no_grad;
  const int64_t V = model.config().vocab_size;
  Rng rng(sampling.seed);
  std::vector<int32_t> out;
  for (int64_t i = 0; i < new_tokens; ++i) {
    const int64_t T = static_cast<int64_t>(seq.size());
    Tensor logits = model.forward(Tensor::from_ints(seq, {1, T}));
    if (logits.dtype() != DType::F32) logits = ops::cast(logits, DType::F32);
    if (logits.device() != Device::CPU) logits = logits.to(Device::CPU);
    const int32_t next = infer::sample_next(logits.f32() + (T - 1) * V, V, sampling, rng);
    seq.push_back(next);
    out.push_back(next);
  }
  return out;
}

int run(const std::vector<std::string>& argv) {
  Args args("bench generate", argv,
            with_flags({{"--config", FlagSpec::Value, "a preset or config.json with random weights, instead of --model"},
                        {"--batch", FlagSpec::Value, "prompts generated at once [16]"},
                        {"--new-tokens", FlagSpec::Value, "tokens generated per prompt [64]"},
                        {"--prompt-tokens", FlagSpec::Value, "tokens per prompt (random ids) [16]"},
                        {"--repeats", FlagSpec::Value, "timed runs of each side; medians are reported [3]"},
                        {"--no-baseline", FlagSpec::Switch, "time only the batched side"},
                        {"--seed", FlagSpec::Value, "seed of the prompts and the sampler [0]"},
                        {"--precision", FlagSpec::Value,
                         "auto, fp32 or bf16 (CUDA: bf16 keys and values in the KV cache) [auto: bf16 on cuda, fp32 on cpu]"},
                        {"--json", FlagSpec::Switch, "print one JSON line"}},
                       {{"--model", FlagSpec::Value, "model directory, .gguf file or run directory"},
                        {"--threads", FlagSpec::Value, "CPU threads [all cores]"},
                        {"--device", FlagSpec::Value, "cpu or cuda [cpu]"}}));
  const int64_t B = args.get_int("--batch", 16), repeats = args.get_int("--repeats", 3);
  int64_t new_tokens = args.get_int("--new-tokens", 64), prompt_tokens = args.get_int("--prompt-tokens", 16);
  const int64_t seed = args.get_int("--seed", 0);
  SLLM_CHECK(B > 0 && new_tokens > 0 && prompt_tokens > 0 && repeats > 0 && seed >= 0,
             "sllm bench generate: --batch, --new-tokens, --prompt-tokens and --repeats must be > 0, --seed >= 0",
             args.usage());
  SLLM_CHECK(args.has("--model") != args.has("--config"), "sllm bench generate: give --model or --config (one of them)",
             "e.g. --model runs/demo, or --config small for random weights");
  const int64_t threads = args.get_int("--threads", 0);
  SLLM_CHECK(threads >= 0, str("--threads must be >= 0, got ", threads), args.usage());
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));
  const Device device = ops::parse_device(args.get("--device", "cpu"));
  ops::init_device(device);

  std::unique_ptr<nn::Transformer> model;
  std::string source;
  if (args.has("--model")) {
    infer::InferenceSpec spec;
    spec.model = args.required("--model");
    spec.device = device;
    infer::InferenceModel loaded = infer::load_inference_model(spec);
    source = loaded.dir;
    model = std::move(loaded.model);
  } else {
    source = args.required("--config");
    model = std::make_unique<nn::Transformer>(nn::load_config(source));
    model->init(0);
    model->to(device);
  }
  const ops::Precision precision = ops::parse_precision(args.get("--precision", "auto"), device);
  model->set_compute_dtype(ops::apply_precision(precision));
  const nn::ModelConfig& mc = model->config();
  prompt_tokens = std::min(prompt_tokens, mc.n_ctx - 1);
  new_tokens = std::min(new_tokens, mc.n_ctx - prompt_tokens);

  Rng rng(static_cast<uint64_t>(seed));
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(B));
  for (auto& p : prompts)
    for (int64_t i = 0; i < prompt_tokens; ++i) p.push_back(static_cast<int32_t>(rng.below(uint64_t(mc.vocab_size))));
  infer::BatchGenerateOptions options;
  options.max_new_tokens = new_tokens;
  options.sampling.temperature = 1.0f;
  options.sampling.seed = static_cast<uint64_t>(seed);

  std::vector<double> batched, baseline;
  for (int64_t r = 0; r <= repeats; ++r) {  // run 0 warms up
    ops::synchronize(device);
    auto t0 = std::chrono::steady_clock::now();
    const auto rows = infer::generate_batch(*model, prompts, options);
    ops::synchronize(device);
    const double s = seconds_since(t0);
    for (const auto& row : rows)
      SLLM_CHECK(static_cast<int64_t>(row.tokens.size()) == new_tokens, "bench generate: a row stopped early",
                 "this is a bug: no stop id is set");
    if (r > 0) batched.push_back(static_cast<double>(B * new_tokens) / s);
    if (args.has("--no-baseline")) continue;
    t0 = std::chrono::steady_clock::now();
    sample_without_cache(*model, prompts[0], new_tokens, options.sampling);
    ops::synchronize(device);
    if (r > 0) baseline.push_back(static_cast<double>(new_tokens) / seconds_since(t0));
  }
  const double tps = median(batched), base = baseline.empty() ? 0.0 : median(baseline);
  const std::string base_json = baseline.empty() ? "" : str(",\"baseline_tokens_per_s\":", base, ",\"speedup\":", tps / base);
  if (args.has("--json")) {
    std::printf("{\"bench\":\"generate\",\"model\":\"%s\",\"device\":\"%s\",\"precision\":\"%s\",\"threads\":%d,\"batch\":%lld,"
                "\"prompt_tokens\":%lld,\"new_tokens\":%lld,\"repeats\":%lld,\"tokens_per_s\":%.2f%s}\n",
                source.c_str(), device == Device::CUDA ? "cuda" : "cpu", ops::precision_name(precision), omp_get_max_threads(),
                static_cast<long long>(B), static_cast<long long>(prompt_tokens), static_cast<long long>(new_tokens),
                static_cast<long long>(repeats), tps, base_json.c_str());
  } else {
    std::printf("generate %s on %s: batch %lld x %lld new tokens (prompts of %lld)\n", source.c_str(),
                device == Device::CUDA ? "cuda" : "cpu", static_cast<long long>(B), static_cast<long long>(new_tokens),
                static_cast<long long>(prompt_tokens));
    std::printf("  batched, KV cache:          %10.1f tokens/s (median of %lld)\n", tps, static_cast<long long>(repeats));
    if (!baseline.empty())
      std::printf("  one row, no cache:          %10.1f tokens/s  -> %.1fx\n", base, tps / base);
  }
  return 0;
}

CommandRegistrar registrar("bench generate", "sampling throughput: batched with the KV cache vs one row without a cache", run);

}  // namespace
}  // namespace sllm::cli
