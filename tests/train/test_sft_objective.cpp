// The SFT objective (src/train/sft_objective.h) on nn::preset("tiny") and a small trained
// chat tokenizer:
//   - masking: tokens that carry no label and precede none (a user turn after the last
//     assistant turn) leave the loss and every gradient bit-identical, and the loss is the
//     mean over the assistant's targets only;
//   - right-padded batches give each example the same logits as running it alone;
//   - the training loop with this objective lowers the validation loss, and stop + resume
//     (with grad_accum and the per-micro-batch mode hook) is bit-identical to a straight run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/autograd.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "data/sft_dataset.h"
#include "data/sft_loader.h"
#include "io/model_files.h"
#include "nn/config.h"
#include "nn/transformer.h"
#include "ops/ops.h"
#include "tokenizer/tokenizer.h"
#include "train/sft_objective.h"
#include "train/train_loop.h"

namespace sllm::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const tokenizer::Tokenizer& chat_tokenizer() {
  static const tokenizer::Tokenizer tok = tokenizer::Tokenizer::train(
      {"What is two plus three? Five. What is one plus four? Five. Add the numbers. six seven eight nine"}, 256 + 40,
      "gpt2", {"<|endoftext|>", "<|im_start|>", "<|im_end|>"});
  return tok;
}

std::string chat_line(const std::vector<std::pair<std::string, std::string>>& turns) {
  json messages = json::array();
  for (const auto& [role, content] : turns) messages.push_back({{"role", role}, {"content", content}});
  return json{{"messages", messages}}.dump();
}

// Sums of two digits, answered by a word: a mapping a tiny model starts to learn in a few steps.
data::SftDataset sums(int64_t n, int64_t seq = 60) {
  static const char* words[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
  std::string text;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t a = i % 5, b = (i * 3) % 5;
    text += chat_line({{"user", std::to_string(a) + "+" + std::to_string(b)}, {"assistant", words[a + b]}}) + "\n";
  }
  data::SftOptions o;
  o.seq_len = seq;
  return data::SftDataset::parse(text, "sums.jsonl", chat_tokenizer(), o);
}

std::unique_ptr<nn::Transformer> tiny_model() {
  auto model = std::make_unique<nn::Transformer>(nn::preset("tiny"));
  model->init(7);
  return model;
}

// (1, T) or (B, T) i32 tensors from rows of ids, right-padded with pad.
Tensor ids_tensor(const std::vector<std::vector<int32_t>>& rows, int64_t T, int32_t pad) {
  Tensor t = Tensor::empty({static_cast<int64_t>(rows.size()), T}, DType::I32);
  int32_t* p = t.mutable_i32();
  for (size_t r = 0; r < rows.size(); ++r)
    for (int64_t c = 0; c < T; ++c) p[r * T + c] = c < static_cast<int64_t>(rows[r].size()) ? rows[r][c] : pad;
  return t;
}

std::map<std::string, std::string> gradient_bytes(nn::Transformer& model) {
  std::map<std::string, std::string> out;
  for (auto& p : model.parameters()) {
    const Tensor g = p.value.grad();
    out[p.name] = g.defined() ? std::string(reinterpret_cast<const char*>(g.f32()), g.nbytes()) : std::string();
    p.value.zero_grad();
  }
  return out;
}

std::string bytes_of(float f) { return std::string(reinterpret_cast<const char*>(&f), sizeof f); }

TEST(SftObjectiveMasking, UnlabelledTokensThatPrecedeNoLabelChangeNeitherLossNorGradient) {
  // The "changing a non-assistant token leaves the loss and its gradient unchanged"
  // holds exactly only for tokens no label depends on: a user token before an answer is the
  // answer's context (attention reads it), so changing it must change the answer's loss.
  // The tokens no labelled prediction can see are the unlabelled ones after the last label:
  // here a trailing user turn. Their targets are kIgnoreIndex, so cross-entropy gives their
  // logits a zero gradient, and causal attention keeps them out of every labelled position;
  // changing them (ids or ignored targets) must leave loss and gradients bit-identical.
  const auto& tok = chat_tokenizer();
  data::SftOptions o;
  o.seq_len = 63;  // the tiny preset's context is 64
  const std::string line = chat_line({{"system", "Add."}, {"user", "2+3"}, {"assistant", "five"}, {"user", "and 6+7?"}});
  const data::SftDataset d = data::SftDataset::parse(line + "\n", "m.jsonl", tok, o);
  ASSERT_EQ(d.size(), 1);
  const data::SftExample& e = d.examples()[0];
  int64_t last_label = -1;
  for (size_t t = 0; t < e.targets.size(); ++t)
    if (e.targets[t] != data::kIgnoreIndex) last_label = static_cast<int64_t>(t);
  const int64_t n = static_cast<int64_t>(e.inputs.size());
  ASSERT_GT(last_label, 0);
  ASSERT_GT(n - last_label, 5) << "the trailing user turn should leave unlabelled tokens after the answer";

  auto model = tiny_model();
  const int32_t pad = data::default_pad_id(tok);
  const Tensor targets = ids_tensor({e.targets}, n, pad);
  const Tensor loss = model->loss(ids_tensor({e.inputs}, n, pad), targets);
  autograd::backward(loss);
  const auto grads = gradient_bytes(*model);

  std::vector<int32_t> changed = e.inputs;
  for (int64_t t = last_label + 1; t < n; ++t) changed[t] = static_cast<int32_t>((changed[t] * 31 + 7) % 256);
  ASSERT_NE(changed, e.inputs);
  const Tensor loss2 = model->loss(ids_tensor({changed}, n, pad), targets);
  autograd::backward(loss2);
  EXPECT_EQ(bytes_of(loss.item()), bytes_of(loss2.item()));
  EXPECT_EQ(gradient_bytes(*model), grads);

  // The contrast: a user token before the answer is the answer's context, so changing it
  // does change the loss (what makes the statement above the strongest one that holds).
  std::vector<int32_t> context_changed = e.inputs;
  context_changed[2] = static_cast<int32_t>((context_changed[2] * 31 + 7) % 256);
  ASSERT_NE(context_changed[2], e.inputs[2]);
  EXPECT_NE(model->loss(ids_tensor({context_changed}, n, pad), targets).item(), loss.item());
  for (auto& p : model->parameters()) p.value.zero_grad();

  // Likewise padding: extra positions with ignored targets after the example.
  const Tensor padded_targets = ids_tensor({e.targets}, n + 3, data::kIgnoreIndex);
  const Tensor loss3 = model->loss(ids_tensor({e.inputs}, n + 3, pad), padded_targets);
  autograd::backward(loss3);
  EXPECT_EQ(bytes_of(loss.item()), bytes_of(loss3.item()));
  EXPECT_EQ(gradient_bytes(*model), grads);

  // The loss is the mean over the assistant's targets only, computed here from the logits.
  const Tensor logits = model->forward(ids_tensor({e.inputs}, n, pad));
  const int64_t V = model->config().vocab_size;
  double sum = 0;
  int64_t count = 0;
  for (int64_t t = 0; t < n; ++t) {
    if (e.targets[t] == data::kIgnoreIndex) continue;
    const float* row = logits.f32() + t * V;
    double mx = row[0], z = 0;
    for (int64_t v = 1; v < V; ++v) mx = std::max<double>(mx, row[v]);
    for (int64_t v = 0; v < V; ++v) z += std::exp(static_cast<double>(row[v]) - mx);
    sum += std::log(z) + mx - row[e.targets[t]];
    ++count;
  }
  EXPECT_NEAR(loss.item(), sum / static_cast<double>(count), 1e-5);
  for (auto& p : model->parameters()) p.value.zero_grad();
}

TEST(SftObjectivePadding, PaddedBatchGivesEachExampleItsLogitsAlone) {
  // Right padding under causal attention: position t attends to positions <= t only, so the
  // pad ids after an example cannot reach its logits; on the CPU the kernels reduce each
  // output in the same order whatever the batch, so the logits match bit for bit.
  const data::SftDataset d = sums(4);
  const int32_t pad = data::default_pad_id(chat_tokenizer());
  std::vector<std::vector<int32_t>> rows;
  int64_t T = 0;
  for (const auto& e : d.examples()) {
    rows.push_back(e.inputs);
    T = std::max<int64_t>(T, static_cast<int64_t>(e.inputs.size()));
  }
  // Examples of different lengths, so some rows really are padded.
  rows[1].push_back(rows[1].back());
  rows[2].insert(rows[2].end(), 4, rows[2].front());
  T += 4;
  auto model = tiny_model();
  autograd::NoGradGuard no_grad;
  const Tensor batch = model->forward(ids_tensor(rows, T, pad));
  const int64_t V = model->config().vocab_size;
  for (size_t r = 0; r < rows.size(); ++r) {
    const int64_t n = static_cast<int64_t>(rows[r].size());
    const Tensor alone = model->forward(ids_tensor({rows[r]}, n, pad));
    EXPECT_EQ(std::memcmp(batch.f32() + static_cast<int64_t>(r) * T * V, alone.f32(), sizeof(float) * n * V), 0)
        << "row " << r << " (" << n << " of " << T << " tokens)";
  }
}

// A fresh directory per test.
struct SftWorkspace {
  fs::path root;
  data::SftDataset data = sums(24);
  SftWorkspace() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root = fs::temp_directory_path() / str("sllm_test_sftobj_", info->name(), "_", ::getpid());
    fs::remove_all(root);
  }
  ~SftWorkspace() { fs::remove_all(root); }

  std::unique_ptr<SftObjective> objective() const {
    data::SftValidation v;
    v.count = 5;  // 5 validation examples, batch 4: the last batch wraps and is masked
    auto o = std::make_unique<SftObjective>(data, /*batch=*/4, /*seed=*/3, v, data::default_pad_id(chat_tokenizer()));
    o->check_model(nn::preset("tiny"));
    return o;
  }
  LoopOptions options(const std::string& run, int64_t steps) const {
    LoopOptions o;
    o.command = "test";
    o.out_dir = (root / run).string();
    o.steps = steps;
    o.lr = 1e-2;
    o.warmup = 1;
    o.eval_every = 4;
    o.quiet = true;
    return o;
  }
};

std::vector<std::string> metrics_lines(const fs::path& run) {
  std::ifstream in(run / "metrics.jsonl");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line);
    j.erase("tokens_per_s");    // wall-clock
    j.erase("peak_mem_bytes");  // the process's peak memory, not part of the math
    lines.push_back(j.dump());
  }
  return lines;
}

TEST(SftObjectiveTraining, LoopLowersValidationLoss) {
  SftWorkspace ws;
  auto model = tiny_model();
  auto objective = ws.objective();
  EXPECT_EQ(objective->val_examples(), 5);
  EXPECT_EQ(objective->train_examples(), 19);
  const TrainResult r = train(*model, *objective, ws.options("run", 12), nullptr);
  EXPECT_EQ(r.last_step, 12);
  EXPECT_LT(r.last_val_loss, 0.8 * r.first_val_loss) << r.first_val_loss << " -> " << r.last_val_loss;
  const auto lines = metrics_lines(ws.root / "run");
  ASSERT_EQ(lines.size(), 12u);
  const json first = json::parse(lines[0]);
  EXPECT_GT(first.at("label_tokens").get<double>(), 0);
  EXPECT_GT(first.at("val_label_tokens").get<double>(), 0);
  EXPECT_NEAR(json::parse(lines[11]).at("epoch").get<double>(), 12.0 * 4 / 19, 1e-9);
}

TEST(SftObjectiveTraining, EvaluationIsTheMeanPerLabelTokenOverTheValidationSet) {
  SftWorkspace ws;
  auto model = tiny_model();
  auto objective = ws.objective();
  autograd::NoGradGuard no_grad;
  const Evaluation eval = objective->evaluate(*model);
  // Each validation example alone: its loss times its label count, summed, over all labels.
  const int32_t pad = data::default_pad_id(chat_tokenizer());
  double weighted = 0;
  int64_t labels = 0;
  for (int64_t i : objective->split().val) {
    const auto& e = ws.data.examples()[i];
    const int64_t n = static_cast<int64_t>(e.inputs.size());
    int64_t k = 0;
    for (int32_t t : e.targets) k += t != data::kIgnoreIndex;
    weighted += model->loss(ids_tensor({e.inputs}, n, pad), ids_tensor({e.targets}, n, pad)).item() * static_cast<double>(k);
    labels += k;
  }
  EXPECT_EQ(eval.metrics.at("label_tokens"), static_cast<double>(labels));
  EXPECT_NEAR(eval.loss, weighted / static_cast<double>(labels), 1e-5);
  EXPECT_EQ(objective->evaluate(*model).loss, eval.loss);  // the same batches every time
}

// A step's loss is the mean over all its label tokens however the step is cut into
// micro-batches (Hugging Face's num_items_in_batch): two micro-batches of 2 examples weigh
// their means by their label tokens and give the loss and gradient of one batch of all 4.
TEST(SftObjectiveWeights, TwoMicroBatchesWeighLikeOneBatchOfBoth) {
  const data::SftDataset d = sums(24);
  data::SftValidation v;
  v.count = 4;
  const int32_t pad = data::default_pad_id(chat_tokenizer());
  SftObjective halves(d, 2, 3, v, pad), whole(d, 4, 3, v, pad);
  auto model = tiny_model();

  halves.begin_step(2);
  double loss = 0, weights = 0, labels = 0;
  for (int k = 0; k < 2; ++k) {
    const MicroBatchLoss m = halves.next(*model);
    ASSERT_GT(m.weight, 0);
    ASSERT_LT(m.weight, 1);
    loss += m.weight * m.loss.item();
    weights += m.weight;
    labels += m.metrics.at("label_tokens");
    autograd::backward(ops::scale(m.loss, static_cast<float>(m.weight)));
  }
  const std::map<std::string, std::string> accumulated = gradient_bytes(*model);
  EXPECT_NEAR(weights, 1.0, 1e-15);

  const MicroBatchLoss m = whole.next(*model);  // no begin_step: a step of one batch
  EXPECT_EQ(m.weight, 1.0);
  EXPECT_EQ(m.metrics.at("label_tokens"), labels);
  EXPECT_NEAR(loss, m.loss.item(), 1e-6 * m.loss.item());
  autograd::backward(m.loss);
  const std::map<std::string, std::string> one_batch = gradient_bytes(*model);
  for (const auto& [name, bytes] : one_batch) {
    ASSERT_FALSE(bytes.empty()) << name;
    const auto* a = reinterpret_cast<const float*>(accumulated.at(name).data());
    const auto* b = reinterpret_cast<const float*>(bytes.data());
    double largest = 0, worst = 0;
    for (size_t i = 0; i < bytes.size() / sizeof(float); ++i) {
      largest = std::max(largest, std::fabs(static_cast<double>(b[i])));
      worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
    }
    EXPECT_LE(worst, 1e-5 * largest + 1e-12) << name;  // the same sum in another order
  }
}

TEST(SftObjectiveTraining, StopAndResumeIsBitIdentical) {
  SftWorkspace ws;
  std::vector<std::pair<bool, uint64_t>> straight_calls, resumed_calls;
  auto record = [](std::vector<std::pair<bool, uint64_t>>& calls) {
    return [&calls](bool training, uint64_t i) { calls.push_back({training, i}); };
  };
  {
    auto model = tiny_model();
    auto objective = ws.objective();
    objective->mode_hook = record(straight_calls);
    LoopOptions o = ws.options("straight", 6);
    o.grad_accum = 2;
    train(*model, *objective, o, nullptr);
  }
  LoopOptions o = ws.options("stopped", 6);
  o.grad_accum = 2;
  {
    auto model = tiny_model();
    auto objective = ws.objective();
    objective->mode_hook = record(resumed_calls);
    o.stop_at = 3;
    EXPECT_EQ(train(*model, *objective, o, nullptr).last_step, 3);
  }
  o.stop_at = 0;
  const std::optional<ResumePoint> resume = find_resume_point(o.out_dir, true, o.steps);
  ASSERT_TRUE(resume.has_value());
  auto model = io::load_model(resume->dir.string());
  auto objective = ws.objective();
  objective->mode_hook = record(resumed_calls);
  EXPECT_EQ(train(*model, *objective, o, &*resume).last_step, 6);

  const auto straight = metrics_lines(ws.root / "straight"), resumed = metrics_lines(ws.root / "stopped");
  ASSERT_EQ(straight.size(), 6u);
  EXPECT_EQ(straight, resumed);
  for (const char* file : {"model.safetensors", "optimizer.safetensors"})
    EXPECT_EQ(read_file((ws.root / "straight" / "ckpt-6" / file).string()), read_file((ws.root / "stopped" / "ckpt-6" / file).string()))
        << file;
  // The hook saw the same micro-batch indices: the count continues across the resume.
  EXPECT_EQ(straight_calls, resumed_calls);
  ASSERT_FALSE(straight_calls.empty());
  EXPECT_EQ(straight_calls.back(), std::make_pair(false, uint64_t{12}));  // the final evaluation
}

TEST(SftObjectiveErrors, EmptyValidationSplitAndMalformedState) {
  const data::SftDataset d = sums(6);
  try {
    SftObjective objective(d, 2, 1, data::SftValidation{}, 0);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("validation split is empty"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos) << e.what();
  }
  data::SftValidation v;
  v.count = 2;
  SftObjective objective(d, 2, 1, v, 0);
  EXPECT_THROW(objective.restore_data_state(json{{"step", 3}}), Error);
  const json state = objective.data_state();
  EXPECT_NO_THROW(objective.restore_data_state(json::parse(state.dump())));
}

}  // namespace
}  // namespace sllm::train
