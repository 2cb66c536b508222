// QLoRA's forward and backward against PyTorch (tests/golden/quant/qlora_{gpt2,llama}
// .safetensors, tools/make_golden_quant.py): the tiny models of tests/golden/ with the PEFT
// adapters of tests/golden/peft/ (as tests/lora/test_peft_golden.cpp reads them), every
// trunk Linear quantized by bitsandbytes 0.50.2 (NF4, double quantization, blocksize 64) and
// dequantized, then PEFT's LoRA forward and backward in float64 on top.
// sllm quantizes the same models itself (quant::quantize_model, as `sllm sft --method
// qlora` does on load) and must hold bitsandbytes' bytes for every Linear (hashed in the
// file's metadata), leave the LM head, embeddings and norms dense, and give the same
// logits, loss and gradient of every lora_A / lora_B.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>

#include "autograd/autograd.h"
#include "io/model_files.h"
#include "io/safetensors.h"
#include "lora/lora_model.h"
#include "lora/peft_files.h"
#include "quant/quantize_model.h"
#include "quant/quantized_weight.h"
#include "tests/nn/nn_test_support.h"

namespace sllm::quant {
namespace {

using nn::testing::entry_tensor;     // an F32/I32 golden entry as a Tensor
using nn::testing::relative_to_max;  // max |ours - ref| / max |ref|

const std::string kGolden = std::string(SLLM_SOURCE_DIR) + "/tests/golden/";

// FNV-1a, 64 bits, of a tensor's bytes, as the script hashes bitsandbytes' arrays.
std::string fnv1a64(const void* data, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const uint8_t*>(data)[i]) * 0x100000001b3ull;
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}
std::string fnv1a64(const Tensor& t) { return fnv1a64(t.raw(), t.nbytes()); }

struct Case {
  std::string family, model, adapter;
};
class QloraGolden : public ::testing::TestWithParam<Case> {
 protected:
  const io::SafetensorsFile& file() {
    if (!file_) file_ = std::make_unique<io::SafetensorsFile>(
                   io::SafetensorsFile::open(kGolden + "quant/qlora_" + GetParam().family + ".safetensors"));
    return *file_;
  }
  std::unique_ptr<nn::Transformer> quantized_model() {
    auto model = io::load_model(kGolden + GetParam().model);
    const QuantizeReport r = quantize_model(*model, QuantOptions{QuantType::NF4, 64, true});
    EXPECT_EQ(r.linears, int64_t(model->linears().size()));
    return model;
  }

 private:
  std::unique_ptr<io::SafetensorsFile> file_;
};
INSTANTIATE_TEST_SUITE_P(Tiny, QloraGolden,
                         ::testing::Values(Case{"gpt2", "gpt2_tiny", "peft/gpt2_all_linear"},
                                           Case{"llama", "llama_tiny", "peft/llama_qv_rslora"}),
                         [](const auto& info) { return info.param.family; });

// The file's magic and what the script quantized.
TEST_P(QloraGolden, FileDescribesBitsandbytesNf4WithDoubleQuantization) {
  const auto& meta = file().metadata();
  EXPECT_EQ(meta.at("format"), "sllm-golden");
  EXPECT_EQ(meta.at("version"), "1");
  EXPECT_EQ(meta.at("kind"), "qlora");
  EXPECT_EQ(meta.at("quant_type"), "nf4");
  EXPECT_EQ(meta.at("blocksize"), "64");
  EXPECT_EQ(meta.at("double_quant"), "true");
  EXPECT_EQ(meta.at("nested_blocksize"), "256");
}

// quantize_model packs exactly the Linears transformers' bitsandbytes integration replaces,
// into bitsandbytes' bytes (GPT-2's Conv1D weights transposed to (out, in) first, as the
// script does), and leaves every other parameter dense and in the parameter list.
TEST_P(QloraGolden, QuantizeModelHoldsBitsandbytesBytesForEveryTrunkLinear) {
  auto model = quantized_model();
  const auto& meta = file().metadata();
  std::set<std::string> expected, packed;
  std::stringstream list(meta.at("quantized_linears"));
  for (std::string name; std::getline(list, name, ',');) expected.insert(name);
  for (nn::Linear* linear : model->linears()) {
    ASSERT_TRUE(linear->is_packed()) << linear->path();
    packed.insert(linear->path());
    const auto* w = dynamic_cast<const QuantizedWeight*>(linear->packed_weight().get());
    ASSERT_NE(w, nullptr) << linear->path();
    const QuantizedTensor& q = w->tensor();
    ASSERT_TRUE(q.nested);
    EXPECT_EQ(fnv1a64(q.packed), meta.at(linear->path() + ".packed.fnv1a64")) << linear->path();
    EXPECT_EQ(fnv1a64(q.absmax), meta.at(linear->path() + ".absmax.fnv1a64")) << linear->path();
    EXPECT_EQ(fnv1a64(q.nested_absmax), meta.at(linear->path() + ".nested_absmax.fnv1a64")) << linear->path();
    EXPECT_EQ(fnv1a64(&q.offset, sizeof q.offset), meta.at(linear->path() + ".offset.fnv1a64")) << linear->path();
  }
  EXPECT_EQ(packed, expected);
  // What stays dense: embeddings, norms, biases and the LM head (tied to wte for GPT-2);
  // the packed weights leave the parameter list.
  const bool gpt2 = GetParam().family == "gpt2";
  int dense_2d = 0;
  for (const nn::Parameter& p : model->parameters()) {
    EXPECT_EQ(packed.count(p.name.substr(0, p.name.rfind('.'))) && p.name.ends_with(".weight"), false)
        << p.name << ": a packed Linear's weight is still a parameter";
    dense_2d += p.value.ndim() == 2;
  }
  EXPECT_EQ(dense_2d, 2) << (gpt2 ? "wte and wpe" : "embed_tokens and lm_head");
  EXPECT_NO_THROW(model->param(gpt2 ? "transformer.wte.weight" : "lm_head.weight"));
}

// Both sides multiply by the same dequantized weights (the bytes above, dequantized as
// test_quant_golden.cpp checks bit for bit), so what remains is float32 against float64
// arithmetic over the same few dozen ops as tests/lora/test_peft_golden.cpp: ~1e-6 relative
// per op, and its tolerance of 1e-4 of each tensor's scale holds with margin (the logits
// measured 5e-7 off). It is far below what quantization itself moves: the same adapters on
// the unquantized base land 0.44 of the logits' scale away (checked last, at > 100× the
// tolerance), so a Linear left dense, a wrong scale or a wrong code fails here.
constexpr double kTol = 1e-4;

TEST_P(QloraGolden, LogitsLossAndLoraGradientsMatchPyTorch) {
  auto model = quantized_model();
  lora::LoraModel lora(*model);
  lora::load_adapter(lora, kGolden + GetParam().adapter);
  const Tensor ids = entry_tensor(file().get("ids")), targets = entry_tensor(file().get("targets"));
  const Tensor ref_logits = entry_tensor(file().get("logits"));

  EXPECT_LE(relative_to_max(model->forward(ids), ref_logits), kTol);
  Tensor loss = model->loss(ids, targets);
  const float ref_loss = entry_tensor(file().get("loss")).item();
  EXPECT_NEAR(loss.item(), ref_loss, kTol * ref_loss);
  autograd::backward(loss);
  int checked = 0;
  for (const nn::Parameter& p : lora.parameters()) {
    const io::SafetensorsEntry& g = file().get("grad." + p.name);
    ASSERT_TRUE(p.value.grad().defined()) << p.name;
    EXPECT_EQ(p.value.grad().shape(), Shape(g.shape.begin(), g.shape.end())) << p.name;
    EXPECT_LE(relative_to_max(p.value.grad(), entry_tensor(g)), kTol) << p.name;
    ++checked;
  }
  EXPECT_EQ(4 + checked, int(file().entries().size())) << "a gradient in the file that sllm has no parameter for";
  // The base stays frozen: no gradient reaches anything but the adapters.
  for (const nn::Parameter& p : model->parameters())
    if (p.name.find("lora_") == std::string::npos) {
      EXPECT_FALSE(p.value.grad().defined()) << p.name;
    }

  // The same adapters on the unquantized base: far outside the tolerance.
  auto dense = io::load_model(kGolden + GetParam().model);
  lora::LoraModel dense_lora(*dense);
  lora::load_adapter(dense_lora, kGolden + GetParam().adapter);
  EXPECT_GT(relative_to_max(dense->forward(ids), ref_logits), 100 * kTol);
}

}  // namespace
}  // namespace sllm::quant
