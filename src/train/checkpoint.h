// The run directory's checkpoints and how a run continues from them (see train_loop.h for
// the files of a run directory). Every file is written atomically, and `latest` only ever
// names a complete checkpoint, so a crash at any point leaves a run that resumes.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "nn/transformer.h"
#include "optim/adamw.h"
#include "tokenizer/tokenizer.h"

namespace sllm::train {

// Where a resumed run continues: the checkpoint RUN/latest names, and what its
// trainer_state.json says.
struct ResumePoint {
  std::filesystem::path dir;  // RUN/ckpt-<step>
  std::string state_path;     // dir/trainer_state.json, named in errors
  int64_t step = 0;           // the last step the checkpoint holds (>= 1)
  nlohmann::json options;     // the options that changed the math; they win over the command line
  nlohmann::json data_state;  // the objective's data position ("loader")
};

// For a resumed run (resume = true): the checkpoint RUN/latest names, checked to hold a step
// before total_steps; it notes on stderr when --steps or the thread count changed. For a new
// run: nullopt, after checking that RUN holds no run yet. Raises sllm::Error with a hint.
std::optional<ResumePoint> find_resume_point(const std::string& run_dir, bool resume, int64_t total_steps);

// The error of a damaged trainer_state.json: "<state_path>: <what>" and how to fall back to
// an earlier checkpoint.
[[noreturn]] void fail_damaged_state(const ResumePoint& point, const std::string& what);

std::string checkpoint_name(int64_t step);  // "ckpt-<step>"

// Writes RUN/ckpt-<step>/ atomically (config.json, model.safetensors, tokenizer.json when
// `tok` is set, optimizer.safetensors, trainer_state.json), then points RUN/latest at it.
// The optimizer file holds the moments of the optimizer's parameters only.
// write_model, when set, writes the model's files into the checkpoint's (temporary) directory
// instead of config.json + model.safetensors (LoRA writes only its adapter).
void save_checkpoint(const std::filesystem::path& run, int64_t step, const nn::Transformer& model, const optim::AdamW& opt,
                     const tokenizer::Tokenizer* tok, const nlohmann::json& trainer_state,
                     const std::function<void(const std::string& dir)>& write_model = {});
// The same with optimizer.safetensors' tensors ("<name>.exp_avg", ...) added to its writer by
// add_optimizer_state, beside the step count: a data-parallel run's ZeRO-1 shards are
// gathered from the ranks, one tensor at a time, while the file is written
// (train/data_parallel.h).
void save_checkpoint(const std::filesystem::path& run, int64_t step, const nn::Transformer& model,
                     const std::function<void(io::SafetensorsWriter& file)>& add_optimizer_state,
                     int64_t optimizer_steps, const tokenizer::Tokenizer* tok, const nlohmann::json& trainer_state,
                     const std::function<void(const std::string& dir)>& write_model = {});

// Loads ckpt/optimizer.safetensors into `opt` (moments and step count).
void load_optimizer_state(const std::filesystem::path& ckpt, optim::AdamW& opt);

// Removes the temp names "<name>.tmp.<pid>.<n>" (atomic_file.h) a process that died
// mid-write left in the run directory. They are never complete and never read, but a
// restarted process may get the same pid (containers reuse low pids) and then draw exactly
// those names for its own temp files, which would make its writes fail.
void remove_crash_litter(const std::filesystem::path& run);

// Keeps the lines of metrics.jsonl up to `step`: a crash after the last checkpoint may have
// logged steps that the resumed run will redo.
void truncate_metrics(const std::filesystem::path& path, int64_t step);

}  // namespace sllm::train
