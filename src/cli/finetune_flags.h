// The flags that the fine-tuning commands (`sllm sft`, `sllm dpo`, `sllm reward train`) share
// beyond the loop's (loop_flags.h), read in one place into any of their options
// (train::SftRunOptions, rl::DpoRunOptions, rl::RewardRunOptions: the same member names).
// Each command declares the flags itself (the help texts show its own defaults and words),
// and reads and checks its own --method before read_lora_flags.
#pragma once
#include <string>

#include "core/args.h"
#include "core/error.h"

namespace sllm::cli {

// --lora-r, --lora-alpha, --lora-dropout, --lora-targets, --rslora. With --method full any of
// them is an error rather than silently unused; `lora_methods` says which methods take them
// ("lora or qlora"). `command` starts the messages ("sllm sft").
template <class CommandOptions>
void read_lora_flags(const Args& args, CommandOptions& o, const std::string& command, const char* lora_methods) {
  for (const char* flag : {"--lora-r", "--lora-alpha", "--lora-dropout", "--lora-targets", "--rslora"})
    SLLM_CHECK(o.method != "full" || !args.has(flag), str(command, ": ", flag, " needs --method ", lora_methods),
               "add --method lora, or drop the LoRA flags");
  o.lora_r = args.get_int("--lora-r", o.lora_r);
  o.lora_alpha = args.get_double("--lora-alpha", o.lora_alpha);
  o.lora_dropout = args.get_double("--lora-dropout", o.lora_dropout);
  o.lora_targets = args.get("--lora-targets", o.lora_targets);
  o.rslora = args.has("--rslora");
}

// --model (as given: sft and dpo resolve it further), --data, --out, --template, --truncate,
// the validation split (--val-fraction or --val-count) and the run's length (--epochs or
// --steps; both stay 0 when not given, so the run picks one epoch, or a resumed run its saved
// steps). `items` names what an epoch passes over ("examples", "pairs").
template <class CommandOptions>
void read_data_flags(const Args& args, CommandOptions& o, const std::string& command, const char* items) {
  SLLM_CHECK(!(args.has("--epochs") && args.has("--steps")), str(command, ": --epochs and --steps both given"),
             str("pass one of them: --steps N (optimizer steps) or --epochs E (passes over the training ", items, ")"));
  SLLM_CHECK(!(args.has("--val-fraction") && args.has("--val-count")),
             str(command, ": --val-fraction and --val-count both given"), "pass one of them");
  o.model_dir = args.required("--model");
  o.data_path = args.required("--data");
  o.out_dir = args.required("--out");
  o.chat_template = args.get("--template", o.chat_template);
  o.truncate = args.has("--truncate");
  o.val_fraction = args.get_double("--val-fraction", o.val_fraction);
  o.val_count = args.get_int("--val-count", o.val_count);
  o.epochs = args.get_double("--epochs", 0);
  o.steps = args.get_int("--steps", 0);
  SLLM_CHECK(!args.has("--epochs") || o.epochs > 0, str(command, ": --epochs must be > 0, got ", o.epochs),
             "pass a positive number of epochs");
  SLLM_CHECK(!args.has("--steps") || o.steps > 0, str(command, ": --steps must be > 0, got ", o.steps),
             "pass a positive integer");
}

}  // namespace sllm::cli
