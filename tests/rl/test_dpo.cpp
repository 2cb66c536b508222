// DPO's pieces (src/rl/dpo.h): the sigmoid and IPO losses and their gradients against
// PyTorch (tests/golden/rl/dpo_loss.safetensors, tools/gen_rl_dpo_golden.py), ln 2 when the
// policy equals the reference, and sequence log-probabilities against infer::score_logprobs.
// The objective and the run are in test_dpo_objective.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "../nn/nn_test_support.h"
#include "autograd/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "infer/generate.h"
#include "io/safetensors.h"
#include "nn/config.h"
#include "nn/transformer.h"
#include "ops/ops.h"
#include "rl/dpo.h"

namespace sllm::rl {
namespace {

using nn::testing::entry_tensor;
using nn::testing::relative_to_max;

Tensor leaf(const Tensor& t) {
  Tensor c = t.clone();
  c.set_requires_grad(true);
  return c;
}

// Every case of the golden file: loss, the four gradients and the metrics.
TEST(DpoLoss, MatchesTorchGolden) {
  const io::SafetensorsFile file =
      io::SafetensorsFile::open(std::string(SLLM_SOURCE_DIR) + "/tests/golden/rl/dpo_loss.safetensors");
  const std::string cases = file.metadata().at("cases");
  int checked = 0;
  for (size_t start = 0; start <= cases.size();) {
    const size_t comma = std::min(cases.find(',', start), cases.size());
    const std::string c = cases.substr(start, comma - start);
    start = comma + 1;
    SCOPED_TRACE(c);
    auto get = [&](const std::string& key) {
      const io::SafetensorsEntry* e = file.find(c + "." + key);
      SLLM_ASSERT(e);
      return entry_tensor(*e);
    };
    const double beta = std::stod(file.metadata().at(c + ".beta"));
    const DpoLossType type = parse_dpo_loss_type(file.metadata().at(c + ".loss_type"));
    Tensor pc = leaf(get("pc")), pr = leaf(get("pr")), rc = leaf(get("rc")), rr = leaf(get("rr"));
    const DpoLossResult r = dpo_loss(pc, pr, rc, rr, beta, type);
    autograd::backward(r.loss);
    // f32 inputs, a few f32 ops: a few ulps of the loss's scale.
    EXPECT_LT(relative_to_max(r.loss, get("loss")), 2e-6);
    for (const auto& [t, key] : std::vector<std::pair<Tensor*, std::string>>{{&pc, "d_pc"}, {&pr, "d_pr"}, {&rc, "d_rc"}, {&rr, "d_rr"}})
      EXPECT_LT(relative_to_max(t->grad(), get(key)), 1e-5) << key;
    // The metrics are computed in double from the same f32 inputs.
    EXPECT_NEAR(r.chosen_reward, get("chosen_reward").item(), 1e-5 * (1 + std::fabs(r.chosen_reward)));
    EXPECT_NEAR(r.rejected_reward, get("rejected_reward").item(), 1e-5 * (1 + std::fabs(r.rejected_reward)));
    EXPECT_NEAR(r.margin, get("margin").item(), 1e-5 * (1 + std::fabs(r.margin)));
    EXPECT_EQ(static_cast<float>(r.accuracy), get("accuracy").item());  // a count / P, stored in f32
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

// The sigmoid loss at h = 0 is −log σ(0) = ln 2 exactly (in f32), whatever the log-probs,
// and its gradient is β/2 · (±1) / P on each input; IPO's is 2(0 − 1/(2β))/P · (±1).
TEST(DpoLoss, PolicyEqualToReferenceGivesLn2) {
  const Tensor lp = Tensor::from_floats({-12.5f, -3.25f, -40.0f}, {3});
  const Tensor lr = Tensor::from_floats({-7.0f, -9.5f, -0.125f}, {3});
  Tensor pc = leaf(lp), pr = leaf(lr);
  const DpoLossResult r = dpo_loss(pc, pr, lp, lr, 0.1, DpoLossType::Sigmoid);
  EXPECT_EQ(r.loss.item(), static_cast<float>(std::log(2.0)));
  EXPECT_EQ(r.chosen_reward, 0.0);
  EXPECT_EQ(r.rejected_reward, 0.0);
  EXPECT_EQ(r.margin, 0.0);
  EXPECT_EQ(r.accuracy, 0.0);  // TRL counts chosen > rejected strictly: a tie is not a hit
  autograd::backward(r.loss);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(pc.grad().f32()[i], -0.1 / 2 / 3, 1e-7);
    EXPECT_NEAR(pr.grad().f32()[i], 0.1 / 2 / 3, 1e-7);
  }
  const DpoLossResult ipo = dpo_loss(lp, lr, lp, lr, 0.1, DpoLossType::Ipo);
  EXPECT_FLOAT_EQ(ipo.loss.item(), 25.0f);  // (0 − 1/(2·0.1))²
}

TEST(DpoLoss, BadInputs) {
  const Tensor a = Tensor::from_floats({-1.0f, -2.0f}, {2}), b = Tensor::from_floats({-1.0f}, {1});
  EXPECT_THROW(dpo_loss(a, a, a, a, 0.0, DpoLossType::Sigmoid), Error);
  EXPECT_THROW(dpo_loss(a, a, a, a, -0.1, DpoLossType::Sigmoid), Error);
  EXPECT_THROW(dpo_loss(a, a, b, a, 0.1, DpoLossType::Sigmoid), Error);
  try {
    parse_dpo_loss_type("hinge");
    FAIL() << "hinge is not a DPO loss sllm has";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("hinge"), std::string::npos);
    EXPECT_NE(e.hint().find("sigmoid"), std::string::npos);
  }
}

// A (R, T) batch laid out as data::make_preference_batch lays it out: row r holds a prompt of
// p[r] tokens, a response of n[r] tokens and padding; labels[t] = ids[t + 1] where t + 1 is a
// response position, else −100. Its sequence log-probs must equal the sum of
// score_logprobs (one unpadded sequence at a time, another code path) over the response.
TEST(SequenceLogprobs, EqualsScoreLogprobsOverTheResponse) {
  nn::Transformer model(nn::preset("tiny"));
  model.init(5);
  const int64_t R = 3, T = 14, V = model.config().vocab_size;
  const std::vector<int64_t> prompt = {4, 1, 6}, response = {5, 9, 2};
  Rng rng(7);
  std::vector<int32_t> ids(R * T, 0), labels(R * T, kIgnoreLabel);
  std::vector<std::vector<int32_t>> rows(R);
  for (int64_t r = 0; r < R; ++r) {
    const int64_t len = prompt[r] + response[r];
    for (int64_t t = 0; t < len; ++t) rows[r].push_back(static_cast<int32_t>(rng.next_u64() % V));
    for (int64_t t = 0; t < len; ++t) ids[r * T + t] = rows[r][t];
    for (int64_t t = len; t < T; ++t) ids[r * T + t] = 3;  // padding
    for (int64_t t = prompt[r] - 1; t + 1 < len; ++t) labels[r * T + t] = rows[r][t + 1];
  }
  const Tensor labels_t = Tensor::from_ints(labels, {R, T});
  EXPECT_EQ(response_lengths(labels_t), response);
  const Tensor lp = sequence_logprobs(model.forward(Tensor::from_ints(ids, {R, T})), labels_t);
  ASSERT_EQ(lp.shape(), (Shape{R}));
  for (int64_t r = 0; r < R; ++r) {
    const std::vector<float> scored = infer::score_logprobs(model, rows[r]);
    double want = 0;
    for (int64_t i = prompt[r] - 1; i < prompt[r] + response[r] - 1; ++i) want += scored[i];
    // Different batch shapes (GEMM blocking) and summation orders: f32 rounding only.
    EXPECT_NEAR(lp.f32()[r], want, 1e-5 * std::fabs(want)) << "row " << r;
  }
}

// The gradient reaches the logits only at response positions, and there it is
// softmax − onehot scaled by −1 (d logp / d logits = onehot − softmax).
TEST(SequenceLogprobs, GradientOnlyAtResponsePositions) {
  const int64_t R = 2, T = 3, V = 4;
  std::vector<float> x(R * T * V);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.1f * static_cast<float>((i * 7) % 11) - 0.5f;
  Tensor logits = leaf(Tensor::from_floats(x, {R, T, V}));
  const Tensor labels = Tensor::from_ints({kIgnoreLabel, 2, 1, 3, kIgnoreLabel, kIgnoreLabel}, {R, T});
  autograd::backward(ops::sum(sequence_logprobs(logits, labels)));
  const Tensor g = logits.grad();
  const int32_t* l = labels.i32();
  for (int64_t n = 0; n < R * T; ++n) {
    double z = 0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(double(x[n * V + v]));
    for (int64_t v = 0; v < V; ++v) {
      const double want = l[n] == kIgnoreLabel ? 0.0 : (v == l[n] ? 1.0 : 0.0) - std::exp(double(x[n * V + v])) / z;
      EXPECT_NEAR(g.f32()[n * V + v], want, 1e-6) << "position " << n << ", class " << v;
    }
  }
}

}  // namespace
}  // namespace sllm::rl
