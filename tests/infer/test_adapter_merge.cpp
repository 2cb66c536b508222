// LoRA at inference: --adapter resolution, attach_adapter on the one loading path that
// generate, score, chat and merge share, and `sllm merge` (W + s·B·A written as a plain model
// directory) checked against the adapter model through the files on disk.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "infer/merge_model.h"
#include "infer/model_path.h"
#include "infer/text_session.h"
#include "io/model_files.h"
#include "lora/peft_files.h"
#include "tests/infer/infer_test_support.h"
#include "tokenizer/tokenizer.h"

namespace sllm::infer {
namespace {

namespace fs = std::filesystem;
using testing::randomize;
using testing::TempDir;

tokenizer::Tokenizer small_tokenizer() {
  return tokenizer::Tokenizer::train({"the cat sat on the mat. hello world"}, 256 + 10 + 1, "gpt2");
}

std::vector<int32_t> some_ids() { return testing::random_ids(12, 260, 5); }

std::vector<float> logits_of(nn::Transformer& model, const std::vector<int32_t>& ids) {
  autograd::NoGradGuard no_grad;
  return model.forward(Tensor::from_ints(ids, {1, static_cast<int64_t>(ids.size())})).to_floats();
}

// max |a - b| / max |b|: fp32 rounding of the merged product stays near 1e-7 of the scale.
double relative_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return diff / scale;
}

// A saved base model (GPT-2 "tiny" with large random weights, with tokenizer.json) and an
// all-linear r=4 adapter for it with nonzero B, saved as PEFT files inside a run directory
// laid out as `sllm sft --method lora` leaves it (run/latest -> ckpt-3).
struct Fixture {
  TempDir tmp;
  fs::path base = tmp.path / "base", run = tmp.path / "lora", adapter = run / "ckpt-3";
  std::vector<float> base_logits, adapter_logits;  // in memory, before anything is reloaded

  explicit Fixture(bool base_tokenizer = true) {
    nn::Transformer model(testing::gpt2_config());
    randomize(model, 11);
    io::save_model(model, base.string());
    if (base_tokenizer) small_tokenizer().save(base.string());
    base_logits = logits_of(model, some_ids());

    lora::LoraModel lora(model);
    lora::LoraConfig cfg;
    cfg.r = 4;
    cfg.lora_alpha = 8;
    cfg.target_modules = {"all-linear"};
    lora.add_adapter("default", cfg);
    Rng rng(3);
    for (const nn::Parameter& p : lora.parameters()) {  // a trained-looking adapter
      float* w = p.value.mutable_f32();
      for (int64_t i = 0; i < p.value.numel(); ++i) w[i] = 0.3f * static_cast<float>(rng.normal());
    }
    lora::save_adapter(lora, adapter.string(), base.string());
    small_tokenizer().save(adapter.string());
    std::ofstream(run / "latest") << "ckpt-3\n";
    adapter_logits = logits_of(model, some_ids());
  }
};

// Leftovers of an atomic write (".tmp." / ".old." siblings) in `dir`.
int litter(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    n += name.find(".tmp.") != std::string::npos || name.find(".old.") != std::string::npos;
  }
  return n;
}

TEST(AdapterPaths, ResolvesAdapterDirsAndLoraRunsAndPointsModelsElsewhere) {
  Fixture f;
  EXPECT_EQ(fs::path(resolve_adapter_dir(f.adapter.string())), f.adapter);
  EXPECT_EQ(fs::path(resolve_adapter_dir(f.run.string())), f.adapter);
  EXPECT_EQ(fs::path(adapter_base_model_dir(f.adapter.string())), f.base);
  auto expect_error = [](auto&& call, const std::string& needle) {
    try {
      call();
      ADD_FAILURE() << "accepted; expected an error about " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_FALSE(e.hint().empty());
    }
  };
  expect_error([&] { resolve_adapter_dir(f.base.string()); }, "pass it as --model");
  expect_error([&] { resolve_adapter_dir((f.tmp.path / "nope").string()); }, "not a directory");
  expect_error([&] { resolve_adapter_dir(f.tmp.str()); }, "neither adapter_config.json");
  expect_error([&] { resolve_model_dir(f.adapter.string()); }, "--adapter");
  expect_error([&] { resolve_model_dir(f.run.string()); }, "--adapter");
}

TEST(AttachAdapter, LoadedModelComputesTheAdapterModel) {
  Fixture f;
  InferenceSpec spec;
  spec.model = f.base.string();
  spec.adapter = f.run.string();  // the run resolves to its latest checkpoint
  spec.with_tokenizer = true;
  InferenceModel m = load_inference_model(spec);
  EXPECT_EQ(fs::path(m.adapter_dir), f.adapter);
  ASSERT_TRUE(m.lora);
  const std::vector<float> got = logits_of(*m.model, some_ids());
  EXPECT_EQ(got, f.adapter_logits);  // the same ops on the same numbers: bitwise
  EXPECT_GT(relative_diff(got, f.base_logits), 1e-2) << "the adapter should change the logits";

  // Without --model, the adapter's base_model_name_or_path is the base.
  spec.model = "";
  InferenceModel by_base_path = load_inference_model(spec);
  EXPECT_EQ(fs::path(by_base_path.dir), f.base);
  EXPECT_EQ(logits_of(*by_base_path.model, some_ids()), f.adapter_logits);

  // attach_adapter on a model loaded bare: the same, and a second adapter is refused.
  InferenceModel bare = load_inference_model(f.base.string(), false);
  EXPECT_EQ(logits_of(*bare.model, some_ids()), f.base_logits);
  attach_adapter(bare, f.adapter.string());
  EXPECT_EQ(logits_of(*bare.model, some_ids()), f.adapter_logits);
  EXPECT_THROW(attach_adapter(bare, f.adapter.string()), Error);
}

TEST(AttachAdapter, TakesTheAdaptersTokenizerWhenTheBaseHasNone) {
  Fixture f(/*base_tokenizer=*/false);
  InferenceSpec spec;
  spec.model = f.base.string();
  spec.with_tokenizer = true;
  EXPECT_THROW(load_inference_model(spec), Error);  // no tokenizer anywhere
  spec.adapter = f.adapter.string();
  const InferenceModel m = load_inference_model(spec);
  ASSERT_TRUE(m.tokenizer.has_value());
  EXPECT_EQ(m.tokenizer->to_hf_json(), small_tokenizer().to_hf_json());

  // Without --model, an adapter whose base path does not exist cannot name one.
  const fs::path moved = f.tmp.path / "moved";
  fs::rename(f.base, moved);
  spec.model = "";
  try {
    load_inference_model(spec);
    FAIL() << "a missing base directory was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--model"), std::string::npos) << e.what();
  }
}

TEST(Merge, MergedDirectoryOnDiskComputesTheAdapterModel) {
  Fixture f;
  MergeOptions o;
  o.model = f.base.string();
  o.adapter = f.run.string();
  o.out = (f.tmp.path / "merged").string();
  const InferenceModel in_memory = merge_to_directory(o);
  EXPECT_TRUE(in_memory.lora->merged());
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.json"})
    EXPECT_TRUE(fs::is_regular_file(fs::path(o.out) / file)) << file;
  EXPECT_FALSE(fs::exists(fs::path(o.out) / lora::kAdapterConfigFile));
  EXPECT_EQ(litter(f.tmp.path), 0);

  // A plain model directory: loaded without any adapter, it computes the adapter model.
  InferenceModel merged = load_inference_model(o.out, true);
  EXPECT_FALSE(merged.lora);
  const std::vector<float> got = logits_of(*merged.model, some_ids());
  EXPECT_LE(relative_diff(got, f.adapter_logits), 1e-5);
  EXPECT_GT(relative_diff(got, f.base_logits), 1e-2);
  // The base files are untouched.
  EXPECT_EQ(logits_of(*load_inference_model(f.base.string(), false).model, some_ids()), f.base_logits);

  // An existing empty --out is fine; a non-empty one is refused and left as it was.
  MergeOptions again = o;
  again.out = (f.tmp.path / "empty").string();
  fs::create_directories(again.out);
  EXPECT_NO_THROW(merge_to_directory(again));
  EXPECT_TRUE(fs::is_regular_file(fs::path(again.out) / "model.safetensors"));
  const auto stamp = fs::last_write_time(fs::path(o.out) / "model.safetensors");
  try {
    merge_to_directory(o);
    FAIL() << "merge overwrote an existing model directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("already exists"), std::string::npos) << e.what();
    EXPECT_FALSE(e.hint().empty());
  }
  EXPECT_EQ(fs::last_write_time(fs::path(o.out) / "model.safetensors"), stamp);
  EXPECT_EQ(litter(f.tmp.path), 0);
}

TEST(Merge, AdapterForAnotherConfigFailsNamingTheTensorAndLeavesNoOutput) {
  Fixture f;
  nn::ModelConfig wider = testing::gpt2_config();
  wider.n_embd = 48;
  wider.n_inner = 4 * 48;
  const fs::path other = f.tmp.path / "other";
  io::save_model(nn::Transformer(wider), other.string());
  MergeOptions o;
  o.model = other.string();
  o.adapter = f.adapter.string();
  o.out = (f.tmp.path / "merged").string();
  try {
    merge_to_directory(o);
    FAIL() << "an adapter for n_embd 32 merged into n_embd 48";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("lora_A.weight"), std::string::npos) << what;
    EXPECT_NE(what.find("[4, 32]"), std::string::npos) << what;  // the file's shape
    EXPECT_NE(what.find("[4, 48]"), std::string::npos) << what;  // this model's
    EXPECT_NE(what.find("another base model"), std::string::npos) << what;
  }
  EXPECT_FALSE(fs::exists(o.out));
  EXPECT_EQ(litter(f.tmp.path), 0);

  // The same check guards generate/score/chat's loading path.
  InferenceSpec spec;
  spec.model = other.string();
  spec.adapter = f.adapter.string();
  EXPECT_THROW(load_inference_model(spec), Error);
}

}  // namespace
}  // namespace sllm::infer
