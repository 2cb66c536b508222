// The pretraining loop (src/train/trainer.h) on a tiny GPT-2 (vocab 300, 2 layers, C = 32):
//   - resume is bit-exact: straight to step 12 == stop at 6 + resume to 12, in every logged
//     loss and in the bytes of the final weights and optimizer state (also with grad_accum);
//   - crash safety: litter of a checkpoint write that never committed, and metrics logged
//     past the last checkpoint, do not stop or change a resumed run;
//   - the model learns a deterministic sequence;
//   - bad inputs raise sllm::Error with a hint.
// Data are token shards written directly (no tokenizer), so each test takes about a second.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/rng.h"
#include "pseudo_text.h"
#include "data/token_shard.h"
#include "io/model_files.h"
#include "train/trainer.h"

namespace sllm::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kVocab = 300, kContext = 64;

// A fresh workspace per test: config.json, data/ (train.bin, val.bin, meta.json) and a path
// for the run directory.
struct Workspace {
  fs::path root, config, data, run;

  Workspace() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root = fs::temp_directory_path() / str("sllm_test_train_", info->test_suite_name(), "_", info->name(), "_", ::getpid());
    fs::remove_all(root);
    fs::create_directories(root / "data");
    config = root / "config.json";
    data = root / "data";
    run = root / "run";
    const json cfg{{"model_type", "gpt2"}, {"vocab_size", kVocab}, {"n_positions", kContext},
                   {"n_embd", 32},         {"n_layer", 2},         {"n_head", 4}};
    write_file_atomic(config.string(), cfg.dump());
  }
  ~Workspace() { fs::remove_all(root); }

  void write_data(const std::vector<int32_t>& train, const std::vector<int32_t>& val, int64_t meta_vocab = kVocab) const {
    data::write_token_shard((data / "train.bin").string(), train, std::max(meta_vocab, kVocab));
    data::write_token_shard((data / "val.bin").string(), val, std::max(meta_vocab, kVocab));
    write_file_atomic((data / "meta.json").string(), json{{"vocab_size", meta_vocab}}.dump());
  }

  PretrainOptions options(int64_t steps) const {
    PretrainOptions o;
    o.config = config.string();
    o.data_dir = data.string();
    o.out_dir = run.string();
    o.steps = steps;
    o.batch = 4;
    o.seq = 32;
    o.lr = 3e-3;
    o.warmup = 2;
    o.eval_every = 4;
    o.eval_batches = 2;
    o.quiet = true;
    return o;
  }
};

std::vector<int32_t> pseudo_text(int64_t n, uint64_t seed) { return test::pseudo_text(n, seed, kVocab); }

struct MetricsLine {
  int64_t step;
  uint64_t loss_bits;
  bool has_val;
  uint64_t val_bits;
};

std::vector<MetricsLine> read_metrics(const fs::path& run) {
  std::ifstream in(run / "metrics.jsonl");
  std::vector<MetricsLine> lines;
  std::string line;
  while (std::getline(in, line)) {
    const json j = json::parse(line);
    MetricsLine m{j.at("step").get<int64_t>(), std::bit_cast<uint64_t>(j.at("loss").get<double>()), j.contains("val_loss"), 0};
    if (m.has_val) m.val_bits = std::bit_cast<uint64_t>(j["val_loss"].get<double>());
    lines.push_back(m);
  }
  return lines;
}

void expect_same_metrics(const std::vector<MetricsLine>& a, const std::vector<MetricsLine>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].step, static_cast<int64_t>(i + 1));
    EXPECT_EQ(a[i].step, b[i].step);
    EXPECT_EQ(a[i].loss_bits, b[i].loss_bits) << "loss differs at step " << a[i].step;
    EXPECT_EQ(a[i].has_val, b[i].has_val) << "step " << a[i].step;
    EXPECT_EQ(a[i].val_bits, b[i].val_bits) << "val_loss differs at step " << a[i].step;
  }
}

std::string trimmed_file(const fs::path& p) {
  std::string s = read_file(p.string());
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no sllm::Error thrown)";
}

// ---- resume ---------------------------------------------------------------------------------

class PretrainResume : public ::testing::TestWithParam<int64_t> {};

TEST_P(PretrainResume, StopAndResumeIsBitIdenticalToAStraightRun) {
  Workspace ws;
  ws.write_data(pseudo_text(6000, 1), pseudo_text(1500, 2));
  PretrainOptions o = ws.options(12);
  o.grad_accum = GetParam();

  const fs::path straight = ws.root / "straight";
  PretrainOptions a = o;
  a.out_dir = straight.string();
  const PretrainResult ra = pretrain(a);
  EXPECT_EQ(ra.last_step, 12);

  PretrainOptions b = o;
  b.stop_at = 6;
  EXPECT_EQ(pretrain(b).last_step, 6);
  EXPECT_EQ(trimmed_file(ws.run / "latest"), "ckpt-6");
  EXPECT_EQ(read_metrics(ws.run).size(), 6u);
  b.stop_at = 0;
  b.resume = true;
  const PretrainResult rb = pretrain(b);
  EXPECT_EQ(rb.last_step, 12);
  EXPECT_EQ(trimmed_file(ws.run / "latest"), "ckpt-12");

  const auto ma = read_metrics(straight), mb = read_metrics(ws.run);
  ASSERT_EQ(ma.size(), 12u);
  expect_same_metrics(ma, mb);
  // The run must actually train, or equal losses would prove nothing.
  EXPECT_NE(ma.front().loss_bits, ma.back().loss_bits);
  EXPECT_EQ(std::bit_cast<uint64_t>(ra.last_loss), std::bit_cast<uint64_t>(rb.last_loss));
  for (const char* file : {"model.safetensors", "optimizer.safetensors", "config.json"})
    EXPECT_EQ(read_file((straight / "ckpt-12" / file).string()), read_file((ws.run / "ckpt-12" / file).string())) << file;
}

INSTANTIATE_TEST_SUITE_P(GradAccum, PretrainResume, ::testing::Values(1, 2));

// A resumed run keeps the run's math options even if the command line says otherwise.
TEST(PretrainResumeOptions, SavedOptionsWinOverTheCommandLine) {
  Workspace ws;
  ws.write_data(pseudo_text(6000, 1), pseudo_text(1500, 2));
  const fs::path straight = ws.root / "straight";
  PretrainOptions a = ws.options(8);
  a.out_dir = straight.string();
  pretrain(a);

  PretrainOptions b = ws.options(8);
  b.stop_at = 3;
  pretrain(b);
  b.stop_at = 0;
  b.resume = true;
  b.lr = 0.5;  // ignored: the checkpoint's options win
  b.batch = 2;
  b.seed = 99;
  pretrain(b);
  expect_same_metrics(read_metrics(straight), read_metrics(ws.run));
}

// ---- crash safety ---------------------------------------------------------------------------

// A crash while ckpt-8 was being written (its temp directory half full, trainer_state cut off)
// and after steps 7-9 were logged: latest still names ckpt-6, which loads, and the resumed run
// neither duplicates steps 7-9 nor differs from a run that never crashed.
TEST(PretrainCrash, HalfWrittenCheckpointAndLoggedStepsAreRecoveredFrom) {
  Workspace ws;
  ws.write_data(pseudo_text(6000, 1), pseudo_text(1500, 2));
  const fs::path straight = ws.root / "straight";
  PretrainOptions a = ws.options(12);
  a.out_dir = straight.string();
  pretrain(a);

  PretrainOptions b = ws.options(12);
  b.save_every = 4;  // the resumed run writes ckpt-8 where the crashed one left its temp dir
  b.stop_at = 6;
  pretrain(b);
  // The crashed process left temp names "<name>.tmp.<pid>.<n>" behind. A restarted process
  // (in a container, often with the same pid) draws the same names for its own temp files,
  // so the litter must not make those writes fail: we leave it under our own pid for the
  // first 1024 counter values (this test draws far fewer temp names than that).
  const std::string weights = read_file((ws.run / "ckpt-6" / "model.safetensors").string());
  std::vector<fs::path> litter;
  for (int k = 0; k < 1024; ++k) {
    litter.push_back(ws.run / str("ckpt-8.tmp.", ::getpid(), ".", k));
    fs::create_directories(litter.back());
    for (const char* file : {"latest", "metrics.jsonl"}) {
      litter.push_back(ws.run / str(file, ".tmp.", ::getpid(), ".", k));
      std::ofstream(litter.back()) << "{\"st";
    }
  }
  const fs::path half = ws.run / str("ckpt-8.tmp.", ::getpid(), ".0");
  write_file_atomic((half / "config.json").string(), read_file((ws.run / "ckpt-6" / "config.json").string()));
  write_file_atomic((half / "model.safetensors").string(), weights.substr(0, weights.size() / 3));
  write_file_atomic((half / "trainer_state.json").string(), "{\"step\": 8, \"total_st");
  {
    std::ofstream m(ws.run / "metrics.jsonl", std::ios::app);
    m << "{\"step\":7,\"loss\":1.5}\n{\"step\":8,\"loss\":1.4}\n{\"step\":9,\"lo";  // cut mid-line
  }

  EXPECT_EQ(trimmed_file(ws.run / "latest"), "ckpt-6");
  const auto model = io::load_model((ws.run / "ckpt-6").string());
  EXPECT_EQ(model->config().vocab_size, kVocab);

  b.stop_at = 0;
  b.resume = true;
  EXPECT_EQ(pretrain(b).last_step, 12);
  expect_same_metrics(read_metrics(straight), read_metrics(ws.run));
  EXPECT_EQ(read_file((straight / "ckpt-12" / "model.safetensors").string()),
            read_file((ws.run / "ckpt-12" / "model.safetensors").string()));
  int64_t left = 0;
  for (const auto& path : litter) left += fs::exists(path) ? 1 : 0;
  EXPECT_EQ(left, 0) << "entries of crash litter were left behind, e.g. " << litter.front();
}

// An AtomicDirectory abandoned mid-write (the process died before commit(), so its destructor
// never ran) leaves only a temp directory; the committed checkpoint and `latest` are untouched.
TEST(PretrainCrash, AbandonedAtomicDirectoryLeavesTheLastCheckpointLoadable) {
  Workspace ws;
  ws.write_data(pseudo_text(6000, 1), pseudo_text(1500, 2));
  PretrainOptions o = ws.options(10);
  o.save_every = 4;
  o.stop_at = 4;
  pretrain(o);
  const std::string before = read_file((ws.run / "ckpt-4" / "model.safetensors").string());

  auto* abandoned = new AtomicDirectory((ws.run / "ckpt-4").string());  // leaked on purpose: a crash
  write_file_atomic((fs::path(abandoned->temp_path()) / "model.safetensors").string(), "garbage");
  EXPECT_EQ(read_file((ws.run / "ckpt-4" / "model.safetensors").string()), before);
  EXPECT_NO_THROW(io::load_model((ws.run / "ckpt-4").string()));

  o.stop_at = 0;
  o.resume = true;
  EXPECT_EQ(pretrain(o).last_step, 10);
  EXPECT_EQ(trimmed_file(ws.run / "latest"), "ckpt-10");
  EXPECT_TRUE(fs::exists(ws.run / "ckpt-8" / "model.safetensors"));
}

// A crash before the first checkpoint leaves metrics.jsonl and no `latest`: a new run in that
// directory starts the log afresh instead of appending to the dead run's lines.
TEST(PretrainCrash, NewRunOverACrashedRunWithoutCheckpointStartsAFreshLog) {
  Workspace ws;
  ws.write_data(pseudo_text(6000, 1), pseudo_text(1500, 2));
  fs::create_directories(ws.run);
  write_file_atomic((ws.run / "metrics.jsonl").string(),
                    "{\"step\":1,\"loss\":9.5}\n{\"step\":2,\"loss\":9.25}\n{\"step\":3,\"loss\":9.0}\n");
  pretrain(ws.options(3));
  const auto m = read_metrics(ws.run);
  ASSERT_EQ(m.size(), 3u);
  for (size_t i = 0; i < m.size(); ++i) {
    EXPECT_EQ(m[i].step, static_cast<int64_t>(i + 1));
    EXPECT_TRUE(m[i].loss_bits != std::bit_cast<uint64_t>(9.5) && m[i].loss_bits != std::bit_cast<uint64_t>(9.25) &&
                m[i].loss_bits != std::bit_cast<uint64_t>(9.0));
  }
}

// ---- learning -------------------------------------------------------------------------------

// A sequence where each id determines the next (period 17): the model must find the bigram
// table, taking the loss from ~ln(300) = 5.7 to well under half of it in 30 steps.
TEST(PretrainLearning, LossFallsOnARepeatingSequence) {
  Workspace ws;
  const std::vector<int32_t> cycle = {5, 77, 140, 3, 299, 12, 88, 201, 45, 160, 9, 250, 31, 120, 66, 180, 222};
  std::vector<int32_t> train, val;
  for (int64_t i = 0; i < 8000; ++i) train.push_back(cycle[static_cast<size_t>(i) % cycle.size()]);
  for (int64_t i = 0; i < 1000; ++i) val.push_back(cycle[static_cast<size_t>(i + 5) % cycle.size()]);
  ws.write_data(train, val);
  PretrainOptions o = ws.options(30);
  o.lr = 1e-2;
  o.eval_every = 10;
  const PretrainResult r = pretrain(o);
  const auto m = read_metrics(ws.run);
  ASSERT_EQ(m.size(), 30u);
  const double first = std::bit_cast<double>(m.front().loss_bits), last = std::bit_cast<double>(m.back().loss_bits);
  EXPECT_GT(first, 5.0);  // ~ln(300): an untrained model
  EXPECT_LT(last, 0.5 * first);
  EXPECT_LT(r.last_val_loss, 0.5 * r.first_val_loss);
  EXPECT_EQ(std::bit_cast<uint64_t>(r.last_loss), m.back().loss_bits);
}

// ---- errors ---------------------------------------------------------------------------------

TEST(PretrainErrors, MissingDataDirectory) {
  Workspace ws;
  PretrainOptions o = ws.options(3);
  o.data_dir = (ws.root / "nope").string();
  const std::string e = error_of([&] { pretrain(o); });
  EXPECT_NE(e.find("train.bin"), std::string::npos) << e;
  EXPECT_NE(e.find("HINT"), std::string::npos) << e;
}

TEST(PretrainErrors, SequenceLongerThanTheContext) {
  Workspace ws;
  ws.write_data(pseudo_text(6000, 1), pseudo_text(1500, 2));
  PretrainOptions o = ws.options(3);
  o.seq = kContext + 1;
  const std::string e = error_of([&] { pretrain(o); });
  EXPECT_NE(e.find("--seq 65"), std::string::npos) << e;
  EXPECT_NE(e.find("HINT"), std::string::npos) << e;
}

TEST(PretrainErrors, DataVocabularyLargerThanTheModels) {
  Workspace ws;
  ws.write_data(pseudo_text(6000, 1), pseudo_text(1500, 2), /*meta_vocab=*/400);
  const std::string e = error_of([&] { pretrain(ws.options(3)); });
  EXPECT_NE(e.find("400"), std::string::npos) << e;
  EXPECT_NE(e.find("HINT"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(ws.run / "latest"));
}

TEST(PretrainErrors, ResumeWithoutCheckpoint) {
  Workspace ws;
  ws.write_data(pseudo_text(6000, 1), pseudo_text(1500, 2));
  PretrainOptions o = ws.options(3);
  o.resume = true;
  std::string e = error_of([&] { pretrain(o); });
  EXPECT_NE(e.find("no checkpoint"), std::string::npos) << e;
  EXPECT_NE(e.find("HINT"), std::string::npos) << e;

  fs::create_directories(ws.run);
  write_file_atomic((ws.run / "latest").string(), "ckpt-7\n");  // names a directory that is not there
  e = error_of([&] { pretrain(o); });
  EXPECT_NE(e.find("ckpt-7"), std::string::npos) << e;
  EXPECT_NE(e.find("HINT"), std::string::npos) << e;
}

TEST(PretrainErrors, NewRunIntoAnExistingRun) {
  Workspace ws;
  ws.write_data(pseudo_text(6000, 1), pseudo_text(1500, 2));
  pretrain(ws.options(2));
  const std::string before = read_file((ws.run / "metrics.jsonl").string());
  const std::string e = error_of([&] { pretrain(ws.options(2)); });
  EXPECT_NE(e.find("already holds a run"), std::string::npos) << e;
  EXPECT_NE(e.find("HINT"), std::string::npos) << e;
  EXPECT_EQ(read_file((ws.run / "metrics.jsonl").string()), before);
}

TEST(PretrainErrors, ResumeAFinishedRun) {
  Workspace ws;
  ws.write_data(pseudo_text(6000, 1), pseudo_text(1500, 2));
  PretrainOptions o = ws.options(2);
  pretrain(o);
  o.resume = true;
  const std::string e = error_of([&] { pretrain(o); });
  EXPECT_NE(e.find("already reached step 2"), std::string::npos) << e;
  EXPECT_NE(e.find("HINT"), std::string::npos) << e;
}

// Every way a trainer_state.json can be damaged is an sllm::Error naming the file, never a
// stray JSON exception or a crash.
TEST(PretrainErrors, MalformedTrainerState) {
  Workspace ws;
  ws.write_data(pseudo_text(6000, 1), pseudo_text(1500, 2));
  PretrainOptions o = ws.options(6);
  o.stop_at = 2;
  pretrain(o);
  o.stop_at = 0;
  o.resume = true;
  const fs::path state_path = ws.run / "ckpt-2" / "trainer_state.json";
  const json good = json::parse(read_file(state_path.string()));

  std::map<std::string, std::string> damaged;
  damaged["truncated"] = good.dump().substr(0, 40);
  damaged["not an object"] = "[1, 2, 3]";
  json j = good;
  j.erase("loader");
  damaged["no loader"] = j.dump();
  j = good;
  j["step"] = "two";
  damaged["step is a string"] = j.dump();
  j = good;
  j["options"].erase("seq");
  damaged["options lack seq"] = j.dump();
  j = good;
  j["loader"] = json{{"epoch", 0}};
  damaged["loader lacks fields"] = j.dump();
  j = good;
  j["step"] = -3;
  damaged["negative step"] = j.dump();

  for (const auto& [what, text] : damaged) {
    write_file_atomic(state_path.string(), text);
    std::string e;
    try {
      pretrain(o);
      e = "(no error)";
    } catch (const Error& err) {
      e = err.what();
    } catch (const std::exception& err) {
      e = str("(not an sllm::Error) ", err.what());
    }
    EXPECT_NE(e.find("HINT"), std::string::npos) << what << ": " << e;
    EXPECT_NE(e.find("trainer_state.json"), std::string::npos) << what << ": " << e;
  }
  // Repaired, the run resumes.
  write_file_atomic(state_path.string(), good.dump());
  EXPECT_EQ(pretrain(o).last_step, 6);
}

}  // namespace
}  // namespace sllm::train
