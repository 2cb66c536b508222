// Where the weights are: `--model` names either a model directory or a run directory of
// `sllm pretrain` (src/train/trainer.h):
//   model dir: config.json + model.safetensors (+ tokenizer.json)
//   run dir:   latest (names the newest checkpoint, e.g. "ckpt-200\n") + ckpt-<step>/ model dirs
#pragma once
#include <string>

namespace sllm::infer {

// The model directory for `model_or_run`: itself when it holds config.json, else
// RUN/<the name in RUN/latest>. sllm::Error with a hint when it is neither.
std::string resolve_model_dir(const std::string& model_or_run);

}  // namespace sllm::infer
