// The training loop (src/train/train_loop.h) driven directly, on a tiny GPT-2 (vocab 300,
// 2 layers, C = 32) and the pretraining objective:
//   - frozen parameters (requires_grad off) stay bit-identical, in memory and in the
//     checkpoint, and get no optimizer state; the trainable ones train;
//   - with frozen parameters, stop + resume is bit-identical to a straight run;
//   - an objective's metrics are logged as their mean over a step's micro-batches, and its
//     evaluation metrics as val_<name>;
//   - a model with nothing to train, or a metric that shadows the loop's, is an sllm::Error.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/rng.h"
#include "pseudo_text.h"
#include "data/token_shard.h"
#include "io/model_files.h"
#include "io/safetensors.h"
#include "nn/transformer.h"
#include "train/pretrain_objective.h"
#include "train/train_loop.h"

namespace sllm::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kVocab = 300;

// A fresh directory per test with data/ (train.bin, val.bin) of pseudo-text: ids that move
// but do not collapse to a trivially learnt sequence.
struct LoopWorkspace {
  fs::path root, data;

  LoopWorkspace() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root = fs::temp_directory_path() / str("sllm_test_loop_", info->test_suite_name(), "_", info->name(), "_", ::getpid());
    fs::remove_all(root);
    data = root / "data";
    fs::create_directories(data);
    data::write_token_shard((data / "train.bin").string(), pseudo_text(6000, 1), kVocab);
    data::write_token_shard((data / "val.bin").string(), pseudo_text(1500, 2), kVocab);
  }
  ~LoopWorkspace() { fs::remove_all(root); }

  static std::vector<int32_t> pseudo_text(int64_t n, uint64_t seed) { return test::pseudo_text(n, seed, kVocab); }

  std::unique_ptr<PretrainObjective> objective() const {
    return std::make_unique<PretrainObjective>(data.string(), /*batch=*/4, /*seq=*/32, /*seed=*/7, /*eval_batches=*/2);
  }

  LoopOptions options(const std::string& run, int64_t steps) const {
    LoopOptions o;
    o.command = "test";
    o.out_dir = (root / run).string();
    o.steps = steps;
    o.lr = 3e-3;
    o.warmup = 2;
    o.eval_every = 3;
    o.quiet = true;
    return o;
  }
};

std::unique_ptr<nn::Transformer> tiny_gpt2() {
  nn::ModelConfig cfg;
  cfg.family = nn::Family::GPT2;
  cfg.vocab_size = kVocab;
  cfg.n_ctx = 64;
  cfg.n_embd = 32;
  cfg.n_layer = 2;
  cfg.n_head = 4;
  cfg.n_kv_head = 4;
  cfg.n_inner = 4 * cfg.n_embd;
  auto model = std::make_unique<nn::Transformer>(cfg);
  model->init(7);
  return model;
}

// Freezes the position table and every parameter of the first block; returns their names.
std::set<std::string> freeze_some(nn::Transformer& model) {
  std::set<std::string> frozen;
  for (auto& p : model.parameters()) {
    if (p.name == "transformer.wpe.weight" || p.name.rfind("transformer.h.0.", 0) == 0) {
      p.value.set_requires_grad(false);
      frozen.insert(p.name);
    }
  }
  EXPECT_EQ(frozen.size(), 13u);  // wpe and block 0's ln_1, c_attn, c_proj, ln_2, c_fc, c_proj (weights and biases)
  return frozen;
}

std::map<std::string, std::string> parameter_bytes(const nn::Transformer& model) {
  std::map<std::string, std::string> bytes;
  for (const auto& p : model.parameters()) bytes[p.name] = std::string(reinterpret_cast<const char*>(p.value.f32()), p.value.nbytes());
  return bytes;
}

std::vector<std::string> metrics_lines(const fs::path& run) {
  std::ifstream in(run / "metrics.jsonl");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line);
    j.erase("tokens_per_s");    // wall-clock, a figure that may differ between runs
    j.erase("peak_mem_bytes");  // the process's peak memory: differs between a resumed and a straight run
    lines.push_back(j.dump());
  }
  return lines;
}

TEST(TrainLoopFrozen, FrozenParametersStayBitIdenticalAndGetNoOptimizerState) {
  LoopWorkspace ws;
  auto model = tiny_gpt2();
  const std::set<std::string> frozen = freeze_some(*model);
  const auto before = parameter_bytes(*model);
  auto objective = ws.objective();
  const TrainResult r = train(*model, *objective, ws.options("run", 6), nullptr);
  EXPECT_EQ(r.last_step, 6);
  EXPECT_LT(r.last_val_loss, r.first_val_loss);  // the trainable part learns

  const auto after = parameter_bytes(*model);
  const auto saved = io::load_model((ws.root / "run" / "ckpt-6").string());
  const auto in_checkpoint = parameter_bytes(*saved);
  for (const auto& [name, bytes] : before) {
    if (frozen.count(name)) {
      EXPECT_EQ(after.at(name), bytes) << name << " is frozen but changed";
      EXPECT_EQ(in_checkpoint.at(name), bytes) << name << " is frozen but changed in the checkpoint";
    } else {
      EXPECT_EQ(in_checkpoint.at(name), after.at(name)) << name;
    }
  }
  EXPECT_NE(after.at("transformer.h.1.mlp.c_fc.weight"), before.at("transformer.h.1.mlp.c_fc.weight"));
  EXPECT_NE(after.at("transformer.wte.weight"), before.at("transformer.wte.weight"));

  std::set<std::string> expected, keys;
  for (const auto& [name, bytes] : before)
    if (!frozen.count(name)) expected.insert({name + ".exp_avg", name + ".exp_avg_sq"});
  const io::SafetensorsFile opt = io::SafetensorsFile::open((ws.root / "run" / "ckpt-6" / "optimizer.safetensors").string());
  for (const auto& e : opt.entries()) keys.insert(e.name);
  EXPECT_EQ(keys, expected);
}

TEST(TrainLoopFrozen, StopAndResumeWithFrozenParametersIsBitIdentical) {
  LoopWorkspace ws;
  {
    auto model = tiny_gpt2();
    freeze_some(*model);
    auto objective = ws.objective();
    LoopOptions o = ws.options("straight", 6);
    o.grad_accum = 2;
    train(*model, *objective, o, nullptr);
  }
  LoopOptions o = ws.options("stopped", 6);
  o.grad_accum = 2;
  {
    auto model = tiny_gpt2();
    freeze_some(*model);
    auto objective = ws.objective();
    o.stop_at = 3;
    EXPECT_EQ(train(*model, *objective, o, nullptr).last_step, 3);
  }
  o.stop_at = 0;
  o.grad_accum = 1;  // ignored on resume: the checkpoint's options win
  const std::optional<ResumePoint> resume = find_resume_point(o.out_dir, true, o.steps);
  ASSERT_TRUE(resume.has_value());
  auto model = io::load_model(resume->dir.string());
  freeze_some(*model);
  auto objective = ws.objective();
  EXPECT_EQ(train(*model, *objective, o, &*resume).last_step, 6);

  const auto straight = metrics_lines(ws.root / "straight"), resumed = metrics_lines(ws.root / "stopped");
  ASSERT_EQ(straight.size(), 6u);
  EXPECT_EQ(straight, resumed);
  for (const char* file : {"model.safetensors", "optimizer.safetensors"})
    EXPECT_EQ(read_file((ws.root / "straight" / "ckpt-6" / file).string()), read_file((ws.root / "stopped" / "ckpt-6" / file).string()))
        << file;
}

TEST(TrainLoopErrors, NoTrainableParameter) {
  LoopWorkspace ws;
  auto model = tiny_gpt2();
  for (auto& p : model->parameters()) p.value.set_requires_grad(false);
  auto objective = ws.objective();
  try {
    train(*model, *objective, ws.options("run", 2), nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no trainable parameter"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(ws.root / "run"));
}

// Pretraining plus figures of its own: "probe" counts the micro-batches it has served (1, 2,
// 3, ... so a step's mean is known), and the evaluation reports a constant.
class ProbeObjective final : public Objective {
 public:
  ProbeObjective(std::unique_ptr<PretrainObjective> inner, std::string metric) : inner_(std::move(inner)), metric_(std::move(metric)) {}
  MicroBatchLoss next(nn::Transformer& model) override {
    MicroBatchLoss m = inner_->next(model);
    m.metrics[metric_] = static_cast<double>(++served_);
    return m;
  }
  Evaluation evaluate(nn::Transformer& model) override {
    Evaluation e = inner_->evaluate(model);
    e.metrics["probe"] = 0.25;
    return e;
  }
  json data_state() const override { return inner_->data_state(); }
  void restore_data_state(const json& state) override { inner_->restore_data_state(state); }

 private:
  std::unique_ptr<PretrainObjective> inner_;
  std::string metric_;
  int64_t served_ = 0;
};

TEST(TrainLoopMetrics, ObjectiveMetricsAreLoggedAsTheirMeanOverMicroBatches) {
  LoopWorkspace ws;
  auto model = tiny_gpt2();
  ProbeObjective objective(ws.objective(), "probe");
  LoopOptions o = ws.options("run", 3);
  o.grad_accum = 2;
  train(*model, objective, o, nullptr);
  std::ifstream in(ws.root / "run" / "metrics.jsonl");
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].at("probe").get<double>(), 1.5);  // micro-batches 1 and 2
  EXPECT_EQ(lines[2].at("probe").get<double>(), 5.5);  // 5 and 6
  EXPECT_EQ(lines[0].at("val_probe").get<double>(), 0.25);
  EXPECT_FALSE(lines[1].contains("val_probe"));  // step 2 is no evaluation step
  EXPECT_EQ(lines[2].at("val_probe").get<double>(), 0.25);
}

TEST(TrainLoopErrors, MetricThatShadowsTheLoops) {
  LoopWorkspace ws;
  auto model = tiny_gpt2();
  ProbeObjective objective(ws.objective(), "grad_norm");
  try {
    train(*model, objective, ws.options("run", 2), nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'grad_norm'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sllm::train
