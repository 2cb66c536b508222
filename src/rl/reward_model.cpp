#include "rl/reward_model.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "autograd/autograd.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/sft_loader.h"
#include "infer/model_path.h"
#include "io/gguf_model.h"
#include "io/model_files.h"
#include "nn/config.h"
#include "ops/ops.h"
#include "tokenizer/tokenizer.h"

namespace sllm::rl {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kScoreName = "score.weight";

json read_config(const std::string& dir) {
  const std::string path = (fs::path(dir) / "config.json").string();
  SLLM_CHECK(fs::is_regular_file(path), str("'", dir, "' has no config.json"),
             "pass a model directory (config.json + model.safetensors) or a run directory");
  const json j = json::parse(read_file(path), nullptr, false);
  SLLM_CHECK(j.is_object(), str(path, ": not a JSON object"), "restore the config.json that came with the weights");
  return j;
}

bool names_sequence_classifier(const json& config) {
  if (!config.contains("architectures") || !config["architectures"].is_array()) return false;
  for (const auto& a : config["architectures"])
    if (a.is_string() && a.get<std::string>().find("ForSequenceClassification") != std::string::npos) return true;
  return false;
}

// The trunk of `config` with the LM head left out: tying makes the head the token embedding,
// so no lm_head parameter exists (a Llama LM's untied lm_head.weight is skipped on load).
std::unique_ptr<nn::Transformer> make_trunk(const json& config, const std::string& where) {
  nn::ModelConfig c = nn::config_from_json(config, where);
  c.tie_embeddings = true;
  return std::make_unique<nn::Transformer>(c, nn::ParamInit::Zeros);
}

int32_t pad_id_for(const json& config, const std::string& tokenizer_path) {
  if (config.contains("pad_token_id") && config["pad_token_id"].is_number_integer())
    return config["pad_token_id"].get<int32_t>();
  if (!tokenizer_path.empty()) return data::default_pad_id(tokenizer::Tokenizer::load(tokenizer_path));
  return 0;
}

std::string tokenizer_in(const std::string& dir) {
  const fs::path p = fs::path(dir) / "tokenizer.json";
  return fs::is_regular_file(p) ? p.string() : std::string();
}

}  // namespace

RewardModel::RewardModel(std::unique_ptr<nn::Transformer> trunk, Tensor score_weight, int32_t pad_id,
                         std::string tokenizer_path)
    : trunk_(std::move(trunk)), score_(std::move(score_weight)), pad_id_(pad_id), tokenizer_path_(std::move(tokenizer_path)) {
  SLLM_ASSERT(trunk_ && score_.defined());
  SLLM_ASSERT(score_.shape() == Shape({1, trunk_->config().n_embd}));
  score_.set_name(kScoreName);
}

bool RewardModel::is_reward_model_dir(const std::string& dir) {
  return fs::is_regular_file(fs::path(dir) / "config.json") && names_sequence_classifier(read_config(dir));
}

RewardModel RewardModel::load(const std::string& dir_or_run) {
  SLLM_CHECK(!io::is_gguf_file(dir_or_run), str("'", dir_or_run, "' is a GGUF file, not a reward model"),
             "pass the directory `sllm reward train` wrote (or its run directory)");
  const std::string dir = infer::resolve_model_dir(dir_or_run);
  const json config = read_config(dir);
  SLLM_CHECK(names_sequence_classifier(config),
             str("'", dir, "' is not a reward model: config.json's architectures name no *ForSequenceClassification"),
             "train one with `sllm reward train --model " + dir + " ...`, or pass the reward model's directory");
  const int64_t labels = config.contains("id2label") && config["id2label"].is_object()
                             ? static_cast<int64_t>(config["id2label"].size())
                             : config.value("num_labels", int64_t{1});
  SLLM_CHECK(labels == 1, str("'", dir, "' is a classifier with ", labels, " labels; a reward model has one"),
             "pass a model with num_labels 1 (a single score head)");
  auto trunk = make_trunk(config, (fs::path(dir) / "config.json").string());
  Tensor score = Tensor::zeros({1, trunk->config().n_embd});
  // The file holds score.weight beside the trunk's parameters (an LM head, when present, is
  // skipped: the trunk is tied).
  io::load_weights(*trunk, (fs::path(dir) / "model.safetensors").string(), {{kScoreName, &score}});
  score.set_requires_grad(true);
  const std::string tok = tokenizer_in(dir);
  return RewardModel(std::move(trunk), score, pad_id_for(config, tok), tok);
}

RewardModel RewardModel::from_language_model(const std::string& dir_or_run, uint64_t seed) {
  SLLM_CHECK(!io::is_gguf_file(dir_or_run), str("'", dir_or_run, "': a reward model cannot start from a GGUF file"),
             "convert it to a model directory first (`sllm convert`)");
  const std::string dir = infer::resolve_model_dir(dir_or_run);
  const json config = read_config(dir);
  SLLM_CHECK(!names_sequence_classifier(config), str("'", dir, "' is already a reward model"),
             "load it with RewardModel::load (`sllm reward train` continues from it)");
  auto trunk = make_trunk(config, (fs::path(dir) / "config.json").string());
  io::load_weights(*trunk, (fs::path(dir) / "model.safetensors").string());
  // transformers initializes a new head's nn.Linear with N(0, initializer_range)
  // (GPT2PreTrainedModel._init_weights; 0.02 is GPT2Config's default).
  const double std_dev = config.value("initializer_range", 0.02);
  const int64_t C = trunk->config().n_embd;
  std::vector<float> w(static_cast<size_t>(C));
  uint64_t mix = seed ^ 0x5C0BE5EEDull;
  Rng rng(splitmix64(mix));
  for (auto& x : w) x = static_cast<float>(rng.normal() * std_dev);
  Tensor score = Tensor::from_floats(w, {1, C});
  score.set_requires_grad(true);
  const std::string tok = tokenizer_in(dir);
  return RewardModel(std::move(trunk), score, pad_id_for(config, tok), tok);
}

Tensor RewardModel::last_scores(const Tensor& ids, const std::vector<int64_t>& last) {
  SLLM_CHECK(ids.ndim() == 2 && ids.dtype() == DType::I32, str("reward model: ids must be (B, T) i32, got ",
                                                               shape_str(ids.shape())),
             "pass token ids as a (batch, time) int32 tensor");
  const int64_t B = ids.dim(0), T = ids.dim(1), C = trunk_->config().n_embd;
  SLLM_CHECK(static_cast<int64_t>(last.size()) == B,
             str("reward model: ", last.size(), " last positions for ", B, " rows"), "give one position per row");
  std::vector<int32_t> rows(static_cast<size_t>(B));  // (B) row of (B*T, C) holding each last token
  for (int64_t b = 0; b < B; ++b) {
    const int64_t t = last[static_cast<size_t>(b)];
    SLLM_CHECK(t >= 0 && t < T, str("reward model: last position ", t, " of row ", b, " is outside [0, ", T, ")"),
               "a row's last position is its length - 1");
    rows[static_cast<size_t>(b)] = static_cast<int32_t>(b * T + t);
  }
  Tensor h = trunk_->hidden(ids);  // (B, T, C)
  if (h.dtype() != DType::F32) h = ops::cast(h, DType::F32);
  const Tensor picked = ops::index_select(ops::reshape(h, {B * T, C}), Tensor::from_ints(rows, {B}));  // (B, C)
  return ops::reshape(ops::linear(picked, score_), {B});
}

Tensor RewardModel::token_scores(const Tensor& ids) {
  SLLM_CHECK(ids.ndim() == 2, str("reward model: ids must be (B, T), got ", shape_str(ids.shape())),
             "pass token ids as a (batch, time) int32 tensor");
  Tensor h = trunk_->hidden(ids);  // (B, T, C)
  if (h.dtype() != DType::F32) h = ops::cast(h, DType::F32);
  return ops::reshape(ops::linear(h, score_), {ids.dim(0), ids.dim(1)});
}

std::vector<float> RewardModel::score(const std::vector<std::vector<int32_t>>& seqs, int64_t batch) {
  SLLM_CHECK(batch > 0, str("reward model: batch must be > 0, got ", batch), "pass a positive batch size");
  autograd::NoGradGuard no_grad;
  const nn::ModelConfig& cfg = trunk_->config();
  std::vector<float> out;
  out.reserve(seqs.size());
  for (size_t first = 0; first < seqs.size(); first += static_cast<size_t>(batch)) {
    const size_t n = std::min(seqs.size() - first, static_cast<size_t>(batch));
    int64_t T = 0;
    for (size_t i = first; i < first + n; ++i) {
      const auto len = static_cast<int64_t>(seqs[i].size());
      SLLM_CHECK(len > 0, str("reward model: sequence ", i, " is empty"), "score prompt + response token ids");
      SLLM_CHECK(len <= cfg.n_ctx, str("reward model: sequence ", i, " has ", len, " tokens, more than the context of ",
                                       cfg.n_ctx),
                 "shorten the prompt or the response");
      for (int32_t id : seqs[i])
        SLLM_CHECK(id >= 0 && id < cfg.vocab_size,
                   str("reward model: sequence ", i, " holds token id ", id, ", outside the vocabulary of ",
                       cfg.vocab_size),
                   "tokenize with the reward model's tokenizer");
      T = std::max(T, len);
    }
    Tensor ids = Tensor::empty({static_cast<int64_t>(n), T}, DType::I32);
    std::vector<int64_t> last(n);
    int32_t* row = ids.mutable_i32();  // (n, T)
    for (size_t i = 0; i < n; ++i, row += T) {
      const auto& s = seqs[first + i];
      std::copy(s.begin(), s.end(), row);
      std::fill(row + s.size(), row + T, pad_id_);
      last[i] = static_cast<int64_t>(s.size()) - 1;
    }
    const std::vector<float> r = last_scores(ids, last).to_floats();
    out.insert(out.end(), r.begin(), r.end());
  }
  return out;
}

void RewardModel::save(const std::string& dir, const std::map<std::string, Tensor>& replaced) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  SLLM_CHECK(!ec, str("cannot create reward model directory '", dir, "': ", ec.message()),
             "check the path and permissions");
  const nn::ModelConfig& cfg = trunk_->config();
  json config = nn::config_to_json(cfg);
  config["architectures"] = {cfg.family == nn::Family::GPT2 ? "GPT2ForSequenceClassification"
                                                            : "LlamaForSequenceClassification"};
  // num_labels is not a key of its own: transformers derives it from id2label.
  config["id2label"] = {{"0", "LABEL_0"}};
  config["label2id"] = {{"LABEL_0", 0}};
  config["pad_token_id"] = pad_id_;
  write_file_atomic((fs::path(dir) / "config.json").string(), config.dump(2) + "\n");

  io::save_weights(*trunk_, (fs::path(dir) / "model.safetensors").string(), {{kScoreName, score_}}, replaced);
}

void RewardModel::to(Device device) {
  trunk_->to(device);
  if (score_.device() == device) return;
  const bool trainable = score_.requires_grad();
  score_ = score_.detach().to(device);
  score_.set_name(kScoreName).set_requires_grad(trainable);
}

}  // namespace sllm::rl
