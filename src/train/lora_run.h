// What the fine-tuning commands' runs (`sllm sft`, `sllm dpo`, `sllm reward train`) share
// around the training loop, so each command does not keep its own copy:
//   - the LoRA adapter's config from the command's --lora-* flags and --seed;
//   - the --lora-* options as a run saves them in its checkpoint, and read back;
//   - a resumed LoRA run's A and B, read from its checkpoint into the adapter just added;
//   - a lenient peek at a resumed run's saved options, before its data is loaded.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "lora/lora_config.h"
#include "lora/lora_model.h"

namespace sllm::train {

// The adapter's config from a command's options (SftRunOptions, DpoRunOptions,
// RewardRunOptions: the same member names). The seed is the run's, so A's init and the dropout masks follow --seed.
template <class CommandOptions>
lora::LoraConfig lora_config_from(const CommandOptions& o) {
  lora::LoraConfig cfg;
  cfg.r = o.lora_r;
  cfg.lora_alpha = static_cast<float>(o.lora_alpha);
  cfg.lora_dropout = static_cast<float>(o.lora_dropout);
  cfg.use_rslora = o.rslora;
  cfg.target_modules = lora::parse_targets(o.lora_targets);
  cfg.seed = o.seed;
  return cfg;
}

// The --lora-* options that change the math, saved with the run's own options
// (trainer_state.json "options") so a resumed run rebuilds the same adapter, and read back
// from them. The keys are the flags' names with '_'; an older checkpoint stays readable
// only while they do not change.
template <class CommandOptions>
void save_lora_options(const CommandOptions& o, nlohmann::json& j) {
  j["lora_r"] = o.lora_r;
  j["lora_alpha"] = o.lora_alpha;
  j["lora_dropout"] = o.lora_dropout;
  j["lora_targets"] = o.lora_targets;
  j["rslora"] = o.rslora;
}

// Throws nlohmann::json's out_of_range or type_error where a key is missing or mistyped;
// the callers turn that into their damaged-checkpoint error.
template <class CommandOptions>
void apply_saved_lora_options(const nlohmann::json& saved, CommandOptions& o) {
  o.lora_r = saved.at("lora_r");
  o.lora_alpha = saved.at("lora_alpha");
  o.lora_dropout = saved.at("lora_dropout");
  o.lora_targets = saved.at("lora_targets");
  o.rslora = saved.at("rslora");
}

// A resumed LoRA run: the checkpoint's A and B (ckpt/adapter_model.safetensors) into the
// adapter just added with the run's config. lora::load_adapter is not used because it takes
// the config from adapter_config.json, which has no seed: the dropout seeds must be the
// run's. Names, count, dtype (F32) and shapes must match, else sllm::Error with a hint.
void load_checkpoint_adapter(lora::LoraModel& lora, const std::filesystem::path& ckpt);

// What a run directory's latest checkpoint saved: the options (trainer_state.json "options")
// and the run's total steps.
struct SavedRun {
  nlohmann::json options;
  int64_t total_steps = 0;
};

// Before the data is loaded (the split and the step count depend on the saved options), a
// resumed run needs them. The peek is lenient: no latest, an unreadable state or options
// that `parse` rejects (it throws) give nullopt, and find_resume_point then checks the same
// files strictly and reports what is wrong.
std::optional<SavedRun> peek_saved_run(const std::string& run_dir,
                                       const std::function<void(const nlohmann::json&)>& parse);

// The same, parsing the options into a fresh CommandOptions with the command's apply_saved.
template <class CommandOptions>
std::optional<SavedRun> peek_saved_run(const std::string& run_dir,
                                       void (*apply_saved)(const nlohmann::json&, CommandOptions&)) {
  return peek_saved_run(run_dir, [apply_saved](const nlohmann::json& options) {
    CommandOptions probe;
    apply_saved(options, probe);
  });
}

}  // namespace sllm::train
