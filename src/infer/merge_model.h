// `sllm merge`: fold a LoRA adapter into its base model and write a plain model directory,
// W' = W + s·B·A on every adapted Linear (Hu et al. 2021, section 4.2: "no additional
// inference latency"). The output is what `sllm pretrain` writes and `transformers` loads:
// config.json + model.safetensors (+ tokenizer.json), with no trace of the adapter.
#pragma once
#include <string>

#include "infer/text_session.h"

namespace sllm::infer {

struct MergeOptions {
  std::string model;    // base model or run directory; "" = the adapter's base_model_name_or_path
  std::string adapter;  // adapter directory or LoRA run directory
  std::string out;      // the merged model directory to create
};

// The merge, all in memory: loads the base and the adapter (load_inference_model), merges.
// m.lora stays attached and merged (m.lora->merged() is true), so m.model computes what the
// adapter model computed.
InferenceModel merge_in_memory(const MergeOptions& o);

// merge_in_memory, then writes o.out atomically: the files go into a temporary directory
// beside it, renamed into place only when complete, so a failure leaves no o.out behind.
// tokenizer.json is copied from the base model directory, else from the adapter's.
// sllm::Error with a hint, before anything is loaded, when o.out exists and is not an
// empty directory. Returns the loaded (merged) model.
InferenceModel merge_to_directory(const MergeOptions& o);

}  // namespace sllm::infer
