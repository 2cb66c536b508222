#include "rl/dpo_run.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "core/error.h"
#include "dist/comm.h"
#include "io/model_files.h"
#include "lora/lora_model.h"
#include "lora/peft_files.h"
#include "nn/transformer.h"
#include "ops/device.h"
#include "rl/dpo_objective.h"
#include "tokenizer/tokenizer.h"
#include "train/data_parallel.h"
#include "train/finetune_options.h"
#include "train/lora_run.h"
#include "train/sft_run.h"

namespace sllm::rl {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* const kCommand = "sllm dpo";

// DPO's own options that change the math or the data (the loop saves its own beside them).
json data_math_options(const DpoRunOptions& o) {
  json j{{"method", o.method}, {"beta", o.beta}, {"loss_type", o.loss_type}};
  train::save_data_options(o, j);
  if (o.method == "lora")
    train::save_lora_options(o, j);
  return j;
}

void apply_saved(const json& saved, DpoRunOptions& o) {
  o.method = saved.at("method");
  o.beta = saved.at("beta");
  o.loss_type = saved.at("loss_type");
  train::apply_saved_data_options(saved, o);
  if (o.method == "lora")
    train::apply_saved_lora_options(saved, o);
}

void validate(const DpoRunOptions& o) {
  SLLM_CHECK(o.method == "full" || o.method == "lora", str("sllm dpo: unknown --method '", o.method, "'"),
             "pass --method lora (an adapter trains, the reference is the model without it) or full");
  parse_dpo_loss_type(o.loss_type);
  SLLM_CHECK(o.beta > 0 && std::isfinite(o.beta), str("sllm dpo: --beta must be > 0, got ", o.beta),
             "pass e.g. --beta 0.1 (smaller keeps the policy closer to the reference)");
  SLLM_CHECK(o.batch > 0 && o.seq > 0, str("sllm dpo: --batch and --seq must be > 0, got ", o.batch, " and ", o.seq),
             "pass positive integers");
  SLLM_CHECK(o.steps >= 0 && o.epochs >= 0 && std::isfinite(o.epochs) && !(o.steps > 0 && o.epochs > 0),
             "sllm dpo: --steps and --epochs must be positive, and not both given",
             "pass one of them: --steps N (optimizer steps) or --epochs E (passes over the training pairs)");
  SLLM_CHECK(o.val_fraction >= 0 && o.val_fraction < 1 && o.val_count >= 0,
             "sllm dpo: --val-fraction must be in [0, 1) and --val-count >= 0", "pass e.g. --val-fraction 0.1");
  SLLM_CHECK(!o.model_dir.empty(), "sllm dpo: missing --model", "pass a model directory or a run directory");
  SLLM_CHECK(!o.out_dir.empty(), "sllm dpo: missing --out", "pass a run directory, e.g. runs/my-dpo");
  SLLM_CHECK(fs::is_regular_file(o.data_path), str("sllm dpo: --data '", o.data_path, "' is not a file"),
             "pass a JSONL file of {\"prompt\", \"chosen\", \"rejected\"} lines");
}

}  // namespace

DpoRunResult dpo(const DpoRunOptions& options) {
  DpoRunOptions o = options;
  validate(o);
  std::optional<train::SavedRun> saved;
  if (o.resume) {
    saved = train::peek_saved_run(o.out_dir, apply_saved);
    if (saved) apply_saved(saved->options, o);
  }

  const fs::path tok_path = fs::path(o.model_dir) / "tokenizer.json";
  SLLM_CHECK(fs::is_regular_file(tok_path), str("sllm dpo: model directory '", o.model_dir, "' has no tokenizer.json"),
             "copy the tokenizer the model was trained with into it");
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(tok_path.string());
  data::PreferenceOptions data_options;
  data_options.chat_template = data::parse_sft_template(o.chat_template);
  data_options.seq_len = o.seq;
  data_options.truncate = o.truncate;
  const data::PreferenceDataset dataset = data::PreferenceDataset::load(o.data_path, tok, data_options);
  dist::Comm& comm = dist::world();
  const bool root = comm.is_root();  // rank 0 alone reports (data-parallel runs)
  if (root) std::fprintf(stderr, "dpo data %s: %s\n", o.data_path.c_str(), data::describe(dataset.summary()).c_str());

  const data::SftValidation validation = train::validation_of(o);
  DpoObjective objective(dataset, o.batch, o.seed, validation, data::default_pad_id(tok),
                         DpoSettings{o.beta, parse_dpo_loss_type(o.loss_type)}, &comm);
  o.steps = train::run_steps(o, objective.train_pairs(), saved, comm.size());
  train::LoopOptions loop = train::loop_options_from(o, kCommand, o.model_dir);
  train::check_loop_options(loop);
  const std::optional<train::ResumePoint> resume = train::find_resume_point(o.out_dir, o.resume, o.steps);
  if (resume) train::check_resumed_options(*resume, o, apply_saved, data_math_options);

  const bool use_lora = o.method == "lora";
  // Several ranks on GPUs: NCCL picks this rank's GPU before the model goes to one.
  loop.gpu_transport = train::open_gpu_transport(comm, o.device);
  loop.data_parallel = o.data_parallel;
  const Device device = ops::parse_device(o.device);
  ops::init_device(device);
  std::unique_ptr<nn::Transformer> model = io::load_model(resume && !use_lora ? resume->dir.string() : o.model_dir);
  objective.check_model(model->config());
  model->to(device);  // A and B are made on the model's device; the reference runs there too
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<lora::LoraModel> lora;
  if (use_lora) {
    lora::check_config(train::lora_config_from(o));
    lora = std::make_unique<lora::LoraModel>(*model);
    lora->add_adapter("default", train::lora_config_from(o));
    if (resume) train::load_checkpoint_adapter(*lora, resume->dir);
    lora::LoraModel* l = lora.get();
    objective.mode_hook = [l](bool training, uint64_t micro_batch) {
      l->set_training(training);
      l->set_dropout_step(micro_batch);
    };
    {
      const auto off = lora->disabled();  // the reference: the same weights, adapter off
      objective.compute_reference(*model);
    }
    loop.trainable = [l] { return l->parameters(); };
    const std::string base = o.model_dir;
    loop.write_model = [l, base](const std::string& dir) { lora::save_adapter(*l, dir, base); };
  } else {
    // The reference is the starting model, also on --resume (the policy then comes from the
    // checkpoint): a frozen copy, needed only for this one pass.
    std::unique_ptr<nn::Transformer> reference = io::load_model(o.model_dir);
    SLLM_CHECK(reference->config().vocab_size == model->config().vocab_size,
               str("sllm dpo: the checkpoint's vocabulary (", model->config().vocab_size, ") differs from --model's (",
                   reference->config().vocab_size, ")"),
               "resume with the --model the run started from");
    reference->set_trainable(false);
    reference->to(device);
    objective.compute_reference(*reference);
  }
  const double reference_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int64_t trainable = 0;
  if (lora) {
    trainable = lora->num_parameters();
  } else {
    for (auto& p : model->parameters())
      if (p.value.requires_grad()) trainable += p.value.numel();
  }
  if (root) {
    std::fprintf(stderr, "dpo: method %s, loss %s, beta %g, %ld trainable parameters\n", o.method.c_str(),
                 o.loss_type.c_str(), o.beta, static_cast<long>(trainable));
    std::fprintf(stderr, "dpo: reference log-probs of %ld pairs in %.1f s\n", static_cast<long>(dataset.size()),
                 reference_seconds);
    std::fprintf(stderr, "dpo: %ld train / %ld val pairs, %ld steps of batch %ld x grad-accum %ld%s\n",
                 static_cast<long>(objective.train_pairs()), static_cast<long>(objective.val_pairs()),
                 static_cast<long>(o.steps), static_cast<long>(o.batch), static_cast<long>(o.grad_accum),
                 comm.size() > 1 ? str(" x ", comm.size(), " ranks").c_str() : "");
  }

  loop.caller_options = data_math_options(o);
  loop.tokenizer = &tok;
  DpoRunResult result;
  static_cast<train::TrainResult&>(result) = train::train(*model, objective, loop, resume ? &*resume : nullptr);
  result.summary = dataset.summary();
  result.train_pairs = objective.train_pairs();
  result.val_pairs = objective.val_pairs();
  result.total_steps = o.steps;
  result.trainable_params = trainable;
  result.reference_seconds = reference_seconds;
  return result;
}

}  // namespace sllm::rl
