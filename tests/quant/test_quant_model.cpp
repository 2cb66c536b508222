// quant::quantize_model, QLoRA's base (Dettmers et al. 2023, section 4: "we use NF4 with
// double quantization ... for all linear layers of the base model"): every trunk Linear
// packed, the embeddings, norms and LM head left as they are (transformers' bitsandbytes
// integration skips the output head, and PEFT's QLoRA keeps the rest in 16 bits), the
// model's weights then at most 0.3× their bf16 size where the trunk Linears dominate, and
// bad input refused before anything is changed.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "../lora/lora_test_support.h"
#include "quant/quantize_model.h"
#include "quant/quantized_weight.h"

namespace sllm::quant {
namespace {

using lora::testing::error_of;
using lora::testing::family_name;

class QuantizeModel : public ::testing::TestWithParam<nn::Family> {};
INSTANTIATE_TEST_SUITE_P(Families, QuantizeModel, ::testing::Values(nn::Family::GPT2, nn::Family::Llama),
                         family_name);

TEST_P(QuantizeModel, PacksEveryTrunkLinearAndNothingElse) {
  auto model = lora::testing::tiny_model(GetParam());
  std::map<std::string, std::vector<float>> before;
  for (const nn::Parameter& p : model->parameters()) before[p.name] = p.value.to_floats();
  int64_t linear_params = 0;
  for (nn::Linear* l : model->linears()) linear_params += l->in_features() * l->out_features();

  const QuantizeReport r = quantize_model(*model, {});
  ASSERT_EQ(r.linears, int64_t(model->linears().size()));
  EXPECT_EQ(r.linears, GetParam() == nn::Family::GPT2 ? 4 * 2 : 7 * 2);  // per layer: c_attn, c_proj, c_fc, c_proj / q, k, v, o, gate, up, down
  EXPECT_EQ(r.params, linear_params);
  int64_t bytes = 0;
  for (nn::Linear* l : model->linears()) {
    ASSERT_TRUE(l->is_packed()) << l->path();
    EXPECT_FALSE(l->weight().defined()) << l->path() << ": the dense weight is released";
    const auto* w = dynamic_cast<const QuantizedWeight*>(l->packed_weight().get());
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->tensor().type, QuantType::NF4);
    EXPECT_EQ(w->tensor().blocksize, 64);
    EXPECT_TRUE(w->tensor().nested);
    bytes += w->nbytes();
    before.erase(l->path() + ".weight");
  }
  EXPECT_EQ(r.bytes, bytes);
  EXPECT_EQ(model->packed_bytes(), bytes);
  const QuantizeReport again = packed_report(*model);
  EXPECT_EQ(again.linears, r.linears);
  EXPECT_EQ(again.params, r.params);
  EXPECT_EQ(again.bytes, r.bytes);
  // Every other parameter (embeddings, norms, biases, the head) is still there, unchanged.
  ASSERT_EQ(model->parameters().size(), before.size());
  for (const nn::Parameter& p : model->parameters()) {
    ASSERT_TRUE(before.count(p.name)) << p.name;
    EXPECT_EQ(p.value.dtype(), DType::F32) << p.name;
    EXPECT_EQ(p.value.to_floats(), before.at(p.name)) << p.name;
  }
  EXPECT_TRUE(before.count(GetParam() == nn::Family::GPT2 ? "transformer.wte.weight" : "lm_head.weight"));
  // And the model still runs.
  const auto [ids, targets] = lora::testing::batch();
  EXPECT_TRUE(std::isfinite(model->loss(ids, targets).item()));
}

TEST_P(QuantizeModel, RefusesBadInputBeforeChangingAnything) {
  auto model = lora::testing::tiny_model(GetParam());
  for (int64_t bs : {48, 16, 8192}) {
    const std::string e = error_of([&] { quantize_model(*model, {QuantType::NF4, bs, true}); });
    EXPECT_NE(e.find("not a power of two in [32, 4096]"), std::string::npos) << e;
    EXPECT_NE(e.find("HINT"), std::string::npos) << e;
  }
  EXPECT_EQ(packed_report(*model).linears, 0);
  quantize_model(*model, {});
  const std::string e = error_of([&] { quantize_model(*model, {}); });
  EXPECT_NE(e.find("already"), std::string::npos) << e;
  EXPECT_NE(e.find("HINT"), std::string::npos) << e;
}

// Weights in memory against the same model in bf16 (2 bytes a parameter). The packed
// Linears hold 4 + 8/64 + 32/(64·256) bits a parameter plus their code tables, about 0.26×
// bf16 on their own; the parameters left dense stay f32 on the CPU (4 bytes, 2× bf16), so
// the whole model meets 0.3× when the trunk Linears are ≥ 97.6% of it:
// (0.516·f + 4·(1 − f)) / 2 <= 0.3. Here a Llama of width 256 over a 32-token vocabulary
// (as in every model of a few hundred million parameters and up, whose Linears dominate).
TEST(QuantizeModelMemory, WeightsAreAtMostThreeTenthsOfTheirBf16Size) {
  nn::ModelConfig cfg;
  cfg.family = nn::Family::Llama;
  cfg.vocab_size = 32;
  cfg.n_ctx = 16;
  cfg.n_embd = 256;
  cfg.n_layer = 2;
  cfg.n_head = 4;
  cfg.n_kv_head = 4;
  cfg.n_inner = 1024;
  cfg.tie_embeddings = false;
  nn::Transformer model(cfg);
  model.init(1);
  int64_t params = 0;
  for (const nn::Parameter& p : model.parameters()) params += p.value.numel();
  const QuantizeReport r = quantize_model(model, {});
  int64_t dense_bytes = 0;
  for (const nn::Parameter& p : model.parameters()) dense_bytes += int64_t(p.value.nbytes());
  const double bf16 = 2.0 * double(params);
  // 4.127 / 16 = 0.258, and each Linear's two code tables (1088 bytes) add 0.004 at these sizes.
  EXPECT_LE(double(r.bytes) / (2.0 * double(r.params)), 0.265) << "the packed Linears alone";
  EXPECT_LE(double(model.packed_bytes() + dense_bytes) / bf16, 0.3)
      << "packed " << model.packed_bytes() << " + dense " << dense_bytes << " bytes, bf16 " << bf16;
  EXPECT_LE(r.bits_per_param(), 4.2);  // 4.127 + the tables of 16 Linears of 65536..262144 weights
}

}  // namespace
}  // namespace sllm::quant
