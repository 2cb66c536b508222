// sllm reads adapters written by PEFT (tests/golden/peft/, made by tools/make_peft_golden.py
// with PEFT 0.10 on transformers' GPT2LMHeadModel and LlamaForCausalLM): the same logits,
// loss and gradient of every lora_A / lora_B as PEFT's float32 forward and backward, and
// the same A and B after 3 AdamW steps.
// With SLLM_PEFT_OUT set, the adapters are re-saved there by sllm for the opt-in reverse
// check (`tools/make_peft_golden.py --check-sllm DIR`: PEFT loads sllm's files).
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "autograd/autograd.h"
#include "io/model_files.h"
#include "io/safetensors.h"
#include "lora/peft_files.h"
#include "lora_test_support.h"
#include "optim/adamw.h"
#include "tests/nn/nn_test_support.h"

namespace sllm::lora {
namespace {

using nn::testing::entry_tensor;     // an F32/I32 golden entry as a Tensor
using nn::testing::relative_to_max;  // max |ours - ref| / max |ref|

using namespace testing;

class PeftGolden : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};
INSTANTIATE_TEST_SUITE_P(Peft, PeftGolden,
                         ::testing::Values(std::make_pair(std::string("gpt2_all_linear"), std::string("gpt2_tiny")),
                                           std::make_pair(std::string("llama_qv_rslora"), std::string("llama_tiny"))),
                         [](const auto& info) { return info.param.first; });

// Both sides are float32 with sums in different orders (our GEMMs vs PyTorch's): ~1e-6
// relative per op over a few dozen ops; 1e-4 of each tensor's scale holds with margin and
// is far below a wrong scale (alpha/r vs alpha/sqrt(r) is 2x here) or a transposed A.
constexpr double kTol = 1e-4;

TEST_P(PeftGolden, LogitsLossGradientsAndAdamWStepsMatchPeft) {
  const std::string golden = std::string(SLLM_SOURCE_DIR) + "/tests/golden/";
  const std::string adapter_dir = golden + "peft/" + GetParam().first;
  auto model = io::load_model(golden + GetParam().second);
  LoraModel lora(*model);
  load_adapter(lora, adapter_dir);
  const auto file = io::SafetensorsFile::open(adapter_dir + "/golden.safetensors");
  const Tensor ids = entry_tensor(file.get("ids")), targets = entry_tensor(file.get("targets"));

  EXPECT_LE(relative_to_max(model->forward(ids), entry_tensor(file.get("logits"))), kTol);
  Tensor loss = model->loss(ids, targets);
  EXPECT_NEAR(loss.item(), entry_tensor(file.get("loss")).item(), kTol * loss.item());
  autograd::backward(loss);
  int checked = 0;
  for (const nn::Parameter& p : lora.parameters()) {
    const io::SafetensorsEntry& g = file.get("grad." + p.name);
    ASSERT_TRUE(p.value.grad().defined()) << p.name;
    EXPECT_EQ(p.value.grad().shape(), Shape(g.shape.begin(), g.shape.end())) << p.name;
    EXPECT_LE(relative_to_max(p.value.grad(), entry_tensor(g)), kTol) << p.name;
    ++checked;
  }
  EXPECT_EQ(5 + 2 * checked, static_cast<int>(file.entries().size()));  // every gradient and A/B in the file

  // 3 AdamW steps on the adapter (torch.optim.AdamW with the same settings; decay on every
  // A and B, as torch applies it to the whole group).
  std::vector<optim::ParamRef> refs;
  for (const nn::Parameter& p : lora.parameters()) refs.push_back({p.name, p.value, true});
  optim::AdamW opt(refs, optim::AdamWConfig{.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f});
  const std::vector<float> losses = entry_tensor(file.get("adamw.losses")).to_floats();
  for (int step = 0; step < 3; ++step) {
    opt.zero_grad();
    Tensor l = model->loss(ids, targets);
    EXPECT_NEAR(l.item(), losses[step], kTol * losses[step]) << "step " << step;
    autograd::backward(l);
    opt.step(1e-2f);
  }
  for (const nn::Parameter& p : lora.parameters())
    EXPECT_LE(relative_to_max(p.value, entry_tensor(file.get("adamw." + p.name))), kTol)
        << p.name;
}

TEST_P(PeftGolden, ReSavedBySllmForTheReverseCheck) {
  const char* out = std::getenv("SLLM_PEFT_OUT");
  if (!out) GTEST_SKIP() << "set SLLM_PEFT_OUT=DIR to write sllm's copies for tools/make_peft_golden.py --check-sllm";
  const std::string golden = std::string(SLLM_SOURCE_DIR) + "/tests/golden/";
  auto model = io::load_model(golden + GetParam().second);
  LoraModel lora(*model);
  load_adapter(lora, golden + "peft/" + GetParam().first);
  save_adapter(lora, std::string(out) + "/" + GetParam().first, "tests/golden/" + GetParam().second);
}

}  // namespace
}  // namespace sllm::lora
