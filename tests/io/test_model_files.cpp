// io::load_weights / save_weights with extra tensors beside a model's parameters (a reward
// model's score.weight, rl/reward_model.h) and with replaced parameters (a LoRA run's merged
// weights): the file holds the extras under their exact names, a round trip gives back every
// byte, and a missing, unexpected or misshapen extra is an sllm::Error naming the tensor.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/model_files.h"
#include "io/safetensors.h"
#include "nn/config.h"
#include "nn/transformer.h"

namespace fs = std::filesystem;
using namespace sllm;

namespace {

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("sllm_mf_" + std::to_string(::getpid()) + "_" + name)).string();
}

// A (1, C) tensor with distinct, non-round values, so a byte that moved shows up.
Tensor score_like(int64_t C) {
  std::vector<float> v(static_cast<size_t>(C));
  for (int64_t i = 0; i < C; ++i) v[static_cast<size_t>(i)] = 0.1f * static_cast<float>(i) - 1.37f;
  return Tensor::from_floats(v, {1, C});
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.nbytes() == b.nbytes() && std::memcmp(a.f32(), b.f32(), a.nbytes()) == 0;
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

class ModelFilesExtra : public ::testing::Test {
 protected:
  void SetUp() override { model_.init(7); }
  void TearDown() override {
    for (const auto& p : paths_) fs::remove(p);
  }
  std::string path(const std::string& name) { return paths_.emplace_back(temp_path(name)); }

  nn::Transformer model_{nn::preset("tiny")};  // GPT-2 family: Conv1D weights are transposed in files
  std::vector<std::string> paths_;
};

TEST_F(ModelFilesExtra, RoundTripPreservesEveryByte) {
  const int64_t C = model_.config().n_embd;
  const Tensor score = score_like(C);
  const std::string file = path("roundtrip.safetensors");
  io::save_weights(model_, file, {{"score.weight", score}});

  // The file itself: the extra under its exact name (no GPT-2 "transformer." prefix), as written.
  {
    const io::SafetensorsFile f = io::SafetensorsFile::open(file);
    EXPECT_EQ(f.entries().size(), model_.parameters().size() + 1);
    const io::SafetensorsEntry* e = f.find("score.weight");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(f.find("transformer.score.weight"), nullptr);
    EXPECT_EQ(e->dtype, "F32");
    EXPECT_EQ(e->shape, (std::vector<int64_t>{1, C}));
    ASSERT_EQ(e->nbytes, score.nbytes());
    EXPECT_EQ(std::memcmp(e->data, score.f32(), e->nbytes), 0);
  }

  nn::Transformer loaded(model_.config(), nn::ParamInit::Zeros);
  Tensor score_back = Tensor::zeros({1, C});
  io::load_weights(loaded, file, {{"score.weight", &score_back}});
  EXPECT_TRUE(same_bytes(score_back, score));
  const auto want = model_.parameters(), got = loaded.parameters();
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_TRUE(same_bytes(got[i].value, want[i].value)) << want[i].name;

  // Saving what was loaded writes the same file, byte for byte.
  const std::string again = path("again.safetensors");
  io::save_weights(loaded, again, {{"score.weight", score_back}});
  EXPECT_EQ(read_file(again), read_file(file));
}

TEST_F(ModelFilesExtra, MissingExtraIsAnErrorNamingIt) {
  const std::string file = path("no_score.safetensors");
  io::save_weights(model_, file);
  nn::Transformer loaded(model_.config(), nn::ParamInit::Zeros);
  Tensor score = Tensor::zeros({1, model_.config().n_embd});
  const std::string e = error_of([&] { io::load_weights(loaded, file, {{"score.weight", &score}}); });
  EXPECT_NE(e.find("missing tensor 'score.weight'"), std::string::npos) << e;
  EXPECT_NE(e.find("HINT"), std::string::npos) << e;
}

TEST_F(ModelFilesExtra, ExtraNotAskedForIsUnexpected) {
  const std::string file = path("with_score.safetensors");
  io::save_weights(model_, file, {{"score.weight", score_like(model_.config().n_embd)}});
  nn::Transformer loaded(model_.config(), nn::ParamInit::Zeros);
  const std::string e = error_of([&] { io::load_weights(loaded, file); });
  EXPECT_NE(e.find("unexpected tensor 'score.weight'"), std::string::npos) << e;
}

TEST_F(ModelFilesExtra, ExtraOfAnotherShapeIsAnError) {
  const std::string file = path("score_shape.safetensors");
  io::save_weights(model_, file, {{"score.weight", score_like(model_.config().n_embd)}});
  nn::Transformer loaded(model_.config(), nn::ParamInit::Zeros);
  Tensor two_labels = Tensor::zeros({2, model_.config().n_embd});
  const std::string e = error_of([&] { io::load_weights(loaded, file, {{"score.weight", &two_labels}}); });
  EXPECT_NE(e.find("'score.weight' has shape"), std::string::npos) << e;
}

TEST_F(ModelFilesExtra, ReplacedParameterIsWrittenInItsPlaceAndTheModelIsUntouched) {
  const nn::Parameter wte = model_.parameters().front();
  const Tensor before = wte.value.clone();
  const Tensor half = Tensor::full(wte.value.shape(), 0.5f);
  const std::string file = path("replaced.safetensors");
  io::save_weights(model_, file, {}, {{wte.name, half}});
  EXPECT_TRUE(same_bytes(wte.value, before));

  nn::Transformer loaded(model_.config(), nn::ParamInit::Zeros);
  io::load_weights(loaded, file);
  const auto want = model_.parameters(), got = loaded.parameters();
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_TRUE(same_bytes(got[i].value, want[i].name == wte.name ? half : want[i].value)) << want[i].name;
}

}  // namespace
