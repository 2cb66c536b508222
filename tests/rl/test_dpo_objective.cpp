// DPO through its objective and its run (src/rl/dpo_objective.h, dpo_run.h) on
// nn::preset("tiny"): the first loss is exactly ln 2 when the policy is the reference (LoRA's
// zero B; a full run's copy), the reference is the adapter-disabled base, a toy preference is
// learned within a few seconds, and an interrupted run resumes bit for bit (full and LoRA).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "autograd/autograd.h"
#include "core/error.h"
#include "io/model_files.h"
#include "lora/lora_model.h"
#include "lora/peft_files.h"
#include "nn/config.h"
#include "nn/transformer.h"
#include "rl/dpo_objective.h"
#include "rl/dpo_run.h"
#include "tokenizer/tokenizer.h"

namespace sllm::rl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<json> metrics(const fs::path& p) {
  std::stringstream in(slurp(p));
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line);
    j.erase("tokens_per_s");  // timing
    j.erase("peak_mem_bytes");  // the process's peak RSS: a resumed run in this process differs
    lines.push_back(j);
  }
  return lines;
}

// The toy preference: asked for a thing's colour, prefer the right colour word over the
// other one. Which answer is chosen depends on the prompt, so a model that only learned to
// like one word would get half the pairs wrong.
std::string toy_pairs(int n) {
  const char* things[][2] = {{"the sky", "blue"}, {"the sea", "blue"}, {"grass", "green"}, {"a leaf", "green"}};
  std::string out;
  for (int i = 0; i < n; ++i) {
    const auto& t = things[i % 4];
    const std::string right = t[1], wrong = right == "blue" ? "green" : "blue";
    const std::string prompt = std::string("Colour of ") + t[0] + (i % 3 == 0 ? "?" : i % 3 == 1 ? " now?" : " today?");
    out += json{{"prompt", prompt}, {"chosen", " " + right + "."}, {"rejected", " " + wrong + "."}}.dump() + "\n";
  }
  return out;
}

class DpoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("sllm_dpo_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "model");
    tok_ = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::train({"Colour of the sky? the sea? grass? a leaf? now today blue. green."}, 256 + 24,
                                       "gpt2", std::vector<std::string>{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}));
    nn::Transformer model(nn::preset("tiny"));
    model.init(3);
    io::save_config(model.config(), (root_ / "model" / "config.json").string());
    io::save_weights(model, (root_ / "model" / "model.safetensors").string());
    tok_->save((root_ / "model").string());
    std::ofstream(root_ / "pairs.jsonl") << toy_pairs(24);
  }
  void TearDown() override { fs::remove_all(root_); }

  data::PreferenceDataset dataset() const {
    data::PreferenceOptions o;
    o.chat_template = data::SftTemplate::none;
    o.seq_len = 24;
    return data::PreferenceDataset::load((root_ / "pairs.jsonl").string(), *tok_, o);
  }

  DpoRunOptions options(const std::string& out) const {
    DpoRunOptions o;
    o.model_dir = (root_ / "model").string();
    o.data_path = (root_ / "pairs.jsonl").string();
    o.out_dir = (root_ / out).string();
    o.chat_template = "none";
    o.seq = 24;
    o.batch = 4;
    o.val_count = 4;
    o.lora_r = 4;
    o.lora_alpha = 8;
    o.lr = 1e-2;
    o.warmup = 0;
    o.quiet = true;
    return o;
  }

  fs::path root_;
  std::unique_ptr<tokenizer::Tokenizer> tok_;
};

// LoRA starts with B = 0, so the policy is the reference exactly: every log-ratio is 0 and
// the loss is ln 2, in training and in validation. Then the stored reference is the base's:
// moving B changes the policy's loss but not one reference value.
TEST_F(DpoTest, LoraPolicyEqualsReferenceAtStepZero) {
  const data::PreferenceDataset data = dataset();
  auto model = io::load_model((root_ / "model").string());
  lora::LoraModel lora(*model);
  lora::LoraConfig cfg;
  cfg.r = 4;
  lora.add_adapter("default", cfg);
  DpoObjective objective(data, 4, 1, data::SftValidation{0, 4}, 0, DpoSettings{});
  {
    const auto off = lora.disabled();
    objective.compute_reference(*model);
  }
  const train::MicroBatchLoss first = objective.next(*model);
  EXPECT_EQ(first.loss.item(), static_cast<float>(std::log(2.0)));
  EXPECT_EQ(first.metrics.at("margin"), 0.0);
  EXPECT_EQ(first.metrics.at("chosen_reward"), 0.0);
  {
    autograd::NoGradGuard no_grad;
    const train::Evaluation val = objective.evaluate(*model);
    EXPECT_EQ(val.loss, static_cast<float>(std::log(2.0)));
    EXPECT_EQ(val.metrics.at("accuracy"), 0.0);  // ties
  }
  std::vector<float> before;
  for (int64_t i = 0; i < data.size(); ++i) before.push_back(objective.ref_chosen(i));
  for (nn::Parameter& p : lora.parameters())
    if (p.name.find("lora_B") != std::string::npos) p.value.copy_from(Tensor::full(p.value.shape(), 0.05f));
  {
    const auto off = lora.disabled();
    objective.compute_reference(*model);
  }
  for (int64_t i = 0; i < data.size(); ++i) EXPECT_EQ(objective.ref_chosen(i), before[i]) << "pair " << i;
  EXPECT_NE(objective.next(*model).loss.item(), static_cast<float>(std::log(2.0)));
}

// Full fine-tuning: the reference is a second copy of the same weights, so the first loss is
// ln 2 as well; IPO's first loss is (0 − 1/(2β))² = 25 at β = 0.1.
TEST_F(DpoTest, FullPolicyEqualsItsCopyAtStepZero) {
  const data::PreferenceDataset data = dataset();
  auto policy = io::load_model((root_ / "model").string());
  auto reference = io::load_model((root_ / "model").string());
  DpoObjective sigmoid(data, 4, 1, data::SftValidation{0, 4}, 0, DpoSettings{});
  sigmoid.compute_reference(*reference);
  EXPECT_EQ(sigmoid.next(*policy).loss.item(), static_cast<float>(std::log(2.0)));
  DpoObjective ipo(data, 4, 1, data::SftValidation{0, 4}, 0, DpoSettings{0.1, DpoLossType::Ipo});
  ipo.compute_reference(*reference);
  // Per-token averages: every reference value is a response's mean log-prob (a few nats), not
  // the sum over its ~2-3 tokens.
  EXPECT_GT(ipo.ref_chosen(0), sigmoid.ref_chosen(0));
  EXPECT_FLOAT_EQ(ipo.next(*policy).loss.item(), 25.0f);
}

TEST_F(DpoTest, TrainsBeforeReferenceRaises) {
  const data::PreferenceDataset data = dataset();
  auto model = io::load_model((root_ / "model").string());
  DpoObjective objective(data, 4, 1, data::SftValidation{0, 4}, 0, DpoSettings{});
  EXPECT_THROW(objective.next(*model), Error);
  EXPECT_THROW(DpoObjective(data, 4, 1, data::SftValidation{0, 4}, 0, DpoSettings{0.0, DpoLossType::Sigmoid}), Error);
  EXPECT_THROW(DpoObjective(data, 0, 1, data::SftValidation{0, 4}, 0, DpoSettings{}), Error);
}

// A few seconds of DPO on the toy preference: the held-out pairs go from ties (accuracy 0,
// margin 0) to the right colour preferred, and the validation loss falls well below ln 2.
TEST_F(DpoTest, ToyPreferenceRaisesAccuracyAndMargin) {
  for (const char* method : {"lora", "full"}) {
    SCOPED_TRACE(method);
    DpoRunOptions o = options(std::string("toy-") + method);
    o.method = method;
    // Chosen by a sweep (beta 0.1 / 0.5, lr 1e-3 .. 3e-2): these reach val accuracy 1 with a
    // margin of 0.8-0.9 in 30 steps; 3x the lr collapses the tiny random model to ties.
    o.beta = 0.5;
    o.lr = std::string(method) == "lora" ? 1e-2 : 3e-3;
    o.steps = 30;
    o.eval_every = 30;
    const DpoRunResult r = dpo(o);
    EXPECT_EQ(r.train_pairs, 20);
    EXPECT_EQ(r.val_pairs, 4);
    const std::vector<json> m = metrics(fs::path(o.out_dir) / "metrics.jsonl");
    ASSERT_EQ(m.size(), 30u);
    EXPECT_EQ(m.front()["accuracy"].get<double>(), 0.0);  // step 1: policy = reference
    EXPECT_NEAR(m.front()["loss"].get<double>(), std::log(2.0), 1e-6);
    const json& last = m.back();
    EXPECT_GE(last["val_accuracy"].get<double>(), 0.99) << last.dump();
    EXPECT_GT(last["val_margin"].get<double>(), 0.5) << last.dump();
    EXPECT_GT(last["val_margin"].get<double>(), m.front()["val_margin"].get<double>()) << last.dump();
    EXPECT_LT(last["val_loss"].get<double>(), 0.8 * std::log(2.0)) << last.dump();
  }
}

TEST_F(DpoTest, FullRunResumesBitExactly) {
  DpoRunOptions stopped = options("a");
  stopped.method = "full";
  stopped.lr = 1e-3;
  stopped.steps = 5;
  stopped.grad_accum = 2;
  stopped.save_every = 1;
  stopped.eval_every = 2;
  stopped.stop_at = 2;
  EXPECT_EQ(dpo(stopped).last_step, 2);
  DpoRunOptions resumed = stopped;
  resumed.stop_at = 0;
  resumed.resume = true;
  resumed.beta = 0.5;  // ignored: the checkpoint's beta wins
  EXPECT_EQ(dpo(resumed).last_step, 5);
  DpoRunOptions straight = stopped;
  straight.stop_at = 0;
  straight.out_dir = (root_ / "b").string();
  EXPECT_EQ(dpo(straight).last_step, 5);
  for (const char* f : {"model.safetensors", "optimizer.safetensors"})
    EXPECT_EQ(slurp(root_ / "a" / "ckpt-5" / f), slurp(root_ / "b" / "ckpt-5" / f)) << f;
  EXPECT_EQ(metrics(root_ / "a" / "metrics.jsonl"), metrics(root_ / "b" / "metrics.jsonl"));
}

TEST_F(DpoTest, LoraRunResumesBitExactlyAndSavesOnlyTheAdapter) {
  DpoRunOptions stopped = options("a");
  stopped.method = "lora";
  stopped.lora_dropout = 0.1;  // masks per micro-batch: the resumed run must continue their count
  stopped.lora_targets = "c_attn,c_fc";
  stopped.steps = 5;
  stopped.save_every = 1;
  stopped.eval_every = 2;
  stopped.stop_at = 3;
  EXPECT_EQ(dpo(stopped).last_step, 3);
  DpoRunOptions resumed = stopped;
  resumed.stop_at = 0;
  resumed.resume = true;
  EXPECT_EQ(dpo(resumed).last_step, 5);
  DpoRunOptions straight = stopped;
  straight.stop_at = 0;
  straight.out_dir = (root_ / "b").string();
  const std::string base_before = slurp(root_ / "model" / "model.safetensors");
  const DpoRunResult r = dpo(straight);
  const nn::ModelConfig cfg = nn::preset("tiny");
  // r (in + out) per adapted Linear: c_attn (C → 3C) and c_fc (C → 4C) in each layer.
  EXPECT_EQ(r.trainable_params, cfg.n_layer * 4 * ((cfg.n_embd + 3 * cfg.n_embd) + (cfg.n_embd + cfg.n_inner)));
  const fs::path ckpt = root_ / "a" / "ckpt-5";
  EXPECT_TRUE(fs::is_regular_file(ckpt / lora::kAdapterConfigFile));
  EXPECT_FALSE(fs::exists(ckpt / "model.safetensors"));
  for (const char* f : {lora::kAdapterWeightsFile, "optimizer.safetensors"})
    EXPECT_EQ(slurp(ckpt / f), slurp(root_ / "b" / "ckpt-5" / f)) << f;
  EXPECT_EQ(metrics(root_ / "a" / "metrics.jsonl"), metrics(root_ / "b" / "metrics.jsonl"));
  EXPECT_EQ(slurp(root_ / "model" / "model.safetensors"), base_before);
}

TEST_F(DpoTest, BadOptionsFailBeforeWritingTheRun) {
  DpoRunOptions o = options("x");
  o.method = "qlora";
  EXPECT_THROW(dpo(o), Error);
  o.method = "lora";
  o.loss_type = "hinge";
  EXPECT_THROW(dpo(o), Error);
  o.loss_type = "sigmoid";
  o.beta = 0;
  EXPECT_THROW(dpo(o), Error);
  o.beta = 0.1;
  o.seq = 4;  // the pairs do not fit
  EXPECT_THROW(dpo(o), Error);
  EXPECT_FALSE(fs::exists(root_ / "x"));
}

}  // namespace
}  // namespace sllm::rl
