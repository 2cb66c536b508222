// `sllm sft`'s entry (src/train/sft_run.h) on nn::preset("tiny") saved as a model directory:
// the --epochs rule, a run directory like pretrain's with a bit-exact resume (full and LoRA:
// a LoRA checkpoint holds only the adapter, the base stays bit-identical), and bad input
// failing before anything is written to the run directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/model_files.h"
#include "io/safetensors.h"
#include "lora/peft_files.h"
#include "nn/config.h"
#include "nn/transformer.h"
#include "tokenizer/tokenizer.h"
#include "train/sft_run.h"

namespace sllm::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Metrics without the timing field, which differs between runs.
std::string metrics_without_speed(const fs::path& p) {
  std::stringstream in(slurp(p));
  std::string line, out;
  while (std::getline(in, line)) {
    json j = json::parse(line);
    j.erase("tokens_per_s");
    j.erase("peak_mem_bytes");  // the process's peak RSS: a resumed run in this process differs
    out += j.dump() + "\n";
  }
  return out;
}

class SftRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("sllm_sft_run_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "model");
    const tokenizer::Tokenizer tok = tokenizer::Tokenizer::train(
        {"What is two plus three? Five. What is one plus four? Five. Add the numbers."}, 256 + 30, "gpt2",
        {"<|endoftext|>", "<|im_start|>", "<|im_end|>"});
    nn::Transformer model(nn::preset("tiny"));
    model.init(3);
    io::save_config(model.config(), (root_ / "model" / "config.json").string());
    io::save_weights(model, (root_ / "model" / "model.safetensors").string());
    tok.save((root_ / "model").string());
    std::ofstream data(root_ / "data.jsonl");
    for (int i = 0; i < 10; ++i) {
      json messages = json::array({{{"role", "user"}, {"content", "What is " + std::to_string(i) + "?"}},
                                   {{"role", "assistant"}, {"content", "Five " + std::to_string(i)}}});
      data << json{{"messages", messages}}.dump() << "\n";
    }
  }
  void TearDown() override { fs::remove_all(root_); }

  SftRunOptions options(const std::string& out) const {
    SftRunOptions o;
    o.model_dir = (root_ / "model").string();
    o.data_path = (root_ / "data.jsonl").string();
    o.out_dir = (root_ / out).string();
    o.batch = 2;
    o.seq = 32;
    o.grad_accum = 2;
    o.epochs = 2;
    o.lr = 1e-3;
    o.save_every = 1;
    o.quiet = true;
    return o;
  }

  fs::path root_;
};

TEST(SftSteps, EpochsRoundUpOverBatchTimesAccumulation) {
  EXPECT_EQ(sft_steps_for_epochs(1, 9, 2, 1), 5);
  EXPECT_EQ(sft_steps_for_epochs(2, 9, 2, 2), 5);
  EXPECT_EQ(sft_steps_for_epochs(0.5, 8, 4, 1), 1);
  EXPECT_EQ(sft_steps_for_epochs(3, 100, 8, 1), 38);
  EXPECT_THROW(sft_steps_for_epochs(0, 9, 2, 1), Error);
}

TEST_F(SftRunTest, RunDirectoryAndBitExactResume) {
  // 10 examples, validation 10% = 1, train 9: 2 epochs of 2 x 2 -> ceil(18 / 4) = 5 steps.
  SftRunOptions stopped = options("a");
  stopped.stop_at = 2;
  const SftRunResult first = sft(stopped);
  EXPECT_EQ(first.total_steps, 5);
  EXPECT_EQ(first.train_examples, 9);
  EXPECT_EQ(first.val_examples, 1);
  EXPECT_EQ(first.summary.examples, 10);
  EXPECT_EQ(first.last_step, 2);
  SftRunOptions resumed = options("a");
  resumed.resume = true;
  resumed.epochs = 0;  // the run keeps its total
  resumed.batch = 3;   // ignored: the checkpoint's batch wins
  const SftRunResult rest = sft(resumed);
  EXPECT_EQ(rest.last_step, 5);
  const SftRunResult straight = sft(options("b"));
  EXPECT_EQ(straight.last_step, 5);
  EXPECT_EQ(rest.last_loss, straight.last_loss);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "optimizer.safetensors", "trainer_state.json"})
    EXPECT_TRUE(fs::is_regular_file(root_ / "a" / "ckpt-5" / f)) << f;
  EXPECT_EQ(slurp(root_ / "a" / "latest"), "ckpt-5\n");
  EXPECT_EQ(slurp(root_ / "a" / "ckpt-5" / "model.safetensors"), slurp(root_ / "b" / "ckpt-5" / "model.safetensors"));
  EXPECT_EQ(slurp(root_ / "a" / "ckpt-5" / "optimizer.safetensors"), slurp(root_ / "b" / "ckpt-5" / "optimizer.safetensors"));
  EXPECT_EQ(metrics_without_speed(root_ / "a" / "metrics.jsonl"), metrics_without_speed(root_ / "b" / "metrics.jsonl"));
  // The checkpoint is a model directory sft can start from again.
  auto reloaded = io::load_model((root_ / "a" / "ckpt-5").string());
  EXPECT_EQ(reloaded->config().n_layer, nn::preset("tiny").n_layer);
}

TEST_F(SftRunTest, LoraCheckpointsHoldTheAdapterAndResumeBitExactly) {
  auto lora_options = [&](const std::string& out) {
    SftRunOptions o = options(out);
    o.method = "lora";
    o.lora_r = 4;
    o.lora_alpha = 8;
    o.lora_dropout = 0.1;  // masks per micro-batch: resume must continue their count
    o.lora_targets = "c_attn";  // the tiny preset is GPT-2: Conv1D (fan_in_fan_out)
    o.lr = 1e-2;
    return o;
  };
  const std::string base_before = slurp(root_ / "model" / "model.safetensors");
  SftRunOptions stopped = lora_options("a");
  stopped.stop_at = 3;
  const SftRunResult first = sft(stopped);
  EXPECT_EQ(first.last_step, 3);
  const nn::ModelConfig cfg = nn::preset("tiny");
  EXPECT_EQ(first.trainable_params, cfg.n_layer * 4 * (cfg.n_embd + 3 * cfg.n_embd));  // r (in + out) per c_attn
  SftRunOptions resumed = lora_options("a");
  resumed.resume = true;
  resumed.lora_r = 8;  // ignored: the checkpoint's LoRA options win
  EXPECT_EQ(sft(resumed).last_step, 5);
  const SftRunResult straight = sft(lora_options("b"));
  const fs::path ckpt = root_ / "a" / "ckpt-5";
  for (const char* f : {lora::kAdapterConfigFile, lora::kAdapterWeightsFile, "tokenizer.json", "optimizer.safetensors",
                        "trainer_state.json"})
    EXPECT_TRUE(fs::is_regular_file(ckpt / f)) << f;
  EXPECT_FALSE(fs::exists(ckpt / "model.safetensors"));
  EXPECT_FALSE(fs::exists(ckpt / "config.json"));
  EXPECT_EQ(slurp(ckpt / lora::kAdapterWeightsFile), slurp(root_ / "b" / "ckpt-5" / lora::kAdapterWeightsFile));
  EXPECT_EQ(slurp(ckpt / "optimizer.safetensors"), slurp(root_ / "b" / "ckpt-5" / "optimizer.safetensors"));
  EXPECT_EQ(metrics_without_speed(root_ / "a" / "metrics.jsonl"), metrics_without_speed(root_ / "b" / "metrics.jsonl"));
  EXPECT_EQ(slurp(root_ / "model" / "model.safetensors"), base_before);
  // The adapter trained (B moved off zero), and it is a PEFT adapter of this base.
  const lora::LoraConfig saved = lora::read_adapter_config(ckpt.string());
  EXPECT_EQ(saved.r, 4);
  const io::SafetensorsFile f = io::SafetensorsFile::open((ckpt / lora::kAdapterWeightsFile).string());
  bool b_moved = false;
  for (const auto& e : f.entries()) {
    if (e.name.find("lora_B") == std::string::npos) continue;
    const float* v = reinterpret_cast<const float*>(e.data);
    for (size_t i = 0; i < e.nbytes / sizeof(float); ++i) b_moved |= v[i] != 0.0f;
  }
  EXPECT_TRUE(b_moved);
  // The optimizer holds state for A and B only.
  const io::SafetensorsFile opt = io::SafetensorsFile::open((ckpt / "optimizer.safetensors").string());
  for (const auto& e : opt.entries()) EXPECT_NE(e.name.find("lora_"), std::string::npos) << e.name;
  (void)straight;
}

TEST_F(SftRunTest, LoraBadOptionsFailBeforeWritingTheRun) {
  SftRunOptions o = options("x");
  o.method = "lora";
  o.lora_r = 0;
  EXPECT_THROW(sft(o), Error);
  o.lora_r = 4;
  o.lora_targets = "no_such_module";
  try {
    sft(o);
    ADD_FAILURE() << "a target that matches nothing should fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_module"), std::string::npos) << e.what();
  }
  o.lora_targets = "all-linear";
  o.method = "prefix";  // no such method
  EXPECT_THROW(sft(o), Error);
  EXPECT_FALSE(fs::exists(root_ / "x"));
}

TEST_F(SftRunTest, BadInputFailsBeforeWritingTheRun) {
  SftRunOptions both = options("x");
  both.steps = 3;
  EXPECT_THROW(sft(both), Error);
  {
    std::ofstream bad(root_ / "data.jsonl", std::ios::app);
    bad << "{\"messages\": [{\"role\": \"robot\", \"content\": \"hi\"}]}\n";
  }
  try {
    sft(options("x"));
    ADD_FAILURE() << "an unknown role should fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("data.jsonl:11"), std::string::npos) << e.what();
  }
  SftRunOptions no_model = options("x");
  no_model.model_dir = (root_ / "none").string();
  EXPECT_THROW(sft(no_model), Error);
  EXPECT_FALSE(fs::exists(root_ / "x"));
}

}  // namespace
}  // namespace sllm::train
