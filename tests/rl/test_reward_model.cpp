// The reward model (src/rl/reward_model.h, reward_objective.h, reward_run.h):
//  - the Bradley–Terry loss and its gradient against torch (tests/golden/rl/reward_loss);
//  - scores of transformers' GPT2/LlamaForSequenceClassification on tiny random models
//    (tests/golden/rl/reward_*_tiny, tools/gen_rl_reward_golden.py);
//  - last_scores against token_scores, save → load bit for bit, the LM-directory start;
//  - a tiny reward model trained by `sllm reward train`'s run on a separable toy preference
//    (full and LoRA), loadable from its run directory, and a resume bit-exact with a straight run.
#include "rl/reward_model.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "autograd/autograd.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/rng.h"
#include "io/model_files.h"
#include "io/safetensors.h"
#include "rl/reward_objective.h"
#include "rl/reward_run.h"
#include "tokenizer/tokenizer.h"

namespace sllm::rl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kGolden = std::string(SLLM_SOURCE_DIR) + "/tests/golden/rl/";

struct TempDir {
  std::string path;
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path = (fs::temp_directory_path() /
            (std::string("sllm_test_rm_") + info->name() + "_" + std::to_string(::getpid())))
               .string();
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

Tensor entry(const io::SafetensorsFile& f, const std::string& name) {
  const io::SafetensorsEntry* e = f.find(name);
  EXPECT_NE(e, nullptr) << name;
  const Shape shape(e->shape.begin(), e->shape.end());
  return Tensor::wrap(const_cast<uint8_t*>(e->data), shape, e->dtype == "I32" ? DType::I32 : DType::F32, nullptr)
      .clone();
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(RewardLoss, BradleyTerryLossAndGradientsMatchTorch) {
  const auto f = io::SafetensorsFile::open(kGolden + "reward_loss.safetensors");
  Tensor chosen = entry(f, "chosen"), rejected = entry(f, "rejected");
  chosen.set_requires_grad(true);
  rejected.set_requires_grad(true);
  const Tensor loss = bradley_terry_loss(chosen, rejected);
  autograd::backward(loss);
  // f32 against float64 over 9 pairs: a few ulps of the loss's size.
  EXPECT_NEAR(loss.item(), entry(f, "loss").item(), 1e-6);
  const auto dc = chosen.grad().to_floats(), dr = rejected.grad().to_floats();
  const auto want_dc = entry(f, "dchosen").to_floats(), want_dr = entry(f, "drejected").to_floats();
  for (size_t i = 0; i < dc.size(); ++i) {
    EXPECT_NEAR(dc[i], want_dc[i], 1e-7) << i;
    EXPECT_NEAR(dr[i], want_dr[i], 1e-7) << i;
  }
  // A margin of +40 gives no gradient worth the name, -40 the full 1/N; both stay finite.
  EXPECT_TRUE(std::isfinite(loss.item()));
}

TEST(RewardLoss, EqualRewardsGiveLn2AndMetricsCountStrictWins) {
  const Tensor r = Tensor::from_floats({0.5f, -2.0f}, {2});
  EXPECT_NEAR(bradley_terry_loss(r, r).item(), std::log(2.0), 1e-7);
  const auto m = preference_metrics({1.0f, 0.0f, 3.0f, 2.0f}, {0.0f, 0.0f, 1.0f, 5.0f});
  EXPECT_DOUBLE_EQ(m.at("accuracy"), 0.5);  // 1 > 0, 3 > 1; the tie and 2 < 5 are not wins
  EXPECT_DOUBLE_EQ(m.at("margin"), (1.0 + 0.0 + 2.0 - 3.0) / 4);
  EXPECT_DOUBLE_EQ(m.at("chosen_reward"), 1.5);
  EXPECT_DOUBLE_EQ(m.at("rejected_reward"), 1.5);
}

std::vector<std::vector<int32_t>> golden_sequences(const io::SafetensorsFile& f) {
  const Tensor ids = entry(f, "ids"), lengths = entry(f, "lengths");
  const int64_t B = ids.dim(0), T = ids.dim(1);
  std::vector<std::vector<int32_t>> seqs;
  for (int64_t b = 0; b < B; ++b) seqs.emplace_back(ids.i32() + b * T, ids.i32() + b * T + lengths.i32()[b]);
  return seqs;
}

void expect_transformers_scores(const std::string& name) {
  const std::string dir = kGolden + name;
  const auto f = io::SafetensorsFile::open(dir + "/golden.safetensors");
  RewardModel rm = RewardModel::load(dir);
  EXPECT_EQ(rm.pad_id(), 0);
  const auto want = entry(f, "scores").to_floats();
  // Padded together (batch 4) and one at a time (batch 1): both are transformers' values.
  for (int64_t batch : {4, 1}) {
    const auto got = rm.score(golden_sequences(f), batch);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 2e-5 * std::max(1.0f, std::fabs(want[i]))) << name << " row " << i;
  }
}

TEST(RewardModel, ScoresEqualTransformersSequenceClassifiers) {
  expect_transformers_scores("reward_gpt2_tiny");
  expect_transformers_scores("reward_llama_tiny");
}

TEST(RewardModel, LastScoresAreTokenScoresAtTheLastIndex) {
  RewardModel rm = RewardModel::load(kGolden + "reward_gpt2_tiny");
  const auto f = io::SafetensorsFile::open(kGolden + "reward_gpt2_tiny/golden.safetensors");
  const Tensor ids = entry(f, "ids");
  const Tensor lengths = entry(f, "lengths");
  std::vector<int64_t> last;
  for (int64_t b = 0; b < ids.dim(0); ++b) last.push_back(lengths.i32()[b] - 1);
  autograd::NoGradGuard no_grad;
  const auto at_last = rm.last_scores(ids, last).to_floats();
  const Tensor all = rm.token_scores(ids);
  ASSERT_EQ(all.shape(), ids.shape());
  const auto every = all.to_floats();
  for (size_t b = 0; b < last.size(); ++b) {
    // The same dot product of the same hidden row; only the GEMM's blocking may differ.
    EXPECT_NEAR(at_last[b], every[b * ids.dim(1) + last[b]], 1e-6) << b;
  }
  EXPECT_NE(error_of([&] { rm.last_scores(ids, {0, 0, 0, ids.dim(1)}); }).find("outside"), std::string::npos);
}

TEST(RewardModel, SavedModelReloadsBitExactlyInTransformersLayout) {
  TempDir tmp;
  RewardModel rm = RewardModel::load(kGolden + "reward_llama_tiny");
  rm.save(tmp.path);
  RewardModel back = RewardModel::load(tmp.path);
  ASSERT_EQ(back.trunk().parameters().size(), rm.trunk().parameters().size());
  for (size_t i = 0; i < rm.trunk().parameters().size(); ++i) {
    const Tensor& a = rm.trunk().parameters()[i].value;
    const Tensor& b = back.trunk().parameters()[i].value;
    EXPECT_EQ(0, std::memcmp(a.f32(), b.f32(), a.nbytes())) << rm.trunk().parameters()[i].name;
  }
  EXPECT_EQ(0, std::memcmp(rm.score_weight().f32(), back.score_weight().f32(), rm.score_weight().nbytes()));
  const json config = json::parse(read_file(tmp.path + "/config.json"));
  EXPECT_EQ(config["architectures"], json({"LlamaForSequenceClassification"}));
  EXPECT_EQ(config["id2label"], json({{"0", "LABEL_0"}}));
  EXPECT_EQ(config["pad_token_id"], 0);
  const auto file = io::SafetensorsFile::open(tmp.path + "/model.safetensors");
  EXPECT_NE(file.find("score.weight"), nullptr);
  EXPECT_EQ(file.find("lm_head.weight"), nullptr);  // a sequence classifier has no LM head
}

// A tiny GPT-2 LM directory with a tokenizer trained on the toy task's words.
tokenizer::Tokenizer toy_tokenizer() {
  return tokenizer::Tokenizer::train({"good bad fine awful nice poor great weak the answer was Rate this: a b c d e f"},
                                     256 + 40, "gpt2", {"<|endoftext|>", "<|im_start|>", "<|im_end|>"});
}

std::string write_tiny_lm(const std::string& dir) {
  nn::ModelConfig c = nn::preset("tiny");
  nn::Transformer lm(c);
  lm.init(5);
  io::save_model(lm, dir);
  toy_tokenizer().save(dir);
  return dir;
}

TEST(RewardModel, StartsFromAnLanguageModelsTrunkWithANewHead) {
  TempDir tmp;
  const std::string lm_dir = write_tiny_lm(tmp.path + "/lm");
  auto lm = io::load_model(lm_dir);
  RewardModel rm = RewardModel::from_language_model(lm_dir, 3);
  ASSERT_EQ(rm.trunk().parameters().size(), lm->parameters().size());
  for (size_t i = 0; i < lm->parameters().size(); ++i)
    EXPECT_EQ(0, std::memcmp(rm.trunk().parameters()[i].value.f32(), lm->parameters()[i].value.f32(),
                             lm->parameters()[i].value.nbytes()));
  // score ~ N(0, 0.02²) over C = 32 draws: the sample std within a wide band of 0.02.
  double ss = 0;
  for (float w : rm.score_weight().to_floats()) ss += double(w) * w;
  const double sd = std::sqrt(ss / 32);
  EXPECT_GT(sd, 0.01);
  EXPECT_LT(sd, 0.03);
  EXPECT_EQ(rm.pad_id(), *toy_tokenizer().special_id("<|endoftext|>"));
  EXPECT_EQ(rm.tokenizer_path(), lm_dir + "/tokenizer.json");
  EXPECT_NE(error_of([&] { RewardModel::load(lm_dir); }).find("not a reward model"), std::string::npos);
  EXPECT_NE(error_of([&] { RewardModel::from_language_model(kGolden + "reward_gpt2_tiny", 1); }).find("already a reward model"),
            std::string::npos);
}

// Toy preference: the chosen answer is a "good" word, the rejected one a "bad" word, under
// random letter prompts. A reward model only has to tell the two word sets apart.
std::string write_toy_pairs(const std::string& path, int n) {
  const char* good[] = {"good", "fine", "nice", "great"};
  const char* bad[] = {"bad", "awful", "poor", "weak"};
  const char* letters[] = {"a", "b", "c", "d", "e", "f"};
  Rng rng(9);
  std::ofstream out(path);
  for (int i = 0; i < n; ++i) {
    const std::string prompt = std::string("Rate this: ") + letters[rng.below(6)] + " " + letters[rng.below(6)];
    out << json{{"prompt", prompt},
                {"chosen", std::string(" the answer was ") + good[rng.below(4)]},
                {"rejected", std::string(" the answer was ") + bad[rng.below(4)]}}
               .dump()
        << "\n";
  }
  return path;
}

RewardRunOptions toy_run(const std::string& lm_dir, const std::string& data, const std::string& out) {
  RewardRunOptions o;
  o.model_dir = lm_dir;
  o.data_path = data;
  o.out_dir = out;
  o.chat_template = "none";
  o.val_count = 16;
  o.batch = 8;
  o.seq = 24;
  o.steps = 30;
  o.lr = 3e-3;
  o.eval_every = 0;
  o.quiet = true;
  return o;
}

TEST(RewardTrain, TinyModelLearnsASeparablePreferenceAndLoadsFromItsRun) {
  TempDir tmp;
  const std::string lm_dir = write_tiny_lm(tmp.path + "/lm");
  const std::string data = write_toy_pairs(tmp.path + "/pairs.jsonl", 96);
  for (const char* method : {"full", "lora"}) {
    RewardRunOptions o = toy_run(lm_dir, data, tmp.path + "/run-" + method);
    o.method = method;
    if (o.method == "lora") o.lora_r = 4, o.lora_dropout = 0;
    const RewardRunResult r = reward_train(o);
    EXPECT_GT(r.last_val_accuracy, 0.9) << method;
    EXPECT_LT(r.last_val_loss, r.first_val_loss) << method;
    // The run's latest checkpoint is a reward model whatever the method: its scores of the
    // held-out pairs rank them as the run's last evaluation did.
    RewardModel rm = RewardModel::load(o.out_dir);
    const auto tok = tokenizer::Tokenizer::load(rm.tokenizer_path());
    const int32_t eot = *tok.special_id("<|endoftext|>");
    auto seq = [&](const std::string& answer) {
      std::vector<int32_t> s = tok.encode("Rate this: a b");
      for (int32_t id : tok.encode(" the answer was " + answer)) s.push_back(id);
      s.push_back(eot);
      return s;
    };
    const auto scores = rm.score({seq("great"), seq("poor")});
    EXPECT_GT(scores[0], scores[1]) << method;
    // The loaded checkpoint (LoRA: merged weights) gives the held-out loss the run logged
    // from its live model at the last step, up to the merge's rounding.
    data::PreferenceOptions po;
    po.chat_template = data::SftTemplate::none;
    po.seq_len = o.seq;
    const auto dataset = data::PreferenceDataset::load(data, tok, po);
    RewardObjective objective(rm, dataset, o.batch, o.seed, {0, o.val_count});
    autograd::NoGradGuard no_grad;
    EXPECT_NEAR(objective.evaluate(rm.trunk()).loss, r.last_val_loss, 1e-5) << method;
    if (o.method == "lora") {
      const json adapter = json::parse(read_file(o.out_dir + "/ckpt-30/adapter/adapter_config.json"));
      EXPECT_EQ(adapter["task_type"], "SEQ_CLS");
      EXPECT_EQ(adapter["modules_to_save"], json({"score"}));
      const auto weights = io::SafetensorsFile::open(o.out_dir + "/ckpt-30/adapter/adapter_model.safetensors");
      EXPECT_NE(weights.find("base_model.model.score.weight"), nullptr);
    }
  }
}

TEST(RewardTrain, ResumedRunEqualsAStraightRunBitForBit) {
  TempDir tmp;
  const std::string lm_dir = write_tiny_lm(tmp.path + "/lm");
  const std::string data = write_toy_pairs(tmp.path + "/pairs.jsonl", 48);
  for (const char* method : {"full", "lora"}) {
    RewardRunOptions straight = toy_run(lm_dir, data, tmp.path + "/straight-" + method);
    straight.steps = 6;
    straight.method = method;
    reward_train(straight);
    RewardRunOptions first = straight;
    first.out_dir = tmp.path + "/resumed-" + method;
    first.stop_at = 3;
    reward_train(first);
    RewardRunOptions rest = first;
    rest.stop_at = 0;
    rest.resume = true;
    reward_train(rest);
    EXPECT_EQ(read_file(straight.out_dir + "/ckpt-6/model.safetensors"),
              read_file(rest.out_dir + "/ckpt-6/model.safetensors"))
        << method;
    EXPECT_EQ(read_file(straight.out_dir + "/ckpt-6/optimizer.safetensors"),
              read_file(rest.out_dir + "/ckpt-6/optimizer.safetensors"))
        << method;
  }
}

TEST(RewardTrain, BadOptionsFailBeforeWriting) {
  TempDir tmp;
  const std::string lm_dir = write_tiny_lm(tmp.path + "/lm");
  const std::string data = write_toy_pairs(tmp.path + "/pairs.jsonl", 32);
  RewardRunOptions o = toy_run(lm_dir, data, tmp.path + "/run");
  o.method = "qlora";
  EXPECT_NE(error_of([&] { reward_train(o); }).find("--method"), std::string::npos);
  o = toy_run(lm_dir, data, tmp.path + "/run");
  o.seq = 4;  // every pair is longer
  EXPECT_NE(error_of([&] { reward_train(o); }).find("--truncate"), std::string::npos);
  o = toy_run(lm_dir, data, tmp.path + "/run");
  o.seq = 128;  // beyond the tiny preset's context of 64
  const std::string e = error_of([&] { reward_train(o); });
  EXPECT_NE(e.find("context"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(tmp.path + "/run/latest"));
}

}  // namespace
}  // namespace sllm::rl
