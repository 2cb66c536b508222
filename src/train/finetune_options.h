// The options that the fine-tuning runs (`sllm sft`, `sllm dpo`, `sllm reward train`) handle
// alike around the training loop, so each run does not keep its own copy: the data and split
// options as a checkpoint saves them and read back, the validation split they ask for, the
// run's step count, and the strict check of a resumed run's saved options. The commands'
// options share these member names (SftRunOptions, DpoRunOptions, RewardRunOptions).
#pragma once
#include <cstdint>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/index_order.h"
#include "train/checkpoint.h"
#include "train/lora_run.h"
#include "train/sft_run.h"

namespace sllm::train {

// The options that decide the data, its split and its order, into the run's saved options
// (trainer_state.json "options"; the loop saves its own, grad_accum among them, beside).
template <class CommandOptions>
void save_data_options(const CommandOptions& o, nlohmann::json& j) {
  j["batch"] = o.batch;
  j["seq"] = o.seq;
  j["seed"] = o.seed;
  j["template"] = o.chat_template;
  j["truncate"] = o.truncate;
  j["val_fraction"] = o.val_fraction;
  j["val_count"] = o.val_count;
}

// Read back, with the loop's grad_accum (a resumed run must batch alike). Throws
// nlohmann::json's exceptions on a missing or mistyped key.
template <class CommandOptions>
void apply_saved_data_options(const nlohmann::json& saved, CommandOptions& o) {
  o.batch = saved.at("batch");
  o.seq = saved.at("seq");
  o.seed = saved.at("seed");
  o.chat_template = saved.at("template");
  o.truncate = saved.at("truncate");
  o.val_fraction = saved.at("val_fraction");
  o.val_count = saved.at("val_count");
  o.grad_accum = saved.at("grad_accum");
}

// --val-count wins when given, else --val-fraction.
template <class CommandOptions>
data::SftValidation validation_of(const CommandOptions& o) {
  data::SftValidation v;
  if (o.val_count > 0)
    v.count = o.val_count;
  else
    v.fraction = o.val_fraction;
  return v;
}

// The run's optimizer steps: --steps; else --epochs' worth of `train_items`; else a resumed
// run's saved count (so --resume alone finishes the run it continues); else one epoch.
// A step takes batch · grad_accum · ranks items (ranks > 1: a data-parallel run).
template <class CommandOptions>
int64_t run_steps(const CommandOptions& o, int64_t train_items, const std::optional<SavedRun>& saved, int ranks = 1) {
  if (o.steps != 0) return o.steps;
  if (o.epochs > 0) return sft_steps_for_epochs(o.epochs, train_items, o.batch * ranks, o.grad_accum);
  if (saved) return saved->total_steps;
  return sft_steps_for_epochs(1.0, train_items, o.batch * ranks, o.grad_accum);
}

// The strict check of what the lenient peek (peek_saved_run) read, now that find_resume_point
// has chosen the checkpoint: its options must parse (else the state is damaged) and must be
// the ones the run started with (else the run changed under us). `data_math_options` is the
// command's own record of the options that change the math.
template <class CommandOptions>
void check_resumed_options(const ResumePoint& resume, const CommandOptions& o,
                           void (*apply_saved)(const nlohmann::json&, CommandOptions&),
                           nlohmann::json (*data_math_options)(const CommandOptions&)) {
  CommandOptions check = o;
  try {
    apply_saved(resume.options, check);
  } catch (const nlohmann::json::exception& e) {
    fail_damaged_state(resume, str("malformed trainer state: ", e.what()));
  }
  SLLM_CHECK(data_math_options(check) == data_math_options(o) && check.grad_accum == o.grad_accum,
             str(resume.state_path, ": the checkpoint's options changed while the run started"),
             "run the command again");
}

}  // namespace sllm::train
