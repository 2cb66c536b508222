// Activation checkpointing (autograd::checkpoint, Transformer::set_gradient_checkpointing)
// recomputes each block in backward: the loss and every gradient must be the ones of the
// plain graph, bit for bit (the kernels are deterministic and LoRA's dropout masks are
// functions of (seed, step), so the recomputation is the forward again). Checked for full
// training (every parameter trains, the block inputs need gradients) and for LoRA with
// dropout (frozen embeddings: the first block's input needs none, its adapters do).
#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "lora_test_support.h"

namespace sllm::lora::testing {
namespace {

struct LossAndGrads {
  float loss;
  std::vector<std::vector<float>> grads;
};

LossAndGrads loss_and_grads(nn::Transformer& model, const std::vector<nn::Parameter>& trainable) {
  const auto [ids, targets] = batch();
  const Tensor loss = model.loss(ids, targets);
  autograd::backward(loss);
  LossAndGrads r{loss.item(), {}};
  for (const nn::Parameter& p : trainable) {
    EXPECT_TRUE(p.value.grad().defined()) << p.name;
    r.grads.push_back(p.value.grad().defined() ? p.value.grad().to_floats() : std::vector<float>{});
  }
  return r;
}

void expect_same(const LossAndGrads& a, const LossAndGrads& b) {
  EXPECT_EQ(a.loss, b.loss);
  ASSERT_EQ(a.grads.size(), b.grads.size());
  for (size_t i = 0; i < a.grads.size(); ++i) EXPECT_EQ(a.grads[i], b.grads[i]) << "gradient " << i;
}

class Checkpointing : public ::testing::TestWithParam<nn::Family> {};

TEST_P(Checkpointing, FullTrainingGradientsAreTheGraphsBitForBit) {
  LossAndGrads plain, checkpointed;
  for (bool on : {false, true}) {
    auto model = tiny_model(GetParam());
    model->set_gradient_checkpointing(on);
    EXPECT_EQ(model->gradient_checkpointing(), on);
    (on ? checkpointed : plain) = loss_and_grads(*model, model->parameters());
  }
  expect_same(plain, checkpointed);
}

TEST_P(Checkpointing, LoraWithDropoutGradientsAreTheGraphsBitForBit) {
  LossAndGrads plain, checkpointed;
  for (bool on : {false, true}) {
    auto model = tiny_model(GetParam());
    LoraModel lora(*model);
    LoraConfig cfg;
    cfg.r = 4;
    cfg.lora_alpha = 8;
    cfg.lora_dropout = 0.2f;  // the recomputation must draw the same masks
    lora.add_adapter("default", cfg);
    randomize_B(lora, 11);
    lora.set_training(true);
    lora.set_dropout_step(5);
    model->set_gradient_checkpointing(on);
    (on ? checkpointed : plain) = loss_and_grads(*model, lora.parameters());
  }
  expect_same(plain, checkpointed);
}

TEST_P(Checkpointing, InferenceIsUnchanged) {
  auto model = tiny_model(GetParam());
  const auto [ids, targets] = batch();
  autograd::NoGradGuard no_grad;
  const std::vector<float> plain = model->forward(ids).to_floats();
  model->set_gradient_checkpointing(true);
  EXPECT_EQ(model->forward(ids).to_floats(), plain);
}

INSTANTIATE_TEST_SUITE_P(Families, Checkpointing, ::testing::Values(nn::Family::GPT2, nn::Family::Llama), family_name);

}  // namespace
}  // namespace sllm::lora::testing
