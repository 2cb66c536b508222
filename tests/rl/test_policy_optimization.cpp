// sllm ppo / grpo end to end on a tiny GPT-2 (src/rl/policy_optimization.h): on a toy task
// with a verifier reward both raise the reward within seconds; the first minibatch of every
// update sees probability ratio exactly 1 and clip fraction 0; a resumed run repeats an
// uninterrupted one bit for bit; bad input (unknown verifier, empty or overlong prompts, a
// reward model with another tokenizer, a NaN reward) stops with a clear error and leaves the
// last checkpoint intact.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/model_files.h"
#include "nn/config.h"
#include "nn/transformer.h"
#include "rl/policy_optimization.h"
#include "rl/reward_model.h"
#include "tokenizer/tokenizer.h"

namespace sllm::rl {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("sllm_rl_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

tokenizer::Tokenizer toy_tokenizer(const std::string& text = "the cat sat on the mat. a dog ran! is it? yes.") {
  return tokenizer::Tokenizer::train({text}, 256 + 10 + 1, "gpt2");
}

// A tiny GPT-2 (V 512, n_ctx 64, C 32) with GPT-2's init and a byte-level tokenizer: its
// samples are nearly uniform bytes, a quarter of them letters or digits.
fs::path tiny_policy(const fs::path& root) {
  const fs::path dir = root / "policy";
  nn::Transformer model(nn::preset("tiny"));
  model.init(3);
  io::save_model(model, dir.string());
  toy_tokenizer().save(dir.string());
  return dir;
}

// The toy task: "sentence-count" 0, i.e. a one-token response without a letter or digit (or
// just the end of text). The random policy passes about a quarter of the time (most of its
// 267 tokens hold a letter, a digit or a non-ASCII byte); a policy that learns which tokens
// fail passes every time.
fs::path toy_prompts(const fs::path& root, const std::string& prompt = "the cat") {
  fs::create_directories(root);
  const fs::path path = root / "prompts.jsonl";
  std::ofstream f(path);
  for (int i = 0; i < 16; ++i) f << json{{"prompt", prompt}, {"sentences", 0}, {"verifier", "sentence-count"}}.dump() << "\n";
  return path;
}

RlOptions toy_options(const std::string& algorithm, const fs::path& root, const std::string& out) {
  RlOptions o;
  o.algorithm = algorithm;
  o.model_dir = tiny_policy(root).string();
  o.prompts_path = toy_prompts(root).string();
  o.reward = "verifier";
  o.out_dir = (root / out).string();
  o.chat_template = "none";
  o.method = "full";
  o.steps = 10;
  o.batch = algorithm == "ppo" ? 16 : 4;
  o.num_generations = 4;
  o.mini_batch_size = 8;
  o.epochs = 2;
  o.max_new_tokens = 1;
  o.lr = 3e-2;  // a tiny model far from any optimum: the reward saturates within ~5 iterations
  o.kl_coef = 0.01;
  o.beta = 0.01;
  o.quiet = true;
  return o;
}

std::vector<json> read_metrics(const std::string& run) {
  std::vector<json> lines;
  std::ifstream f(fs::path(run) / "metrics.jsonl");
  for (std::string line; std::getline(f, line);) lines.push_back(json::parse(line));
  return lines;
}

double mean_reward(const std::vector<json>& m, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += m[i]["reward_mean"].get<double>();
  return s / static_cast<double>(to - from);
}

void expect_reward_rises(const std::string& algorithm) {
  const fs::path root = temp_dir("toy_" + algorithm);
  const RlOptions o = toy_options(algorithm, root, "run");
  train_policy(o);
  const std::vector<json> m = read_metrics(o.out_dir);
  ASSERT_EQ(m.size(), 10u);
  const double first = mean_reward(m, 0, 3), last = mean_reward(m, 7, 10);
  EXPECT_GT(last, first + 0.3) << algorithm << ": reward " << first << " -> " << last;
  for (const json& line : m) {
    // The first minibatch of each update is scored by the policy that sampled it.
    EXPECT_EQ(line["first_ratio"].get<double>(), 1.0) << line.dump();
    EXPECT_EQ(line["first_clipfrac"].get<double>(), 0.0) << line.dump();
    for (const char* key : {"reward_std", "kl", "clipfrac", "approx_kl", "entropy", "response_length", "pass_rate",
                            "rollout_tokens_per_s", "update_tokens_per_s", "time_rollout_s", "time_reference_s",
                            "time_value_s", "time_update_s"})
      EXPECT_TRUE(line.contains(key)) << key;
    if (algorithm == "ppo") {
      EXPECT_TRUE(line.contains("value_loss"));
    }
  }
  fs::remove_all(root);
}

TEST(PolicyOptimization, PpoRaisesTheRewardOnAToyTask) { expect_reward_rises("ppo"); }
TEST(PolicyOptimization, GrpoRaisesTheRewardOnAToyTask) { expect_reward_rises("grpo"); }

std::string file_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// metrics.jsonl without the wall-clock figures.
std::vector<json> deterministic_metrics(const std::string& run) {
  std::vector<json> m = read_metrics(run);
  for (json& line : m)
    for (const char* key : {"rollout_tokens_per_s", "update_tokens_per_s", "time_rollout_s", "time_reward_s",
                            "time_reference_s", "time_value_s", "time_update_s", "peak_mem_bytes"})
      line.erase(key);
  return m;
}

TEST(PolicyOptimization, ResumeRepeatsAnUninterruptedRunBitForBit) {
  for (const std::string method : {"lora", "full"}) {
    const fs::path root = temp_dir("resume_" + method);
    RlOptions o = toy_options("ppo", root, "straight");
    o.method = method;
    o.steps = 4;
    o.batch = 8;
    o.target_kl = 0.5;  // the adaptive controller's state crosses the checkpoint too
    train_policy(o);
    RlOptions a = o;
    a.out_dir = (root / "resumed").string();
    a.stop_at = 2;
    train_policy(a);
    a.stop_at = 0;
    a.resume = true;
    a.lr = 1.0;  // ignored: a resumed run takes the checkpoint's options
    train_policy(a);
    EXPECT_EQ(deterministic_metrics(o.out_dir), deterministic_metrics(a.out_dir)) << method;
    const fs::path s = fs::path(o.out_dir) / "ckpt-4", r = fs::path(a.out_dir) / "ckpt-4";
    for (const char* f : {"optimizer.safetensors", "value_head.safetensors"})
      EXPECT_EQ(file_bytes(s / f), file_bytes(r / f)) << method << " " << f;
    const char* weights = method == "lora" ? "adapter_model.safetensors" : "model.safetensors";
    EXPECT_EQ(file_bytes(s / weights), file_bytes(r / weights)) << method;
    fs::remove_all(root);
  }
}

void expect_error(const RlOptions& o, const std::string& needle) {
  try {
    train_policy(o);
    ADD_FAILURE() << "no error; expected one mentioning " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(PolicyOptimization, BadInputIsAClearError) {
  const fs::path root = temp_dir("bad");
  RlOptions o = toy_options("ppo", root, "run");
  o.steps = 1;
  {
    RlOptions b = o;
    b.reward = "verifier:no-such-rule";
    expect_error(b, "no-such-rule");
  }
  {
    RlOptions b = o;
    std::ofstream(root / "empty.jsonl") << json{{"prompt", ""}}.dump() << "\n";
    b.prompts_path = (root / "empty.jsonl").string();
    expect_error(b, "empty.jsonl:1");
  }
  {
    RlOptions b = o;
    std::string long_prompt;
    for (int i = 0; i < 80; ++i) long_prompt += "the cat ";
    b.prompts_path = toy_prompts(root / "long", long_prompt).string();
    expect_error(b, "context");
  }
  {  // a reward model with another tokenizer
    const fs::path rm = root / "rm";
    RewardModel::from_language_model(o.model_dir, 1).save(rm.string());
    toy_tokenizer("completely different words here").save(rm.string());
    RlOptions b = o;
    b.reward = "rm:" + rm.string();
    expect_error(b, "tokenizer mismatch");
  }
  EXPECT_FALSE(fs::exists(fs::path(o.out_dir) / "latest"));
  fs::remove_all(root);
}

TEST(PolicyOptimization, NanRewardStopsTheRunAndKeepsTheLastCheckpoint) {
  const fs::path root = temp_dir("nan");
  const fs::path rm = root / "rm";
  RlOptions o = toy_options("ppo", root, "run");
  RewardModel::from_language_model(o.model_dir, 1).save(rm.string());
  toy_tokenizer().save(rm.string());
  o.reward = "rm:" + rm.string();
  o.steps = 3;
  o.stop_at = 1;
  train_policy(o);
  ASSERT_EQ(file_bytes(fs::path(o.out_dir) / "latest"), "ckpt-1\n");
  const std::string adapter_before = file_bytes(fs::path(o.out_dir) / "ckpt-1" / "model.safetensors");
  // The reward model turns bad: a NaN score weight.
  RewardModel bad = RewardModel::load(rm.string());
  bad.score_weight().mutable_f32()[0] = std::nanf("");
  bad.save(rm.string());
  o.stop_at = 0;
  o.resume = true;
  expect_error(o, "is nan");
  EXPECT_EQ(file_bytes(fs::path(o.out_dir) / "latest"), "ckpt-1\n");
  EXPECT_EQ(file_bytes(fs::path(o.out_dir) / "ckpt-1" / "model.safetensors"), adapter_before);
  EXPECT_FALSE(fs::exists(fs::path(o.out_dir) / "ckpt-2"));
  fs::remove_all(root);
}

}  // namespace
}  // namespace sllm::rl
