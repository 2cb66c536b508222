#include "rl/reward_run.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "autograd/autograd.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "data/preference_loader.h"
#include "dist/comm.h"
#include "infer/model_path.h"
#include "io/safetensors.h"
#include "lora/lora_model.h"
#include "lora/peft_files.h"
#include "ops/device.h"
#include "rl/reward_model.h"
#include "rl/reward_objective.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/data_parallel.h"
#include "train/finetune_options.h"
#include "train/lora_run.h"
#include "train/sft_run.h"

namespace sllm::rl {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* const kCommand = "sllm reward train";
const char* const kAdapterSubdir = "adapter";
const char* const kPeftScoreName = "base_model.model.score.weight";  // PEFT's name for the saved `score` module

// The options of the run that change the math or the data (the loop saves its own beside).
json data_math_options(const RewardRunOptions& o) {
  json j{{"method", o.method}};
  train::save_data_options(o, j);
  if (o.method == "lora")
    train::save_lora_options(o, j);
  return j;
}

void apply_saved(const json& saved, RewardRunOptions& o) {
  train::apply_saved_data_options(saved, o);
  o.method = saved.at("method");
  if (o.method == "lora")
    train::apply_saved_lora_options(saved, o);
}

void validate(const RewardRunOptions& o) {
  SLLM_CHECK(o.batch > 0 && o.seq > 0, str(kCommand, ": --batch and --seq must be > 0, got ", o.batch, " and ", o.seq),
             "pass positive integers");
  SLLM_CHECK(o.steps >= 0 && o.epochs >= 0 && std::isfinite(o.epochs),
             str(kCommand, ": --steps and --epochs must be > 0"), "pass a positive count");
  SLLM_CHECK(!(o.steps > 0 && o.epochs > 0), str(kCommand, ": --epochs and --steps both given"), "pass one of them");
  SLLM_CHECK(o.method == "full" || o.method == "lora", str(kCommand, ": unknown --method '", o.method, "'"),
             "pass --method full or lora");
  SLLM_CHECK(!o.model_dir.empty(), str(kCommand, ": missing --model"),
             "pass the SFT model to start from (a model or run directory), or a reward model to train further");
  SLLM_CHECK(!o.data_path.empty(), str(kCommand, ": missing --data"),
             "pass a JSONL file of {\"prompt\", \"chosen\", \"rejected\"} lines");
  SLLM_CHECK(fs::is_regular_file(o.data_path), str(kCommand, ": --data '", o.data_path, "' is not a file"),
             "pass a JSONL file of {\"prompt\", \"chosen\", \"rejected\"} lines");
  SLLM_CHECK(!o.out_dir.empty(), str(kCommand, ": missing --out"), "pass a run directory, e.g. runs/my-rm");
}

// The trunk's merged weights W + s·B·A for every adapted Linear, as new tensors.
std::map<std::string, Tensor> merged_weights(lora::LoraModel& lora) {
  autograd::NoGradGuard no_grad;
  std::map<std::string, Tensor> out;
  for (lora::LoraLayer* layer : lora.layers(lora.active())) {
    Tensor w = layer->base().weight().to(Device::CPU).clone();
    const Tensor delta = lora::delta_weight(layer->adapters().at(lora.active())).to(Device::CPU);
    float* dst = w.mutable_f32();
    const float* d = delta.f32();
    for (int64_t i = 0; i < w.numel(); ++i) dst[i] += d[i];
    out.emplace(layer->base().path() + ".weight", std::move(w));
  }
  return out;
}

// PEFT's adapter directory for a sequence classifier: save_adapter's files, with task_type
// SEQ_CLS, modules_to_save ["score"] and the score head added under PEFT's name.
void save_reward_adapter(lora::LoraModel& lora, RewardModel& rm, const std::string& dir, const std::string& base) {
  lora::save_adapter(lora, dir, base);
  const std::string config_path = (fs::path(dir) / lora::kAdapterConfigFile).string();
  json config = json::parse(read_file(config_path));
  config["task_type"] = "SEQ_CLS";
  config["modules_to_save"] = {"score"};
  write_file_atomic(config_path, config.dump(2) + "\n");
  const std::string weights_path = (fs::path(dir) / lora::kAdapterWeightsFile).string();
  const io::SafetensorsFile file = io::SafetensorsFile::open(weights_path);
  io::SafetensorsWriter writer;
  writer.set_metadata("format", "pt");
  for (const auto& e : file.entries()) writer.add(e.name, e.dtype, e.shape, e.data, e.nbytes);
  const Tensor score = rm.score_weight().to(Device::CPU);
  writer.add(kPeftScoreName, "F32", {1, rm.trunk().config().n_embd}, score.f32(), score.nbytes());
  writer.write(weights_path);
}

// --resume of a LoRA run: A, B and the score head from ckpt/adapter/, by name and shape.
void load_reward_adapter(lora::LoraModel& lora, RewardModel& rm, const fs::path& ckpt) {
  const std::string path = (ckpt / kAdapterSubdir / lora::kAdapterWeightsFile).string();
  const io::SafetensorsFile file = io::SafetensorsFile::open(path);
  const std::string hint = "the checkpoint is damaged, or --model is not the base model the run started from";
  auto load = [&](const std::string& name, Tensor& dst) {
    const io::SafetensorsEntry* e = file.find(name);
    SLLM_CHECK(e, str(path, ": tensor ", name, " is missing"), hint);
    const Shape shape(e->shape.begin(), e->shape.end());
    SLLM_CHECK(e->dtype == "F32" && shape == dst.shape(),
               str(path, ": tensor ", name, " is ", e->dtype, " ", shape_str(shape), ", the run needs F32 ",
                   shape_str(dst.shape())),
               hint);
    const Tensor src = Tensor::wrap(const_cast<uint8_t*>(e->data), shape, DType::F32, nullptr).clone();
    dst.copy_from(dst.device() == Device::CPU ? src : src.to(dst.device()));
  };
  const std::vector<nn::Parameter> params = lora.parameters();
  SLLM_CHECK(file.entries().size() == params.size() + 1,
             str(path, ": holds ", file.entries().size(), " tensors, the run's adapter and score head ",
                 params.size() + 1),
             hint);
  for (const nn::Parameter& p : params) load(p.name, p.value);
  load(kPeftScoreName, rm.score_weight());
}

double last_val_accuracy(const std::string& run_dir) {
  std::ifstream in(fs::path(run_dir) / "metrics.jsonl");
  double acc = -1;
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("val_accuracy")) acc = j["val_accuracy"].get<double>();
  }
  return acc;
}

}  // namespace

RewardRunResult reward_train(const RewardRunOptions& options) {
  RewardRunOptions o = options;
  validate(o);
  std::optional<train::SavedRun> saved;
  if (o.resume) {
    saved = train::peek_saved_run(o.out_dir, apply_saved);
    if (saved) apply_saved(saved->options, o);
  }

  const std::string model_dir = infer::resolve_model_dir(o.model_dir);
  const fs::path tok_path = fs::path(model_dir) / "tokenizer.json";
  SLLM_CHECK(fs::is_regular_file(tok_path), str(kCommand, ": model directory '", model_dir, "' has no tokenizer.json"),
             "copy the tokenizer the model was trained with into it");
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(tok_path.string());

  data::PreferenceOptions data_options;
  data_options.chat_template = data::parse_sft_template(o.chat_template);
  data_options.seq_len = o.seq;
  data_options.truncate = o.truncate;
  const data::PreferenceDataset dataset = data::PreferenceDataset::load(o.data_path, tok, data_options);
  dist::Comm& comm = dist::world();
  const bool root = comm.is_root();  // rank 0 alone reports (data-parallel runs)
  if (root) std::fprintf(stderr, "reward data %s: %s\n", o.data_path.c_str(), data::describe(dataset.summary()).c_str());

  const data::SftValidation validation = train::validation_of(o);
  // The step count needs the split's size before the model exists (the objective splits alike).
  const data::SftSplit split = data::split_preferences(dataset, validation, o.seed);
  const auto train_pairs = static_cast<int64_t>(split.train.size());
  o.steps = train::run_steps(o, train_pairs, saved, comm.size());
  train::LoopOptions loop = train::loop_options_from(o, kCommand, o.model_dir);
  train::check_loop_options(loop);
  const std::optional<train::ResumePoint> resume = train::find_resume_point(o.out_dir, o.resume, o.steps);
  if (resume) train::check_resumed_options(*resume, o, apply_saved, data_math_options);

  // The model: a full run resumes from its checkpoint (a reward model); a LoRA run rebuilds
  // base + adapter; a new run starts from --model, an LM (new score head) or a reward model.
  const bool use_lora = o.method == "lora";
  const std::string start = resume && !use_lora ? resume->dir.string() : model_dir;
  RewardModel rm = RewardModel::is_reward_model_dir(start) ? RewardModel::load(start)
                                                            : RewardModel::from_language_model(start, o.seed);
  // Several ranks on GPUs: NCCL picks this rank's GPU before the model goes to one.
  loop.gpu_transport = train::open_gpu_transport(comm, o.device);
  loop.data_parallel = o.data_parallel;
  // Batches pad with the tokenizer's pad id; the saved config records it for transformers.
  const Device device = ops::parse_device(o.device);
  ops::init_device(device);
  rm.to(device);
  RewardObjective objective(rm, dataset, o.batch, o.seed, validation, &comm);
  objective.check_model();

  std::unique_ptr<lora::LoraModel> lora;
  int64_t trainable = rm.score_weight().numel();
  if (use_lora) {
    lora::check_config(train::lora_config_from(o));
    lora = std::make_unique<lora::LoraModel>(rm.trunk());
    lora->add_adapter("default", train::lora_config_from(o));
    if (resume) load_reward_adapter(*lora, rm, resume->dir);
    trainable += lora->num_parameters();
    lora::LoraModel* l = lora.get();
    objective.mode_hook = [l](bool training, uint64_t micro_batch) {
      l->set_training(training);
      l->set_dropout_step(micro_batch);
    };
  } else {
    rm.trunk().set_trainable(true);
    for (auto& p : rm.trunk().parameters()) trainable += p.value.numel();
  }
  RewardModel* r = &rm;
  lora::LoraModel* l = lora.get();
  loop.trainable = [r, l] {
    std::vector<nn::Parameter> params = l ? l->parameters() : r->trunk().parameters();
    params.push_back({"score.weight", r->score_weight(), false});
    return params;
  };
  loop.write_model = [r, l, model_dir](const std::string& dir) {
    if (!l) return r->save(dir);
    r->save(dir, merged_weights(*l));
    save_reward_adapter(*l, *r, (fs::path(dir) / kAdapterSubdir).string(), model_dir);
  };
  if (root)
    std::fprintf(stderr,
                 "reward: method %s, %ld trainable parameters; %ld train / %ld val pairs, %ld steps of %ld pairs x "
                 "grad-accum %ld%s\n",
                 o.method.c_str(), static_cast<long>(trainable), static_cast<long>(objective.train_pairs()),
                 static_cast<long>(objective.val_pairs()), static_cast<long>(o.steps), static_cast<long>(o.batch),
                 static_cast<long>(o.grad_accum), comm.size() > 1 ? str(" x ", comm.size(), " ranks").c_str() : "");

  loop.caller_options = data_math_options(o);
  loop.tokenizer = &tok;
  RewardRunResult result;
  static_cast<train::TrainResult&>(result) = train::train(rm.trunk(), objective, loop, resume ? &*resume : nullptr);
  result.summary = dataset.summary();
  result.train_pairs = objective.train_pairs();
  result.val_pairs = objective.val_pairs();
  result.total_steps = o.steps;
  result.trainable_params = trainable;
  result.last_val_accuracy = last_val_accuracy(o.out_dir);
  return result;
}

}  // namespace sllm::rl
