#include "train/sft_run.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "core/error.h"
#include "dist/comm.h"
#include "io/gguf_model.h"
#include "io/model_files.h"
#include "lora/lora_model.h"
#include "lora/peft_files.h"
#include "ops/device.h"
#include "quant/bnb_files.h"
#include "quant/quantize_model.h"
#include "nn/transformer.h"
#include "tokenizer/tokenizer.h"
#include "train/finetune_options.h"
#include "train/lora_run.h"
#include "train/sft_objective.h"

namespace sllm::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* const kCommand = "sllm sft";

// SFT's own options that change the math or the data (the loop saves its own beside them).
json data_math_options(const SftRunOptions& o) {
  json j;
  save_data_options(o, j);
  if (o.method == "qlora") {
    j["quant_type"] = o.quant_type;
    j["quant_blocksize"] = o.quant_blocksize;
    j["double_quant"] = o.double_quant;
  }
  if (o.method == "lora" || o.method == "qlora") {
    j["method"] = o.method;
    save_lora_options(o, j);
  }
  return j;
}

void apply_saved(const json& saved, SftRunOptions& o) {
  apply_saved_data_options(saved, o);
  o.method = saved.value("method", std::string("full"));
  if (o.method == "qlora") {
    o.quant_type = saved.at("quant_type");
    o.quant_blocksize = saved.at("quant_blocksize");
    o.double_quant = saved.at("double_quant");
  }
  if (o.method == "lora" || o.method == "qlora")
    apply_saved_lora_options(saved, o);
}

void validate(const SftRunOptions& o) {
  auto positive = [](int64_t v, const char* flag) {
    SLLM_CHECK(v > 0, str("sllm sft: ", flag, " must be > 0, got ", v), "pass a positive integer");
  };
  positive(o.batch, "--batch");
  positive(o.seq, "--seq");
  SLLM_CHECK(o.steps >= 0, str("sllm sft: --steps must be > 0, got ", o.steps), "pass a positive integer");
  SLLM_CHECK(o.epochs >= 0 && std::isfinite(o.epochs), str("sllm sft: --epochs must be > 0, got ", o.epochs),
             "pass a positive number of epochs, e.g. --epochs 3");
  SLLM_CHECK(!(o.steps > 0 && o.epochs > 0), "sllm sft: --epochs and --steps both given",
             "pass one of them: --steps N (optimizer steps) or --epochs E (passes over the training examples)");
  SLLM_CHECK(o.val_fraction >= 0 && o.val_fraction < 1, str("sllm sft: --val-fraction must be in [0, 1), got ", o.val_fraction),
             "pass e.g. --val-fraction 0.1, or --val-count N");
  SLLM_CHECK(o.val_count >= 0, str("sllm sft: --val-count must be >= 0, got ", o.val_count), "pass a count of examples");
  SLLM_CHECK(o.method == "full" || o.method == "lora" || o.method == "qlora",
             str("sllm sft: unknown --method '", o.method, "'"), "pass --method full, lora or qlora");
  if (o.method == "qlora") {
    quant::parse_quant_type(o.quant_type);
    quant::check_blocksize(o.quant_blocksize, "sllm sft --quant-blocksize");
  }
  SLLM_CHECK(!o.model_dir.empty(), "sllm sft: missing --model", "pass a model directory or a run directory");
  SLLM_CHECK(!o.data_path.empty(), "sllm sft: missing --data", "pass a JSONL file of {\"messages\": [...]} lines");
  SLLM_CHECK(fs::is_regular_file(o.data_path), str("sllm sft: --data '", o.data_path, "' is not a file"),
             "pass a JSONL file of {\"messages\": [...]} or {\"prompt\", \"completion\"} lines");
}

}  // namespace

int64_t sft_steps_for_epochs(double epochs, int64_t train_examples, int64_t batch, int64_t grad_accum) {
  const double steps = std::ceil(epochs * static_cast<double>(train_examples) / static_cast<double>(batch * grad_accum));
  SLLM_CHECK(steps >= 1, str("sllm sft: --epochs ", epochs, " gives no optimizer step"), "raise --epochs or pass --steps");
  return static_cast<int64_t>(steps);
}

SftRunResult sft(const SftRunOptions& options) {
  SftRunOptions o = options;
  validate(o);
  SLLM_CHECK(!o.out_dir.empty(), "sllm sft: missing --out", "pass a run directory, e.g. runs/my-sft");
  std::optional<SavedRun> saved;
  if (o.resume) {
    saved = peek_saved_run(o.out_dir, apply_saved);
    if (saved) apply_saved(saved->options, o);
  }

  const fs::path model_dir = o.model_dir;
  // A GGUF base carries its tokenizer in its metadata (tokenizer/gguf_tokenizer.h).
  const fs::path tok_path = io::is_gguf_file(o.model_dir) ? model_dir : model_dir / "tokenizer.json";
  SLLM_CHECK(fs::is_regular_file(tok_path), str("sllm sft: model directory '", o.model_dir, "' has no tokenizer.json"),
             "copy the tokenizer the model was trained with into it (`sllm pretrain --tokenizer` copies it into checkpoints)");
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(tok_path.string());

  data::SftOptions data_options;
  data_options.chat_template = data::parse_sft_template(o.chat_template);
  data_options.seq_len = o.seq;
  data_options.truncate = o.truncate;
  const data::SftDataset dataset = data::SftDataset::load(o.data_path, tok, data_options);
  const bool root = dist::world().is_root();  // rank 0 alone reports (data-parallel runs)
  if (root) std::fprintf(stderr, "sft data %s: %s\n", o.data_path.c_str(), data::describe(dataset.summary()).c_str());

  const data::SftValidation validation = validation_of(o);
  dist::Comm& comm = dist::world();
  // Several ranks on GPUs: NCCL picks this rank's GPU before the model goes to one.
  const std::shared_ptr<dist::NcclComm> gpu = open_gpu_transport(comm, o.device);
  SftObjective objective(dataset, o.batch, o.seed, validation, data::default_pad_id(tok), &comm);

  o.steps = run_steps(o, objective.train_examples(), saved, comm.size());
  LoopOptions loop = loop_options_from(o, kCommand, o.model_dir);
  check_loop_options(loop);
  const std::optional<ResumePoint> resume = find_resume_point(o.out_dir, o.resume, o.steps);
  if (resume) check_resumed_options(*resume, o, apply_saved, data_math_options);

  const bool use_lora = o.method == "lora" || o.method == "qlora";
  // quant::load_model: --method qlora also takes an already-quantized (bitsandbytes) directory.
  std::unique_ptr<nn::Transformer> model = quant::load_model(resume && !use_lora ? resume->dir.string() : o.model_dir);
  objective.check_model(model->config());
  model->set_gradient_checkpointing(o.grad_checkpoint);
  const quant::QuantizeReport packed = quant::packed_report(*model);
  SLLM_CHECK(packed.linears == 0 || o.method == "qlora",
             str("sllm sft: ", o.model_dir, " is quantized (", packed.linears, " 4-bit Linears); --method ", o.method,
                 " needs full-precision weights"),
             "fine-tune a quantized model with --method qlora, or pass the unquantized model");
  if (o.method == "qlora" && packed.linears == 0) {
    quant::QuantOptions q;
    q.type = quant::parse_quant_type(o.quant_type);
    q.blocksize = o.quant_blocksize;
    q.double_quant = o.double_quant;
    const quant::QuantizeReport r = quant::quantize_model(*model, q);
    if (root) std::fprintf(stderr, "sft: quantized %ld Linears (%.1fM weights) to %s%s, %.3f bits per parameter, %.1f MiB\n",
                 static_cast<long>(r.linears), double(r.params) / 1e6, o.quant_type.c_str(),
                 o.double_quant ? " + double quantization" : "", r.bits_per_param(), double(r.bytes) / (1 << 20));
  } else if (o.method == "qlora" && root) {
    std::fprintf(stderr, "sft: the base is already quantized: %ld Linears, %.3f bits per parameter\n",
                 static_cast<long>(packed.linears), packed.bits_per_param());
  }
  std::unique_ptr<lora::LoraModel> lora;
  if (use_lora) {
    lora::check_config(lora_config_from(o));
    // A and B are made on the model's device, so the model moves first (the loop's move is
    // then a no-op).
    const Device device = ops::parse_device(o.device);
    ops::init_device(device);
    model->to(device);
    lora = std::make_unique<lora::LoraModel>(*model);
    lora->add_adapter("default", lora_config_from(o));
    if (resume) load_checkpoint_adapter(*lora, resume->dir);
    lora::LoraModel* l = lora.get();
    objective.mode_hook = [l](bool training, uint64_t micro_batch) {
      l->set_training(training);
      l->set_dropout_step(micro_batch);
    };
    loop.trainable = [l] { return l->parameters(); };
    const std::string base = o.model_dir;
    loop.write_model = [l, base](const std::string& dir) { lora::save_adapter(*l, dir, base); };
  }
  int64_t trainable = 0;
  if (lora) {
    trainable = lora->num_parameters();
  } else {
    for (auto& p : model->parameters())
      if (p.value.requires_grad()) trainable += p.value.numel();
  }
  if (root) {
    std::fprintf(stderr, "sft: method %s, %ld trainable parameters\n", o.method.c_str(), static_cast<long>(trainable));
    std::fprintf(stderr, "sft: %ld train / %ld val examples, %ld steps of batch %ld x grad-accum %ld%s\n",
                 static_cast<long>(objective.train_examples()), static_cast<long>(objective.val_examples()),
                 static_cast<long>(o.steps), static_cast<long>(o.batch), static_cast<long>(o.grad_accum),
                 comm.size() > 1 ? str(" x ", comm.size(), " ranks").c_str() : "");
  }

  loop.caller_options = data_math_options(o);
  loop.data_parallel = o.data_parallel;
  loop.gpu_transport = gpu;
  loop.tokenizer = &tok;
  SftRunResult result;
  static_cast<TrainResult&>(result) = train(*model, objective, loop, resume ? &*resume : nullptr);
  result.summary = dataset.summary();
  result.train_examples = objective.train_examples();
  result.val_examples = objective.val_examples();
  result.total_steps = o.steps;
  result.trainable_params = trainable;
  return result;
}

}  // namespace sllm::train
