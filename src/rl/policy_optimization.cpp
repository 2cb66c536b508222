#include "rl/policy_optimization.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include "autograd/autograd.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/rng.h"
#include "dist/comm.h"
#include "infer/batch_generate.h"
#include "infer/model_path.h"
#include "infer/text_session.h"
#include "io/model_files.h"
#include "io/safetensors.h"
#include "kernels/kernels.h"
#include "lora/lora_model.h"
#include "lora/peft_files.h"
#include "ops/device.h"
#include "ops/memory_usage.h"
#include "ops/ops.h"
#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "rl/advantages.h"
#include "rl/kl.h"
#include "rl/policy_loss.h"
#include "rl/prompt_set.h"
#include "rl/reward_model.h"
#include "rl/verifier.h"
#include "train/checkpoint.h"

namespace sllm::rl {

namespace fs = std::filesystem;
using json = nlohmann::json;

json math_options(const RlOptions& o) {
  return {{"algorithm", o.algorithm},       {"method", o.method},
          {"lora_r", o.lora_r},             {"lora_alpha", o.lora_alpha},
          {"lora_targets", o.lora_targets}, {"chat_template", o.chat_template},
          {"value_model", o.value_model},   {"batch", o.batch},
          {"num_generations", o.num_generations}, {"mini_batch_size", o.mini_batch_size},
          {"epochs", o.epochs},             {"max_new_tokens", o.max_new_tokens},
          {"temperature", o.temperature},   {"top_p", o.top_p},
          {"top_k", o.top_k},               {"stop", o.stop},
          {"lr", o.lr},                     {"weight_decay", o.weight_decay},
          {"max_grad_norm", o.max_grad_norm}, {"gamma", o.gamma},
          {"lam", o.lam},                   {"cliprange", o.cliprange},
          {"cliprange_value", o.cliprange_value}, {"vf_coef", o.vf_coef},
          {"kl_coef", o.kl_coef},           {"target_kl", o.target_kl},
          {"kl_horizon", o.kl_horizon},     {"beta", o.beta},
          {"seed", o.seed},                 {"reward", o.reward}};
}

namespace {

void from_math_options(const json& j, RlOptions& o) {
  RlOptions d = o;
  auto take = [&j](const char* key, auto& field) {
    if (j.contains(key)) field = j.at(key).get<std::decay_t<decltype(field)>>();
  };
  take("algorithm", o.algorithm), take("method", o.method), take("lora_r", o.lora_r), take("lora_alpha", o.lora_alpha);
  take("lora_targets", o.lora_targets), take("chat_template", o.chat_template), take("value_model", o.value_model);
  take("batch", o.batch), take("num_generations", o.num_generations), take("mini_batch_size", o.mini_batch_size);
  take("epochs", o.epochs), take("max_new_tokens", o.max_new_tokens), take("temperature", o.temperature);
  take("top_p", o.top_p), take("top_k", o.top_k), take("stop", o.stop), take("lr", o.lr);
  take("weight_decay", o.weight_decay), take("max_grad_norm", o.max_grad_norm), take("gamma", o.gamma);
  take("lam", o.lam), take("cliprange", o.cliprange), take("cliprange_value", o.cliprange_value);
  take("vf_coef", o.vf_coef), take("kl_coef", o.kl_coef), take("target_kl", o.target_kl);
  take("kl_horizon", o.kl_horizon), take("beta", o.beta), take("seed", o.seed), take("reward", o.reward);
  (void)d;
}

void check_options(const RlOptions& o) {
  const std::string cmd = "sllm " + o.algorithm;
  SLLM_CHECK(o.algorithm == "ppo" || o.algorithm == "grpo", str("unknown RL algorithm '", o.algorithm, "'"), "ppo or grpo");
  SLLM_CHECK(o.method == "lora" || o.method == "full", str(cmd, ": --method must be lora or full, got '", o.method, "'"),
             "lora trains an adapter over the frozen SFT model; full trains every weight");
  SLLM_CHECK(o.value_model == "policy" || o.value_model == "rm",
             str(cmd, ": --value-model must be policy or rm, got '", o.value_model, "'"),
             "policy: a value head on the policy's trunk; rm: a separate critic started from --reward rm:DIR");
  SLLM_CHECK(o.steps > 0 && o.batch > 0 && o.mini_batch_size > 0 && o.epochs > 0 && o.max_new_tokens > 0,
             str(cmd, ": --steps, --batch, --mini-batch-size, --epochs and --max-new-tokens must be > 0"),
             "e.g. --steps 50 --batch 16 --mini-batch-size 8");
  SLLM_CHECK(o.algorithm == "ppo" || o.num_generations >= 2,
             str(cmd, ": --num-generations must be >= 2, got ", o.num_generations),
             "GRPO compares completions of the same prompt: give at least 2");
  SLLM_CHECK(o.lr > 0 && o.cliprange > 0 && o.cliprange_value > 0 && o.vf_coef >= 0 && o.beta >= 0 && o.gamma > 0 &&
                 o.gamma <= 1 && o.lam >= 0 && o.lam <= 1 && o.max_grad_norm >= 0,
             str(cmd, ": an RL coefficient is out of range"),
             "--lr, --cliprange and --cliprange-value > 0; --vf-coef, --beta >= 0; --gamma in (0, 1]; --lam in [0, 1]");
  SLLM_CHECK(o.reward.rfind("rm:", 0) == 0 || o.reward == "verifier" || o.reward.rfind("verifier:", 0) == 0,
             str(cmd, ": --reward must be rm:DIR, verifier:NAME or verifier, got '", o.reward, "'"),
             str("rm:RUN scores with a reward model (sllm reward train); verifier:NAME with a rule (",
                 [] {
                   std::string s;
                   for (const std::string& n : verifier_names()) s += (s.empty() ? "" : ", ") + n;
                   return s;
                 }(),
                 "); verifier alone uses each prompt line's \"verifier\" field"));
  SLLM_CHECK(o.value_model == "policy" || o.reward.rfind("rm:", 0) == 0 || o.algorithm == "grpo",
             str(cmd, ": --value-model rm needs --reward rm:DIR"), "the critic starts from the reward model");
}

// Seeds of one iteration's rollouts: a pure function of (seed, iteration, row), so a resumed
// run draws the same samples without storing generator state.
uint64_t mix_seed(uint64_t seed, int64_t a, int64_t b) {
  uint64_t x = seed ^ (static_cast<uint64_t>(a) * 0x9E3779B97F4A7C15ull);
  splitmix64(x);
  x ^= static_cast<uint64_t>(b) * 0xC2B2AE3D27D4EB4Full;
  return splitmix64(x);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One iteration's rollouts, packed for the forward passes: row r is prompt + response, shifted
// for next-token prediction and right-padded to T. Only response tokens carry log-probs,
// values and advantages, so every per-token vector here is "compact": row r's n_r response
// tokens at [offset[r], offset[r] + n_r), rows in order. The forward passes compute the LM head
// (and the value head) at those positions only: the prompt's ~45 positions per row would
// otherwise cost a (T, V) head product each for nothing.
struct Rollouts {
  std::vector<int64_t> prompt_index;  // into the prompt set
  std::vector<std::vector<int32_t>> seqs;
  std::vector<int64_t> prompt_len, response_len, offset;
  std::vector<std::string> texts;  // decoded responses (without an EOS)
  int64_t R = 0, T = 0, N = 0;     // rows, padded length, response tokens in all
  std::vector<int32_t> inputs;     // (R, T)
  std::vector<int32_t> targets;    // (N): the response tokens, compact

  Tensor input_rows(const std::vector<int64_t>& rows) const {
    std::vector<int32_t> out;
    for (int64_t r : rows) out.insert(out.end(), inputs.begin() + r * T, inputs.begin() + (r + 1) * T);
    return Tensor::from_ints(out, {static_cast<int64_t>(rows.size()), T});
  }
  // The flat positions (i * T + t) of the response tokens' predictions in a (rows, T) batch of
  // these rows: input position P_r − 1 + j predicts response token j.
  Tensor positions(const std::vector<int64_t>& rows) const {
    std::vector<int32_t> out;
    for (size_t i = 0; i < rows.size(); ++i) {
      const int64_t r = rows[i];
      for (int64_t j = 0; j < response_len[size_t(r)]; ++j)
        out.push_back(static_cast<int32_t>(static_cast<int64_t>(i) * T + prompt_len[size_t(r)] - 1 + j));
    }
    return Tensor::from_ints(out, {static_cast<int64_t>(out.size())});
  }
  // The rows' segments of a compact per-token vector, in the order of `rows`.
  template <class V>
  V gather(const V& all, const std::vector<int64_t>& rows) const {
    V out;
    for (int64_t r : rows)
      out.insert(out.end(), all.begin() + offset[size_t(r)], all.begin() + offset[size_t(r)] + response_len[size_t(r)]);
    return out;
  }
  Tensor target_rows(const std::vector<int64_t>& rows) const {
    const std::vector<int32_t> t = gather(targets, rows);
    return Tensor::from_ints(t, {static_cast<int64_t>(t.size())});
  }
};

void pack(Rollouts& ro) {
  ro.R = static_cast<int64_t>(ro.seqs.size());
  ro.T = 0;
  for (const auto& s : ro.seqs) ro.T = std::max<int64_t>(ro.T, static_cast<int64_t>(s.size()) - 1);
  ro.inputs.assign(static_cast<size_t>(ro.R * ro.T), 0);
  ro.targets.clear();
  ro.offset.clear();
  for (int64_t r = 0; r < ro.R; ++r) {
    const auto& s = ro.seqs[size_t(r)];
    std::copy(s.begin(), s.end() - 1, ro.inputs.begin() + r * ro.T);
    ro.offset.push_back(static_cast<int64_t>(ro.targets.size()));
    ro.targets.insert(ro.targets.end(), s.begin() + ro.prompt_len[size_t(r)], s.end());
  }
  ro.N = static_cast<int64_t>(ro.targets.size());
}

std::vector<int64_t> iota_rows(int64_t from, int64_t to) {
  std::vector<int64_t> v;
  for (int64_t i = from; i < to; ++i) v.push_back(i);
  return v;
}

std::vector<float> host_floats(const Tensor& t) {
  const Tensor h = t.device() == Device::CPU ? t : t.to(Device::CPU);
  return std::vector<float>(h.f32(), h.f32() + h.numel());
}

// The policy being trained, its reference, and PPO's value function.
class Policy {
 public:
  Policy(const RlOptions& o, const train::ResumePoint* resume, Device device) : o_(o) {
    infer::InferenceSpec spec;
    spec.model = o.model_dir;
    spec.with_tokenizer = true;
    spec.device = Device::CPU;
    base_ = infer::load_inference_model(spec);
    SLLM_CHECK(base_.tokenizer.has_value(), str(o.model_dir, " has no tokenizer.json"),
               "RL needs the policy's tokenizer to decode responses: use a directory written by sllm");
    if (o.method == "full") {
      if (resume) io::load_weights(model(), (resume->dir / "model.safetensors").string());
      reference_ = io::load_model(base_.dir);  // the frozen copy
      reference_->set_trainable(false);
      reference_->to(device);
      model().set_trainable(true);
    }
    model().to(device);
    if (o.method == "lora") {
      lora_ = std::make_unique<lora::LoraModel>(model());
      if (resume) {
        lora::load_adapter(*lora_, resume->dir.string());
      } else {
        lora::LoraConfig cfg;
        cfg.r = o.lora_r;
        cfg.lora_alpha = static_cast<float>(o.lora_alpha);
        cfg.lora_dropout = 0.0f;  // no dropout: the update's first ratio must be exactly 1
        cfg.target_modules = lora::parse_targets(o.lora_targets);
        cfg.seed = o.seed;
        lora_->add_adapter("default", cfg);
      }
      lora_->set_training(false);
    }
    if (o.algorithm == "ppo" && o.value_model == "policy") {
      const int64_t C = model().config().n_embd;
      v_weight_ = Tensor::zeros({1, C}, DType::F32);
      v_bias_ = Tensor::zeros({1}, DType::F32);
      if (resume) {
        const io::SafetensorsFile f = io::SafetensorsFile::open((resume->dir / "value_head.safetensors").string());
        read_into(f, "v_head.weight", v_weight_);
        read_into(f, "v_head.bias", v_bias_);
      }
      v_weight_ = v_weight_.to(device);
      v_bias_ = v_bias_.to(device);
      v_weight_.set_requires_grad(true);
      v_bias_.set_requires_grad(true);
    }
  }

  nn::Transformer& model() { return *base_.model; }
  const tokenizer::Tokenizer& tokenizer() const { return *base_.tokenizer; }
  const std::string& dir() const { return base_.dir; }
  std::vector<int32_t> stop_ids() const { return infer::text_stop_ids(base_); }
  void set_critic(std::unique_ptr<RewardModel> critic) { critic_ = std::move(critic); }
  bool has_values() const { return v_weight_.defined() || critic_ != nullptr; }

  std::vector<optim::ParamRef> trainable() {
    std::vector<optim::ParamRef> out;
    if (lora_) {
      for (const nn::Parameter& p : lora_->parameters()) out.push_back({p.name, p.value, false});
    } else {
      for (const nn::Parameter& p : model().parameters())
        if (p.value.requires_grad()) out.push_back({p.name, p.value, optim::default_decay(p.name, p.value)});
    }
    if (v_weight_.defined()) {
      out.push_back({"v_head.weight", v_weight_, false});
      out.push_back({"v_head.bias", v_bias_, false});
    }
    if (critic_) {
      for (const nn::Parameter& p : critic_->trunk().parameters())
        out.push_back({"critic." + p.name, p.value, optim::default_decay(p.name, p.value)});
      out.push_back({"critic.score.weight", critic_->score_weight(), false});
    }
    return out;
  }

  // At the response positions `pos` (flat indices into the (B, T) batch, rollouts.positions):
  // log π(target) (N) and, when asked, V (N); logits_out gets the (N, V) logits.
  std::pair<Tensor, Tensor> forward(const Tensor& ids, const Tensor& pos, const Tensor& targets, bool values,
                                    Tensor* logits_out = nullptr) {
    const Tensor h = model().hidden(ids);
    const Tensor rows = ops::index_select(ops::reshape(h, {h.dim(0) * h.dim(1), h.dim(2)}), pos);  // (N, C)
    Tensor v;
    if (values && v_weight_.defined())
      v = ops::reshape(ops::linear(rows, v_weight_, v_bias_), {pos.dim(0)});
    else if (values && critic_)
      v = ops::reshape(ops::index_select(ops::reshape(critic_->token_scores(ids), {h.dim(0) * h.dim(1), 1}), pos),
                       {pos.dim(0)});
    return {head_logp(rows, model().lm_head_weight(), targets, logits_out), v};
  }

  // log π_ref(target) (N) at the same positions, without gradients.
  Tensor reference_logp(const Tensor& ids, const Tensor& pos, const Tensor& targets) {
    autograd::NoGradGuard no_grad;
    if (!reference_) {
      auto off = lora_->disabled();
      return forward(ids, pos, targets, false).first;
    }
    const Tensor h = reference_->hidden(ids);
    const Tensor rows = ops::index_select(ops::reshape(h, {h.dim(0) * h.dim(1), h.dim(2)}), pos);
    return head_logp(rows, reference_->lm_head_weight(), targets, nullptr);
  }

  // The checkpoint's model files: the adapter (PEFT) or the whole model, plus the value head
  // or the critic.
  void write(const std::string& dir) {
    if (lora_)
      lora::save_adapter(*lora_, dir, base_.dir);
    else
      io::save_model(model(), dir);
    if (v_weight_.defined()) {
      const std::vector<float> w = host_floats(v_weight_), b = host_floats(v_bias_);
      io::SafetensorsWriter writer;
      writer.add("v_head.bias", "F32", {1}, b.data(), b.size() * sizeof(float));
      writer.add("v_head.weight", "F32", {1, static_cast<int64_t>(w.size())}, w.data(), w.size() * sizeof(float));
      writer.write((fs::path(dir) / "value_head.safetensors").string());
    }
    if (critic_) critic_->save((fs::path(dir) / "critic").string());
  }

 private:
  // log softmax(rows · Wᵀ)[target] per row: (N, C) hidden rows → (N).
  static Tensor head_logp(const Tensor& rows, const Tensor& head, const Tensor& targets, Tensor* logits_out) {
    const int64_t N = rows.dim(0);
    const Tensor logits = ops::linear(rows, head);  // (N, V)
    if (logits_out) *logits_out = logits;
    const Tensor nll = ops::cross_entropy_per_token(ops::reshape(logits, {1, N, logits.dim(1)}), ops::reshape(targets, {1, N}));
    return ops::scale(ops::reshape(nll, {N}), -1.0f);
  }

  static void read_into(const io::SafetensorsFile& f, const std::string& name, Tensor& t) {
    const io::SafetensorsEntry& e = f.get(name);
    SLLM_CHECK(e.dtype == "F32" && static_cast<int64_t>(e.nbytes) == t.numel() * 4,
               str(f.path(), ": ", name, " has the wrong dtype or size"), "resume with the model the run started from");
    std::memcpy(t.mutable_f32(), e.data, e.nbytes);
  }

  const RlOptions& o_;
  infer::InferenceModel base_;
  std::unique_ptr<lora::LoraModel> lora_;
  std::unique_ptr<nn::Transformer> reference_;
  std::unique_ptr<RewardModel> critic_;
  Tensor v_weight_, v_bias_;
};

// Scores responses: a reward model on prompt + response, or a verifier on the decoded text.
class RewardSource {
 public:
  RewardSource(const RlOptions& o, const tokenizer::Tokenizer& policy_tok, Device device) {
    if (o.reward.rfind("rm:", 0) == 0) {
      rm_dir_ = o.reward.substr(3);
      rm_ = std::make_unique<RewardModel>(RewardModel::load(rm_dir_));
      check_same_tokenizer(policy_tok, rm_->tokenizer_path(), rm_dir_);
      rm_->trunk().set_trainable(false);
      rm_->score_weight().set_requires_grad(false);
      rm_->to(device);
    } else {
      verifier_override_ = o.reward.size() > 9 ? o.reward.substr(9) : "";
      if (!verifier_override_.empty()) make_verifier(verifier_override_);  // unknown name: error now
    }
  }
  const std::string& rm_dir() const { return rm_dir_; }

  std::vector<float> score(const Rollouts& ro, const PromptSet& prompts) {
    std::vector<float> out;
    if (rm_) {
      for (float s : rm_->score(ro.seqs)) out.push_back(s);
    } else {
      for (int64_t r = 0; r < ro.R; ++r) {
        const json& ex = prompts.prompts[size_t(ro.prompt_index[size_t(r)])].example;
        const std::string name = verifier_name_for(ex, verifier_override_);
        auto it = verifiers_.find(name);
        if (it == verifiers_.end()) it = verifiers_.emplace(name, make_verifier(name)).first;
        out.push_back(static_cast<float>(it->second->reward(ex, ro.texts[size_t(r)])));
      }
    }
    return out;
  }
  bool is_verifier() const { return rm_ == nullptr; }

 private:
  static void check_same_tokenizer(const tokenizer::Tokenizer& policy, const std::string& rm_tok_path, const std::string& dir) {
    SLLM_CHECK(!rm_tok_path.empty(), str("the reward model ", dir, " has no tokenizer.json"),
               "policy and reward model must share a tokenizer; train the reward model from the policy's SFT model");
    const tokenizer::Tokenizer rm = tokenizer::Tokenizer::load(rm_tok_path);
    bool same = rm.vocab_size() == policy.vocab_size();
    for (int32_t id = 0; same && id < policy.vocab_size(); ++id) same = rm.decode({id}) == policy.decode({id});
    SLLM_CHECK(same, str("tokenizer mismatch: the reward model ", dir, " (", rm.vocab_size(), " tokens) and the policy (",
                         policy.vocab_size(), " tokens) do not share a vocabulary"),
               "the reward model scores the policy's token ids: train it from the same base (sllm reward train --model SFT)");
  }

  std::unique_ptr<RewardModel> rm_;
  std::string rm_dir_, verifier_override_;
  std::map<std::string, std::unique_ptr<Verifier>> verifiers_;
};

double mean_of(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

double std_of(const std::vector<float>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (float x : v) s += (x - m) * (x - m);
  return v.size() < 2 ? 0.0 : std::sqrt(s / static_cast<double>(v.size()));
}

// The policy's entropy summed over rows of (N, V) logits (the response positions).
double entropy_sum(const Tensor& logits) {
  const Tensor h = logits.device() == Device::CPU ? logits : logits.to(Device::CPU);
  const int64_t V = h.dim(1);
  double total = 0;
  for (int64_t i = 0; i < h.dim(0); ++i) {
    const float* row = h.f32() + i * V;
    double mx = row[0];
    for (int64_t v = 1; v < V; ++v) mx = std::max<double>(mx, row[v]);
    double z = 0, zl = 0;
    for (int64_t v = 0; v < V; ++v) {
      const double e = std::exp(row[v] - mx);
      z += e;
      zl += e * (row[v] - mx);
    }
    total += std::log(z) - zl / z;  // H = log Z − E[logit − max]
  }
  return total;
}

}  // namespace

RlResult train_policy(const RlOptions& options) {
  RlOptions o = options;
  check_options(o);
  const std::string cmd = "sllm " + o.algorithm;
  // Its own loop (rollouts, then updates) has no data-parallel path: N copies would each
  // train alone and write the same run directory.
  SLLM_CHECK(dist::world().size() == 1,
             str(cmd, ": data-parallel training on ", dist::world().size(), " ranks is built for pretrain, sft, dpo and reward train only"),
             "run this command as one process (without mpirun)");
  const std::optional<train::ResumePoint> resume = train::find_resume_point(o.out_dir, o.resume, o.steps);
  if (resume) {
    from_math_options(resume->options, o);
    check_options(o);
  }
  const bool ppo = o.algorithm == "ppo";
  const Device device = ops::parse_device(o.device);
  ops::init_device(device);

  Policy policy(o, resume ? &*resume : nullptr, device);
  nn::Transformer& model = policy.model();
  const tokenizer::Tokenizer& tok = policy.tokenizer();
  RewardSource rewards(o, tok, device);
  if (ppo && o.value_model == "rm") {
    auto critic = std::make_unique<RewardModel>(
        RewardModel::load(resume ? (resume->dir / "critic").string() : rewards.rm_dir()));
    critic->to(device);
    critic->trunk().set_trainable(true);
    critic->score_weight().set_requires_grad(true);
    policy.set_critic(std::move(critic));
  }
  PromptSetOptions popt;
  popt.chat_template = data::parse_sft_template(o.chat_template);
  popt.n_ctx = model.config().n_ctx;
  popt.max_new_tokens = o.max_new_tokens;
  const PromptSet prompts = load_prompts(o.prompts_path, tok, popt);
  if (prompts.cut_short > 0 && !o.quiet)
    std::fprintf(stderr, "%s: warning: %lld of %zu prompts leave fewer than --max-new-tokens %lld positions in the "
                 "context (%lld); their responses end at the context\n", cmd.c_str(), static_cast<long long>(prompts.cut_short),
                 prompts.prompts.size(), static_cast<long long>(o.max_new_tokens), static_cast<long long>(popt.n_ctx));
  PromptLoader loader(static_cast<int64_t>(prompts.prompts.size()), o.seed);
  KLController kl_ctl(o.kl_coef, o.target_kl, o.kl_horizon);

  const std::vector<optim::ParamRef> params = policy.trainable();
  optim::AdamWConfig acfg;
  acfg.weight_decay = static_cast<float>(o.weight_decay);
  optim::AdamW opt(params, acfg);
  int64_t start = 0;
  if (resume) {
    train::load_optimizer_state(resume->dir, opt);
    try {
      loader.restore(resume->data_state.at("prompts"));
      kl_ctl.restore(resume->data_state.at("kl_controller"));
    } catch (const Error& e) {
      train::fail_damaged_state(*resume, e.message());
    } catch (const std::exception& e) {
      train::fail_damaged_state(*resume, e.what());
    }
    start = resume->step;
  } else {
    fs::create_directories(o.out_dir);
  }
  const fs::path run = o.out_dir;
  train::remove_crash_litter(run);
  train::truncate_metrics(run / "metrics.jsonl", start);
  std::ofstream metrics(run / "metrics.jsonl", std::ios::app);
  SLLM_CHECK(metrics.good(), str("cannot open ", (run / "metrics.jsonl").string()), "check permissions");

  infer::BatchGenerateOptions gen;
  gen.max_new_tokens = o.max_new_tokens;
  gen.sampling.temperature = static_cast<float>(o.temperature);
  gen.sampling.top_k = o.top_k;
  gen.sampling.top_p = static_cast<float>(o.top_p);
  gen.sampling.vocab_limit = tok.vocab_size();
  infer::validate(gen.sampling);
  gen.stop_ids = policy.stop_ids();
  SLLM_CHECK(!gen.stop_ids.empty() || !o.stop.empty(), str(cmd, ": the tokenizer has no end-of-text token"),
             "give --stop STRING so that responses can end before --max-new-tokens");

  const int64_t G = ppo ? 1 : o.num_generations;
  const int64_t end = o.stop_at > 0 ? std::min(o.stop_at, o.steps) : o.steps;
  ProgressBar bar(o.steps, start);
  RlResult result;
  // Rows are computed independently of how many run with them (batch_generate.h), so the
  // update's first forward repeats the rollout policy's log-probs bit for bit: ratio 1.
  kernels::RowInvariantGemm row_invariant;
  for (int64_t it = start + 1; it <= end; ++it) {
    // 1. rollout
    auto t0 = std::chrono::steady_clock::now();
    Rollouts ro;
    std::vector<std::vector<int32_t>> gen_prompts;
    for (int64_t p : loader.next(o.batch))
      for (int64_t g = 0; g < G; ++g) {
        ro.prompt_index.push_back(p);
        gen_prompts.push_back(prompts.prompts[size_t(p)].ids);
      }
    gen.seeds.clear();
    for (size_t r = 0; r < gen_prompts.size(); ++r) gen.seeds.push_back(mix_seed(o.seed, it, static_cast<int64_t>(r)));
    if (!o.stop.empty())
      gen.stop_check = [&tok, &o](size_t, const std::vector<int32_t>& t) {
        return tok.decode(t).find(o.stop) != std::string::npos;
      };
    std::vector<infer::GeneratedRow> rows = infer::generate_batch(model, gen_prompts, gen);
    int64_t new_tokens = 0, eos_ended = 0;
    for (size_t r = 0; r < rows.size(); ++r) {
      std::vector<int32_t> seq = gen_prompts[r];
      seq.insert(seq.end(), rows[r].tokens.begin(), rows[r].tokens.end());
      ro.texts.push_back(tok.decode(rows[r].tokens));
      if (rows[r].reason == infer::StopReason::StopToken) {  // the end token is part of the response: π learns to stop
        seq.push_back(gen.stop_ids.front());
        ++eos_ended;
      }
      ro.prompt_len.push_back(static_cast<int64_t>(gen_prompts[r].size()));
      ro.response_len.push_back(static_cast<int64_t>(seq.size()) - ro.prompt_len.back());
      new_tokens += ro.response_len.back();
      ro.seqs.push_back(std::move(seq));
    }
    pack(ro);
    const double rollout_s = seconds_since(t0);

    // 2. reward
    t0 = std::chrono::steady_clock::now();
    const std::vector<float> scores = rewards.score(ro, prompts);
    for (size_t r = 0; r < scores.size(); ++r)
      SLLM_CHECK(std::isfinite(scores[r]),
                 str(cmd, ": the reward of rollout ", r, " at iteration ", it, " is ", scores[r], "; the run stops here"),
                 str("nothing of iteration ", it, " was saved: the run's latest checkpoint is its last good state; check ",
                     "the reward model (", o.reward, "), then resume"));
    const double reward_s = seconds_since(t0);

    // 3. reference and 4. value (the rollout policy's log-probs and values), in minibatches.
    const int64_t R = ro.R, mb = std::min(o.mini_batch_size, R);
    std::vector<float> ref_logp, old_logp, old_values;
    double reference_s = 0, value_s = 0, entropy_total = 0;
    for (int64_t r0 = 0; r0 < R; r0 += mb) {
      const std::vector<int64_t> rows_idx = iota_rows(r0, std::min(R, r0 + mb));
      const Tensor ids = ro.input_rows(rows_idx), pos = ro.positions(rows_idx), targets = ro.target_rows(rows_idx);
      t0 = std::chrono::steady_clock::now();
      const std::vector<float> ref = host_floats(policy.reference_logp(ids, pos, targets));
      reference_s += seconds_since(t0);
      t0 = std::chrono::steady_clock::now();
      autograd::NoGradGuard no_grad;
      Tensor logits;
      const auto [lp, v] = policy.forward(ids, pos, targets, ppo, &logits);
      entropy_total += entropy_sum(logits);
      const std::vector<float> lpv = host_floats(lp);
      ref_logp.insert(ref_logp.end(), ref.begin(), ref.end());
      old_logp.insert(old_logp.end(), lpv.begin(), lpv.end());
      if (ppo) {
        const std::vector<float> vv = host_floats(v);
        old_values.insert(old_values.end(), vv.begin(), vv.end());
      }
      value_s += seconds_since(t0);
    }

    // 5. advantages, per response token (compact, as the rollouts' vectors)
    const int64_t N = ro.N;
    std::vector<float> advantages(static_cast<size_t>(N), 0.0f), returns(advantages);
    std::vector<double> kl_seq(size_t(R), 0.0);
    double kl_k3_sum = 0;
    for (int64_t r = 0; r < R; ++r)
      for (int64_t j = 0; j < ro.response_len[size_t(r)]; ++j) {
        const size_t i = size_t(ro.offset[size_t(r)] + j);
        kl_seq[size_t(r)] += kl_k1(old_logp[i], ref_logp[i]);
        kl_k3_sum += kl_k3(old_logp[i], ref_logp[i]);
      }
    if (ppo) {
      std::vector<float> rewards_t(static_cast<size_t>(N));
      for (int64_t i = 0; i < N; ++i)
        rewards_t[size_t(i)] = static_cast<float>(-kl_ctl.beta() * kl_k1(old_logp[size_t(i)], ref_logp[size_t(i)]));
      for (int64_t r = 0; r < R; ++r) {
        const int64_t at = ro.offset[size_t(r)], n = ro.response_len[size_t(r)];
        rewards_t[size_t(at + n - 1)] += scores[size_t(r)];  // the score rewards the whole response, at its last token
        gae(rewards_t.data() + at, old_values.data() + at, n, o.gamma, o.lam, advantages.data() + at, returns.data() + at);
      }
      whiten(advantages);
    } else {
      const std::vector<float> group = group_advantages(scores, G);
      for (int64_t r = 0; r < R; ++r)
        for (int64_t j = 0; j < ro.response_len[size_t(r)]; ++j)
          advantages[size_t(ro.offset[size_t(r)] + j)] = group[size_t(r)];
    }

    // 6. update
    t0 = std::chrono::steady_clock::now();
    double pg_sum = 0, vf_sum = 0, clip_sum = 0, vclip_sum = 0, akl_sum = 0, grad_norm_sum = 0, first_ratio = 0,
           first_clipfrac = 0;
    int64_t updates = 0;
    for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
      std::vector<int64_t> order = iota_rows(0, R);
      Rng shuffle_rng(mix_seed(o.seed ^ 0x5eedULL, it, epoch));
      for (int64_t i = R - 1; i > 0; --i) std::swap(order[size_t(i)], order[size_t(shuffle_rng.below(uint64_t(i + 1)))]);
      if (epoch == 0) order = iota_rows(0, R);  // the first pass in rollout order: its first minibatch is the rollout's
      for (int64_t r0 = 0; r0 < R; r0 += mb) {
        const std::vector<int64_t> rows_idx(order.begin() + r0, order.begin() + std::min(R, r0 + mb));
        const std::vector<float> old_mb = ro.gather(old_logp, rows_idx), ref_mb = ro.gather(ref_logp, rows_idx);
        const std::vector<float> mask(old_mb.size(), 1.0f);  // every compact entry is a response token
        const auto [lp, v] = policy.forward(ro.input_rows(rows_idx), ro.positions(rows_idx), ro.target_rows(rows_idx), ppo);
        const PolicyLoss pl = clipped_policy_loss(lp, old_mb, ro.gather(advantages, rows_idx), mask, o.cliprange,
                                                  ppo ? nullptr : &ref_mb, o.beta);
        Tensor loss = pl.loss;
        if (ppo) {
          const ValueLoss vl = clipped_value_loss(v, ro.gather(old_values, rows_idx), ro.gather(returns, rows_idx), mask,
                                                  o.cliprange_value);
          loss = ops::add(loss, ops::scale(vl.loss, static_cast<float>(o.vf_coef)));
          vf_sum += vl.loss.item();
          vclip_sum += vl.clipfrac;
        }
        if (updates == 0) {
          first_ratio = pl.ratio_mean;
          first_clipfrac = pl.clipfrac;
        }
        pg_sum += pl.loss.item();
        clip_sum += pl.clipfrac;
        akl_sum += pl.approx_kl;
        autograd::backward(loss);
        const optim::ClipScale clip = optim::clip_scale(params, o.max_grad_norm);
        grad_norm_sum += clip.norm;
        opt.step(static_cast<float>(o.lr), clip.scale);
        opt.zero_grad();
        ++updates;
      }
    }
    const double update_s = seconds_since(t0);

    // KL and the controller (PPO), metrics, checkpoint.
    double kl_mean = 0;
    for (double k : kl_seq) kl_mean += k;
    kl_mean /= static_cast<double>(R);
    const double beta_used = kl_ctl.beta();
    if (ppo) kl_ctl.update(kl_mean, R);
    const double reward_mean = mean_of(scores), n_upd = static_cast<double>(updates);
    if (it == start + 1) result.first_reward = reward_mean;
    result.last_reward = reward_mean;
    result.last_step = it;
    json line{{"step", it},
              {"reward_mean", reward_mean},
              {"reward_std", std_of(scores)},
              {"kl", kl_mean},
              {"kl_per_token", kl_mean * static_cast<double>(R) / static_cast<double>(N)},
              {"kl_k3_per_token", kl_k3_sum / static_cast<double>(N)},
              {"policy_loss", pg_sum / n_upd},
              {"clipfrac", clip_sum / n_upd},
              {"approx_kl", akl_sum / n_upd},
              {"first_ratio", first_ratio},
              {"first_clipfrac", first_clipfrac},
              {"grad_norm", grad_norm_sum / n_upd},
              {"entropy", entropy_total / static_cast<double>(N)},
              {"response_length", static_cast<double>(new_tokens) / static_cast<double>(R)},
              {"eos_fraction", static_cast<double>(eos_ended) / static_cast<double>(R)},
              {"lr", o.lr},
              {"rollout_tokens_per_s", static_cast<double>(new_tokens) / rollout_s},
              {"update_tokens_per_s", static_cast<double>(new_tokens * o.epochs) / update_s},
              {"time_rollout_s", rollout_s},
              {"time_reward_s", reward_s},
              {"time_reference_s", reference_s},
              {"time_value_s", value_s},
              {"time_update_s", update_s},
              // The process's peak so far (CPU: peak RSS; CUDA: the allocator's peak), as the
              // training loop logs it; not bit-exact across a resume.
              {"peak_mem_bytes", ops::peak_memory_bytes(device)}};
    if (rewards.is_verifier()) line["pass_rate"] = reward_mean;
    if (ppo) {
      line["beta"] = beta_used;
      line["value_loss"] = vf_sum / n_upd;
      line["vf_clipfrac"] = vclip_sum / n_upd;
    } else {
      line["beta"] = o.beta;
    }
    metrics << line.dump() << "\n";
    metrics.flush();
    if (!o.quiet) {
      char fields[200];
      std::snprintf(fields, sizeof fields, "reward %.3f | kl %.3f | rollout %.1fs ref %.1fs value %.1fs update %.1fs",
                    reward_mean, kl_mean, rollout_s, reference_s, value_s, update_s);
      bar.update(it, fields);
    }
    if ((o.save_every > 0 && it % o.save_every == 0) || it == end) {
      const json state{{"step", it},
                       {"total_steps", o.steps},
                       {"options", math_options(o)},
                       {"config", policy.dir()},
                       {"loader", {{"prompts", loader.state()}, {"kl_controller", kl_ctl.state()}}},
                       {"threads", omp_get_max_threads()}};
      train::save_checkpoint(run, it, model, opt, &tok, state, [&policy](const std::string& dir) { policy.write(dir); });
    }
  }
  if (!o.quiet) bar.finish();
  return result;
}

}  // namespace sllm::rl
