// `sllm memory`: the predicted memory of a training run, printed without running it
// (train/memory_estimate.h): weights, gradients, optimizer state, activations and the peak
// the run's metrics.jsonl will log as peak_mem_bytes. The same table a run prints at its start.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "core/args.h"
#include "core/error.h"
#include "infer/model_path.h"
#include "io/gguf_model.h"
#include "lora/lora_config.h"
#include "nn/config.h"
#include "ops/device.h"
#include "ops/memory_usage.h"
#include "train/memory_estimate.h"

namespace sllm::cli {
namespace {

// A preset, a config.json, a model directory, a .gguf file, or a run directory (its latest
// checkpoint).
nn::ModelConfig config_of(const std::string& spec) {
  namespace fs = std::filesystem;
  if (io::is_gguf_file(spec)) return io::gguf_llama_config(io::GgufFile::open(spec));
  if (nn::is_preset(spec) || fs::is_regular_file(spec)) return nn::load_config(spec);
  if (fs::is_directory(spec)) return nn::load_config(infer::resolve_model_dir(spec));
  return nn::load_config(spec);  // the error names the presets and the accepted paths
}

int run_memory(const std::vector<std::string>& argv) {
  Args args("memory", argv,
            {{"--config", FlagSpec::Value, "preset (tiny, small, small-llama, gpt2-124m, smollm2-135m), config.json, model dir, .gguf file or run dir (required)"},
             {"--method", FlagSpec::Value, "full, lora or qlora (LoRA over an NF4 + double-quantized base) [full]"},
             {"--lora-r", FlagSpec::Value, "LoRA rank [16]"},
             {"--lora-alpha", FlagSpec::Value, "LoRA alpha [32]"},
             {"--lora-dropout", FlagSpec::Value, "dropout on the adapter's input [0.05]"},
             {"--lora-targets", FlagSpec::Value, "comma list of module names or all-linear [all-linear]"},
             {"--rslora", FlagSpec::Switch, "scale by alpha / sqrt(r)"},
             {"--batch", FlagSpec::Value, "sequences per micro-batch [8]"},
             {"--seq", FlagSpec::Value, "tokens per sequence [256, or the context if shorter]"},
             {"--grad-checkpoint", FlagSpec::Switch, "recompute each block in backward (sft/bench train --grad-checkpoint)"},
             {"--threads", FlagSpec::Value, "CPU threads of the run, for the GEMM's per-thread buffers [all cores]"},
             {"--device", FlagSpec::Value, "cpu or cuda [cpu]"},
             {"--precision", FlagSpec::Value, "auto, fp32, tf32 or bf16 (tf32, bf16: CUDA only) [auto]"},
             {"--json", FlagSpec::Switch, "print one JSON object instead of the table"}});
  // Measured first, before anything is loaded: on the CPU the run's peak RSS includes the
  // runtime itself (binary, libraries), which this process shares with a training run.
  const int64_t baseline = ops::current_memory_bytes(Device::CPU);
  train::MemoryRequest r;
  r.method = train::parse_train_method(args.get("--method", "full"));
  for (const char* flag : {"--lora-r", "--lora-alpha", "--lora-dropout", "--lora-targets", "--rslora"})
    SLLM_CHECK(r.method != train::TrainMethod::Full || !args.has(flag), str("sllm memory: ", flag, " needs --method lora or qlora"),
               "add --method lora, or drop the LoRA flags");
  r.config = config_of(args.required("--config"));
  r.lora_r = args.get_int("--lora-r", r.lora_r);
  r.lora_alpha = args.get_double("--lora-alpha", r.lora_alpha);
  r.lora_dropout = args.get_double("--lora-dropout", r.lora_dropout);
  r.rslora = args.has("--rslora");
  r.lora_targets = lora::parse_targets(args.get("--lora-targets", "all-linear"));
  r.batch = args.get_int("--batch", r.batch);
  r.seq = args.get_int("--seq", std::min<int64_t>(256, r.config.n_ctx));  // pretrain's default, within the context
  r.grad_checkpoint = args.has("--grad-checkpoint");
  r.threads = static_cast<int>(args.get_int("--threads", 0));
  SLLM_CHECK(r.threads >= 0, str("sllm memory: --threads ", r.threads, " is negative"), "pass the run's --threads, or leave it out");
  r.device = ops::parse_device(args.get("--device", "cpu"));
  r.precision = ops::parse_precision(args.get("--precision", "auto"), r.device);
  if (r.device == Device::CPU) r.baseline_bytes = baseline;
  const train::MemoryEstimate e = train::estimate_memory(r);
  if (args.has("--json")) {
    std::printf("%s\n", train::memory_json(r, e).dump().c_str());
  } else {
    std::fputs(train::format_memory_table(r, e).c_str(), stdout);
    if (r.device == Device::CPU)
      std::printf("(the baseline is this sllm process's own RSS at start: a training run is the same binary)\n");
  }
  return 0;
}

CommandRegistrar reg("memory", "predict a training run's memory: weights, gradients, optimizer state, activations", run_memory);

}  // namespace
}  // namespace sllm::cli
