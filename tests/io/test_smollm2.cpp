// The real model (issue 12, opt-in): when `make smollm2` has fetched
// data/models/SmolLM2-135M-Instruct.Q4_1.gguf, sllm's next-token log-probs on fixed prompts
// equal those transformers computes loading the same file (tests/golden/smollm2/logits.json,
// tools/make_smollm2_golden.py): the same top-1 next token after each prompt, and every
// teacher-forced log-prob within 1e-3 (the bar; both sides run fp32 on the same
// dequantized weights, so only the order of the forward's sums differs). Skips with a message
// when the file is missing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "io/gguf_model.h"

using namespace sllm;

namespace {

const std::string kModel = std::string(SLLM_SOURCE_DIR) + "/data/models/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kGolden = std::string(SLLM_SOURCE_DIR) + "/tests/golden/smollm2/logits.json";

// log_softmax of one row of logits, in double.
std::vector<double> log_softmax(const float* row, int64_t V) {
  const double mx = *std::max_element(row, row + V);
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v]) - mx);
  const double lse = mx + std::log(sum);
  std::vector<double> out(static_cast<size_t>(V));
  for (int64_t v = 0; v < V; ++v) out[static_cast<size_t>(v)] = static_cast<double>(row[v]) - lse;
  return out;
}

}  // namespace

TEST(SmolLM2, NextTokensMatchTransformers) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << kModel << " is missing: `make smollm2` fetches it (this test is opt-in)";
  const nlohmann::json golden = nlohmann::json::parse(read_file(kGolden));
  auto model = io::load_gguf_model(kModel);
  const int64_t V = model->config().vocab_size;
  ASSERT_EQ(V, 49152);
  double max_delta = 0;
  for (const auto& p : golden["prompts"]) {
    const std::vector<int32_t> ids = p["ids"].get<std::vector<int32_t>>();
    const auto T = static_cast<int64_t>(ids.size());
    Tensor logits = model->forward(Tensor::from_ints(ids, {1, T}));
    ASSERT_EQ(logits.shape(), (Shape{1, T, V}));
    const std::vector<double> want = p["next_logprobs"].get<std::vector<double>>();
    ASSERT_EQ(static_cast<int64_t>(want.size()), T - 1);
    for (int64_t t = 0; t + 1 < T; ++t) {
      const std::vector<double> lp = log_softmax(logits.f32() + t * V, V);
      max_delta = std::max(max_delta, std::fabs(lp[static_cast<size_t>(ids[static_cast<size_t>(t + 1)])] - want[static_cast<size_t>(t)]));
    }
    const std::vector<double> last = log_softmax(logits.f32() + (T - 1) * V, V);
    const auto top = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    EXPECT_EQ(top, p["top1"].get<int32_t>()) << "prompt: " << p["text"].get<std::string>();
    max_delta = std::max(max_delta, std::fabs(last[static_cast<size_t>(top)] - p["top1_logprob"].get<double>()));
  }
  std::printf("SmolLM2 vs transformers: max |delta log-prob| = %.3g over %zu prompts\n", max_delta, golden["prompts"].size());
  RecordProperty("max_abs_delta_logprob", std::to_string(max_delta));
  EXPECT_LE(max_delta, 1e-3);
}
