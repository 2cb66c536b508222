// PEFT adapter files (src/lora/peft_files.h): write, read into a fresh model, same logits;
// the config's fields; adapters for another base and missing tensors are errors.
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "io/safetensors.h"
#include "lora/peft_files.h"
#include "lora_test_support.h"

namespace sllm::lora {
namespace {

using namespace testing;

class PeftFamilies : public ::testing::TestWithParam<nn::Family> {};
INSTANTIATE_TEST_SUITE_P(Lora, PeftFamilies, ::testing::Values(nn::Family::GPT2, nn::Family::Llama),
                         family_name);

TEST_P(PeftFamilies, RoundTripGivesTheSameLogits) {
  ScratchDir dir("adapter");
  auto [ids, targets] = batch();
  auto model = tiny_model(GetParam());
  LoraModel lora(*model);
  LoraConfig cfg;
  cfg.r = 4;
  cfg.lora_alpha = 12;
  cfg.lora_dropout = 0.05f;
  cfg.use_rslora = true;
  cfg.target_modules = GetParam() == nn::Family::GPT2 ? std::vector<std::string>{"all-linear"}
                                                      : parse_targets("q_proj,v_proj,down_proj");
  lora.add_adapter("default", cfg);
  randomize_B(lora, 31);
  const std::vector<float> expected = floats(model->forward(ids));
  save_adapter(lora, dir.str(), "sllm/tiny");

  const auto config = nlohmann::json::parse(read_file(dir.str() + "/adapter_config.json"));
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["task_type"], "CAUSAL_LM");
  EXPECT_EQ(config["r"], 4);
  EXPECT_EQ(config["lora_alpha"], 12.0);
  EXPECT_NEAR(config["lora_dropout"].get<double>(), 0.05, 1e-7);
  EXPECT_EQ(config["use_rslora"], true);
  EXPECT_EQ(config["bias"], "none");
  EXPECT_EQ(config["base_model_name_or_path"], "sllm/tiny");
  EXPECT_EQ(config["fan_in_fan_out"], GetParam() == nn::Family::GPT2);  // Conv1D
  if (GetParam() == nn::Family::GPT2)
    EXPECT_EQ(config["target_modules"], nlohmann::json({"c_attn", "c_fc", "c_proj"}));
  else
    EXPECT_EQ(config["target_modules"], nlohmann::json({"q_proj", "v_proj", "down_proj"}));

  const auto file = io::SafetensorsFile::open(dir.str() + "/adapter_model.safetensors");
  const std::string first = GetParam() == nn::Family::GPT2 ? "transformer.h.0.attn.c_attn" : "model.layers.0.self_attn.q_proj";
  const int64_t out = GetParam() == nn::Family::GPT2 ? 96 : 32;
  EXPECT_EQ(file.get("base_model.model." + first + ".lora_A.weight").shape, (std::vector<int64_t>{4, 32}));
  EXPECT_EQ(file.get("base_model.model." + first + ".lora_B.weight").shape, (std::vector<int64_t>{out, 4}));
  EXPECT_EQ(file.entries().size(), lora.parameters().size());

  auto fresh = tiny_model(GetParam());
  LoraModel loaded(*fresh);
  load_adapter(loaded, dir.str());
  EXPECT_EQ(loaded.active(), "default");
  EXPECT_EQ(loaded.config("default").r, 4);
  EXPECT_TRUE(loaded.config("default").use_rslora);
  EXPECT_EQ(floats(fresh->forward(ids)), expected);
}

TEST(PeftFiles, AdapterForAnotherBaseNamesTheTensorAndBothShapes) {
  ScratchDir dir("adapter");
  auto small = tiny_model(nn::Family::Llama, 32);
  LoraModel lora(*small);
  LoraConfig cfg;
  cfg.target_modules = {"q_proj"};
  lora.add_adapter("default", cfg);
  save_adapter(lora, dir.str(), "small");
  auto wide = tiny_model(nn::Family::Llama, 48);
  LoraModel other(*wide);
  const std::string e = error_of([&] { load_adapter(other, dir.str()); });
  EXPECT_NE(e.find("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight has shape [8, 32] but this model "
                   "needs [8, 48]"),
            std::string::npos)
      << e;
  EXPECT_TRUE(other.adapter_names().empty());
  for (const auto& p : wide->parameters()) EXPECT_TRUE(p.value.requires_grad()) << p.name;
}

TEST(PeftFiles, MissingOrForeignTensorIsAnError) {
  ScratchDir dir("adapter");
  auto model = tiny_model(nn::Family::GPT2);
  LoraModel lora(*model);
  lora.add_adapter("default", LoraConfig{});
  save_adapter(lora, dir.str(), "tiny");
  const std::string weights = dir.str() + "/adapter_model.safetensors";
  // Rewrite the file without one tensor, then with one for a module this model lacks.
  std::vector<Tensor> keep;
  auto rewrite = [&](const std::string& drop, const std::string& extra) {
    const auto file = io::SafetensorsFile::open(weights);
    io::SafetensorsWriter w;
    std::vector<std::string> bytes;
    bytes.reserve(file.entries().size() + 1);
    for (const auto& e : file.entries()) {
      if (e.name == drop) continue;
      bytes.emplace_back(reinterpret_cast<const char*>(e.data), e.nbytes);
      w.add(e.name, e.dtype, e.shape, bytes.back().data(), e.nbytes);
    }
    if (!extra.empty()) {
      bytes.emplace_back(4 * 8 * 32, '\0');
      w.add(extra, "F32", {8, 32}, bytes.back().data(), bytes.back().size());
    }
    w.write(weights + ".new");
  };
  const std::string a0 = "base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight";
  rewrite(a0, "");
  std::filesystem::rename(weights + ".new", weights);
  auto fresh = tiny_model(nn::Family::GPT2);
  LoraModel loaded(*fresh);
  std::string e = error_of([&] { load_adapter(loaded, dir.str()); });
  EXPECT_NE(e.find(a0 + " is missing"), std::string::npos) << e;

  save_adapter(lora, dir.str(), "tiny");
  rewrite("", "base_model.model.transformer.h.7.mlp.c_fc.lora_A.weight");
  std::filesystem::rename(weights + ".new", weights);
  e = error_of([&] { load_adapter(loaded, dir.str()); });
  EXPECT_NE(e.find("transformer.h.7.mlp.c_fc.lora_A.weight belongs to no adapted Linear"), std::string::npos) << e;
  EXPECT_TRUE(loaded.adapter_names().empty());
}

TEST(PeftFiles, ConfigErrors) {
  ScratchDir dir("adapter");
  std::filesystem::create_directories(dir.str());
  auto model = tiny_model(nn::Family::Llama);
  LoraModel lora(*model);
  auto with_config = [&](const std::string& json_text) {
    write_file_atomic(dir.str() + "/adapter_config.json", json_text);
    return error_of([&] { load_adapter(lora, dir.str()); });
  };
  EXPECT_NE(with_config(R"({"peft_type": "IA3", "r": 8})").find("peft_type is 'IA3'"), std::string::npos);
  EXPECT_NE(with_config(R"({"peft_type": "LORA", "r": 0, "target_modules": ["q_proj"]})").find("LoRA rank r = 0"),
            std::string::npos);
  EXPECT_NE(with_config(R"({"peft_type": "LORA", "r": 8, "bias": "all", "target_modules": ["q_proj"]})")
                .find("bias is 'all'"),
            std::string::npos);
  EXPECT_NE(with_config(R"({"peft_type": "LORA", "r": 8, "target_modules": ["c_attn"]})")
                .find("'c_attn' matches no Linear"),
            std::string::npos);
  EXPECT_NE(with_config("{not json").find("not valid JSON"), std::string::npos);
  const LoraConfig regex = [&] {
    write_file_atomic(dir.str() + "/adapter_config.json",
                      R"({"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ".*\\.(q|v)_proj"})");
    return read_adapter_config(dir.str());
  }();
  EXPECT_EQ(regex.target_regex, R"(.*\.(q|v)_proj)");
  EXPECT_EQ(select_targets(*model, regex).size(), 4u);
}

}  // namespace
}  // namespace sllm::lora
