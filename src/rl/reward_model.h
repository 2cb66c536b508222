// A reward model: a GPT-2 or Llama trunk (nn::Transformer::hidden) with a scalar head,
// laid out as Hugging Face's GPT2ForSequenceClassification / LlamaForSequenceClassification
// with num_labels = 1 (Ouyang et al. 2022, section 3.5: "we removed the final unembedding
// layer" and output a scalar; Stiennon et al. 2020, section 3.4):
//   r(x) = score · h_last,   h (B, T, C) = trunk(ids),  score.weight (1, C), no bias,
// read at each row's last real token (right padding: the row's length - 1).
//
// Its directory is what transformers loads with AutoModelForSequenceClassification:
//   config.json        the trunk's keys, architectures ["GPT2ForSequenceClassification"] (or
//                      Llama's), id2label {"0": "LABEL_0"} (num_labels 1), pad_token_id
//   model.safetensors  the trunk under its HF names plus "score.weight"; no LM head
//   tokenizer.json     the tokenizer (policy and reward model must share it)
// transformers reads the score at the rightmost token that is not pad_token_id; that is our
// last real token unless a sequence itself ends in the pad id (template none, whose
// responses end in <|endoftext|>, the default pad): there transformers reads one token
// earlier than sllm does. ChatML responses end in <|im_end|> and agree.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/transformer.h"
#include "tensor/tensor.h"

namespace sllm::rl {

class RewardModel {
 public:
  RewardModel(std::unique_ptr<nn::Transformer> trunk, Tensor score_weight, int32_t pad_id, std::string tokenizer_path);

  // A reward-model directory, or a run directory of `sllm reward train` (its latest
  // checkpoint). An LM directory (no score head) raises sllm::Error with a hint.
  static RewardModel load(const std::string& dir);
  // A new reward model on an LM directory's trunk (its LM head is left out); score.weight
  // drawn from N(0, initializer_range²) by `seed` (transformers' _init_weights for Linear).
  static RewardModel from_language_model(const std::string& dir, uint64_t seed);
  // Whether `dir` (a model directory) holds a reward model: config.json's architectures name
  // a *ForSequenceClassification.
  static bool is_reward_model_dir(const std::string& dir);

  nn::Transformer& trunk() { return *trunk_; }
  const nn::Transformer& trunk() const { return *trunk_; }
  Tensor& score_weight() { return score_; }  // (1, C) f32 leaf named "score.weight"
  int32_t pad_id() const { return pad_id_; }
  // The tokenizer.json the model was loaded with ("" when its directory had none): PPO
  // checks it against the policy's.
  const std::string& tokenizer_path() const { return tokenizer_path_; }

  // ids (B, T) i32 → (B) with autograd: the score at position last[b] of row b.
  Tensor last_scores(const Tensor& ids, const std::vector<int64_t>& last);
  // ids (B, T) i32 → (B, T): the score at every position (a value head, or a critic started
  // from the reward model). token_scores(ids)[b][last[b]] == last_scores(ids, last)[b].
  Tensor token_scores(const Tensor& ids);
  // One score per sequence, without gradients: batched by `batch`, each batch right-padded
  // with pad_id to its longest sequence. An empty sequence or one longer than the context
  // raises sllm::Error.
  std::vector<float> score(const std::vector<std::vector<int32_t>>& seqs, int64_t batch = 16);

  // Writes config.json and model.safetensors (f32) into dir (created); each atomically.
  // `replaced` maps trunk parameter names to the tensor to write in their place (a LoRA
  // run writes its merged weights so, leaving the live ones untouched).
  void save(const std::string& dir, const std::map<std::string, Tensor>& replaced = {}) const;
  // The trunk and the score head to `device` (optimizers hold the tensors: build them after).
  void to(Device device);

 private:
  std::unique_ptr<nn::Transformer> trunk_;
  Tensor score_;
  int32_t pad_id_;
  std::string tokenizer_path_;
};

}  // namespace sllm::rl
