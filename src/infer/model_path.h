// Where the weights are: `--model` names a model directory, a GGUF file, or a run directory of
// `sllm pretrain` / `sllm sft` (src/train/trainer.h):
//   model dir:   config.json + model.safetensors (+ tokenizer.json)
//   GGUF file:   FILE.gguf, weights and tokenizer in one (io/gguf_model.h, tokenizer/gguf_tokenizer.h)
//   run dir:     latest (names the newest checkpoint, e.g. "ckpt-200\n") + ckpt-<step>/ dirs
// `--adapter` names a PEFT adapter directory (adapter_config.json + adapter_model.safetensors,
// src/lora/peft_files.h) or the run directory of `sllm sft --method lora`, whose checkpoints
// are adapter directories.
#pragma once
#include <string>

namespace sllm::infer {

// The model directory for `model_or_run`: itself when it holds config.json or is a .gguf file
// (returned as is: io::load_model and Tokenizer::load read it), else RUN/<the name in
// RUN/latest>. sllm::Error with a hint when it is none of these.
std::string resolve_model_dir(const std::string& model_or_run);

// The adapter directory for `adapter_or_run`: itself when it holds adapter_config.json, else
// RUN/<the name in RUN/latest>. sllm::Error with a hint when it is neither (a full model
// checkpoint is pointed to --model).
std::string resolve_adapter_dir(const std::string& adapter_or_run);

// adapter_config.json's base_model_name_or_path when it names an existing directory or .gguf
// file (what `sllm sft --method lora` records), else "" (a Hub id, or a path that moved).
std::string adapter_base_model_dir(const std::string& adapter_dir);

}  // namespace sllm::infer
