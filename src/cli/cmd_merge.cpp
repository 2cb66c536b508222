// `sllm merge`: fold a LoRA adapter into its base model and write a plain model directory
// (config.json + model.safetensors + tokenizer.json) that every command, and `transformers`,
// loads without the adapter (src/infer/merge_model.h).
#include <omp.h>

#include <cstdio>

#include "cli/command.h"
#include "core/args.h"
#include "core/error.h"
#include "infer/merge_model.h"

namespace sllm::cli {
namespace {

int run_merge(const std::vector<std::string>& argv) {
  Args args("merge", argv,
            {{"--model", FlagSpec::Value,
              "base model directory or run directory [the adapter's base_model_name_or_path, when that directory exists]"},
             {"--adapter", FlagSpec::Value, "LoRA adapter directory (PEFT files) or `sllm sft --method lora` run (required)"},
             {"--out", FlagSpec::Value, "new directory for the merged model; must not exist or be empty (required)"},
             {"--threads", FlagSpec::Value, "CPU threads [all cores]"}});
  infer::MergeOptions o;
  o.model = args.get("--model", "");
  o.adapter = args.required("--adapter");
  o.out = args.required("--out");
  apply_threads_flag(args);

  const infer::InferenceModel m = infer::merge_to_directory(o);
  const lora::LoraConfig& cfg = m.lora->config(m.lora->active());
  std::fprintf(stderr, "merged %s (r %lld, %zu Linears) into %s -> %s\n", m.adapter_dir.c_str(), static_cast<long long>(cfg.r),
               m.lora->layers(m.lora->active()).size(), m.dir.c_str(), o.out.c_str());
  return 0;
}

CommandRegistrar reg("merge", "fold a LoRA adapter into its base model: a plain model directory (W + s·B·A)", run_merge);

}  // namespace
}  // namespace sllm::cli
