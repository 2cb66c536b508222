// merge (W += s·B·A) and unmerge (W -= s·B·A), src/lora/lora_layer.cpp.
//
// The bound for merge then unmerge. Let d = fl(s·B·A), computed identically both times (same
// kernels, same inputs). Merge stores W' = fl(W + d) = W + d + e1 with |e1| <= u·|W + d|;
// unmerge stores W'' = fl(W' − d) = W + e1 + e2 with |e2| <= u·|W + e1| (the subtraction of
// d is then exact arithmetic on W' − d = W + e1 before rounding). So
//   |W'' − W| <= u·(|W + d| + |W| + u·|W + d|),   u = 2^-24 (f32 round to nearest),
// and since W' = fl(W + d), |W + d| <= |W'|/(1 − u) <= |W'|·(1 + 2u). The test checks
//   |W'' − W| <= u·(|W'|·(1 + u) + |W|)·(1 + 2u)
// from the stored W and W' (the u² terms folded into the last factor). Many come back exactly.
#include <cmath>

#include "lora/lora_model.h"
#include "lora_test_support.h"
#include "ops/ops.h"

namespace sllm::lora {
namespace {

using namespace testing;

class MergeFamilies : public ::testing::TestWithParam<nn::Family> {};
INSTANTIATE_TEST_SUITE_P(Lora, MergeFamilies, ::testing::Values(nn::Family::GPT2, nn::Family::Llama),
                         family_name);

TEST_P(MergeFamilies, MergeThenUnmergeRestoresWWithinTwoRoundings) {
  auto model = tiny_model(GetParam());
  LoraModel lora(*model);
  LoraConfig cfg;
  cfg.r = 4;
  cfg.lora_alpha = 16;
  lora.add_adapter("default", cfg);
  randomize_B(lora, 21, "", 0.2f);
  std::vector<std::vector<float>> before, merged;
  for (LoraLayer* l : lora.layers("default")) before.push_back(floats(l->base().weight()));
  lora.merge();
  EXPECT_TRUE(lora.merged());
  for (LoraLayer* l : lora.layers("default")) merged.push_back(floats(l->base().weight()));
  lora.unmerge();
  EXPECT_FALSE(lora.merged());
  const double u = std::ldexp(1.0, -24);
  int64_t moved = 0, exact = 0;
  const auto layers = lora.layers("default");
  for (size_t k = 0; k < layers.size(); ++k) {
    const std::vector<float> after = floats(layers[k]->base().weight());
    for (size_t i = 0; i < after.size(); ++i) {
      const double w = before[k][i], wm = merged[k][i];
      moved += wm != w;
      exact += after[i] == before[k][i];
      const double bound = u * (std::fabs(wm) * (1 + u) + std::fabs(w)) * (1 + 2 * u);
      ASSERT_LE(std::fabs(after[i] - w), bound) << layers[k]->base().path() << " element " << i;
    }
  }
  EXPECT_GT(moved, 0);  // the adapter did change W while merged
  EXPECT_GT(exact, 0);
}

TEST_P(MergeFamilies, MergedLogitsEqualAdapterLogits) {
  auto model = tiny_model(GetParam());
  auto [ids, targets] = batch();
  const std::vector<float> base = floats(model->forward(ids));
  LoraModel lora(*model);
  LoraConfig cfg;
  cfg.r = 4;
  cfg.use_rslora = true;
  cfg.lora_alpha = 4;
  lora.add_adapter("default", cfg);
  randomize_B(lora, 22, "", 0.2f);
  const Tensor adapted = model->forward(ids);
  lora.merge();
  const Tensor merged = model->forward(ids);  // the adapter path is skipped: W already holds s·B·A
  // x·(W + s·B·A)ᵀ vs x·Wᵀ + s·(x·Aᵀ)·Bᵀ: the same sums in another order, so equal up to
  // f32 rounding of dot products of length <= 4C, a few ulps of the logits' scale per layer.
  const std::vector<float> a = floats(adapted), m = floats(merged);
  double scale = 0, worst = 0, moved = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::fabs(double(a[i])));
    worst = std::max(worst, std::fabs(double(a[i]) - m[i]));
    moved = std::max(moved, std::fabs(double(a[i]) - base[i]));
  }
  EXPECT_LE(worst, 1e-5 * scale);
  EXPECT_GT(moved, 1e3 * worst);  // the adapter's effect is far above the rounding
  EXPECT_NE(error_of([&] { lora.merge(); }).find("already merged"), std::string::npos);
  EXPECT_NE(error_of([&] { auto off = lora.disabled(); }).find("unmerge() first"), std::string::npos);
  lora.unmerge();
  const std::vector<float> again = floats(model->forward(ids));
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(again[i], a[i], 1e-5 * scale);
}

}  // namespace
}  // namespace sllm::lora
