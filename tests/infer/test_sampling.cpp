// sample_next: greedy, temperature, top-k, top-p, seeding and the distribution it draws from.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/rng.h"
#include "infer/sampling.h"

namespace sllm::infer {
namespace {

std::vector<float> random_logits(int64_t V, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(V));
  for (auto& v : x) v = static_cast<float>(3.0 * rng.normal());
  return x;
}

int32_t first_argmax(const std::vector<float>& x) {
  return static_cast<int32_t>(std::max_element(x.begin(), x.end()) - x.begin());  // first of equal maxima
}

// Frequencies of `draws` samples over V ids.
std::vector<double> frequencies(const std::vector<float>& logits, const SamplingConfig& c, int draws, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> f(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) f[static_cast<size_t>(sample_next(logits.data(), static_cast<int64_t>(logits.size()), c, rng))] += 1.0;
  for (auto& v : f) v /= draws;
  return f;
}

TEST(Sampling, GreedyIsArgmax) {
  SamplingConfig c;
  c.temperature = 0.0f;
  Rng rng(1);
  for (uint64_t s = 0; s < 20; ++s) {
    const auto x = random_logits(257, s);
    EXPECT_EQ(sample_next(x.data(), 257, c, rng), first_argmax(x));
  }
  const std::vector<float> ties = {1.0f, 3.0f, -2.0f, 3.0f};
  EXPECT_EQ(sample_next(ties.data(), 4, c, rng), 1);  // lowest id among equal maxima
  c.temperature = -1.0f;  // any temperature <= 0 is greedy
  EXPECT_EQ(sample_next(ties.data(), 4, c, rng), 1);
}

TEST(Sampling, GreedyDrawsNoRandomness) {
  SamplingConfig c;
  c.temperature = 0.0f;
  Rng rng(5), untouched(5);
  const auto x = random_logits(50, 1);
  for (int i = 0; i < 10; ++i) sample_next(x.data(), 50, c, rng);
  EXPECT_EQ(rng.state(), untouched.state());
}

TEST(Sampling, TopK1IsGreedyAtAnyTemperature) {
  for (float temperature : {0.05f, 1.0f, 10.0f, 1000.0f}) {
    SamplingConfig c;
    c.temperature = temperature;
    c.top_k = 1;
    Rng rng(7);
    for (uint64_t s = 0; s < 10; ++s) {
      const auto x = random_logits(100, s);
      EXPECT_EQ(sample_next(x.data(), 100, c, rng), first_argmax(x)) << "temperature " << temperature;
    }
  }
  SamplingConfig c;
  c.top_k = 1;
  Rng rng(1);
  const std::vector<float> ties = {0.0f, 2.0f, 2.0f};
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sample_next(ties.data(), 3, c, rng), 1);
}

TEST(Sampling, TinyTopPIsGreedy) {
  SamplingConfig c;
  c.temperature = 2.0f;
  c.top_p = 1e-6f;
  Rng rng(3);
  for (uint64_t s = 0; s < 20; ++s) {
    const auto x = random_logits(64, 100 + s);
    EXPECT_EQ(sample_next(x.data(), 64, c, rng), first_argmax(x));
  }
}

TEST(Sampling, SeededDeterminism) {
  SamplingConfig c;
  c.temperature = 1.3f;
  c.top_k = 40;
  c.top_p = 0.9f;
  const auto x = random_logits(500, 9);
  auto run = [&](uint64_t seed) {
    Rng rng(seed);
    std::vector<int32_t> ids;
    for (int i = 0; i < 200; ++i) ids.push_back(sample_next(x.data(), 500, c, rng));
    return ids;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

// Draws from p = (0.2, 0.5, 0.3) given as log-probabilities. Each frequency of 20000 draws
// has a standard deviation <= sqrt(0.25 / 20000) = 0.0035; the 0.015 tolerance is > 4 sigma
// (a flaky failure is not a concern: the seed is fixed, so the test is deterministic).
constexpr int kDraws = 20000;
constexpr double kFreqTol = 0.015;
const std::vector<float> kLogP = {std::log(0.2f), std::log(0.5f), std::log(0.3f)};

TEST(Sampling, FrequenciesMatchTheDistribution) {
  SamplingConfig c;  // temperature 1: the distribution itself
  const auto f = frequencies(kLogP, c, kDraws, 1);
  EXPECT_NEAR(f[0], 0.2, kFreqTol);
  EXPECT_NEAR(f[1], 0.5, kFreqTol);
  EXPECT_NEAR(f[2], 0.3, kFreqTol);
}

TEST(Sampling, TemperatureSharpensAndFlattens) {
  // softmax(log p / T) ∝ p^(1/T).
  for (double T : {0.5, 2.0}) {
    SamplingConfig c;
    c.temperature = static_cast<float>(T);
    const double q[3] = {std::pow(0.2, 1 / T), std::pow(0.5, 1 / T), std::pow(0.3, 1 / T)};
    const double z = q[0] + q[1] + q[2];
    const auto f = frequencies(kLogP, c, kDraws, 2);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(f[static_cast<size_t>(i)], q[i] / z, kFreqTol) << "T " << T << " id " << i;
  }
}

TEST(Sampling, TopKAndTopPRenormalize) {
  // top-k 2 keeps {0.5, 0.3} → (0, 0.625, 0.375). top-p 0.6: 0.5 < 0.6 <= 0.8, the same set.
  SamplingConfig k2;
  k2.top_k = 2;
  SamplingConfig p06;
  p06.top_p = 0.6f;
  for (const auto& c : {k2, p06}) {
    const auto f = frequencies(kLogP, c, kDraws, 3);
    EXPECT_EQ(f[0], 0.0);
    EXPECT_NEAR(f[1], 0.625, kFreqTol);
    EXPECT_NEAR(f[2], 0.375, kFreqTol);
  }
  SamplingConfig p045;  // 0.5 alone already reaches 0.45
  p045.top_p = 0.45f;
  EXPECT_EQ(frequencies(kLogP, p045, 1000, 4)[1], 1.0);
  SamplingConfig p09;  // needs all three (0.5 + 0.3 = 0.8 < 0.9)
  p09.top_p = 0.9f;
  EXPECT_NEAR(frequencies(kLogP, p09, kDraws, 5)[0], 0.2, kFreqTol);
}

TEST(Sampling, TopKNeverLeavesTheTopK) {
  const int64_t V = 300, k = 5;
  for (uint64_t s = 0; s < 5; ++s) {
    const auto x = random_logits(V, 20 + s);
    std::vector<int32_t> order(static_cast<size_t>(V));
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return x[a] > x[b]; });
    const std::set<int32_t> top(order.begin(), order.begin() + k);
    SamplingConfig c;
    c.temperature = 5.0f;  // flat: without the filter, most draws would fall outside the top 5
    c.top_k = k;
    Rng rng(s);
    std::set<int32_t> seen;
    for (int i = 0; i < 2000; ++i) {
      const int32_t id = sample_next(x.data(), V, c, rng);
      ASSERT_TRUE(top.count(id)) << "drew " << id << ", not among the top " << k;
      seen.insert(id);
    }
    EXPECT_EQ(seen, top);  // and at temperature 5 every one of them shows up
  }
}

TEST(Sampling, MinusInfinityIsNeverDrawn) {
  const std::vector<float> x = {-INFINITY, 0.0f, -INFINITY, 0.0f};
  SamplingConfig c;
  c.temperature = 3.0f;
  const auto f = frequencies(x, c, 4000, 6);
  EXPECT_EQ(f[0], 0.0);
  EXPECT_EQ(f[2], 0.0);
  EXPECT_NEAR(f[1], 0.5, 0.05);
}

TEST(Sampling, BadInputsRaiseErrors) {
  Rng rng(0);
  const std::vector<float> x = {0.0f, 1.0f};
  SamplingConfig c;
  c.top_p = 0.0f;
  EXPECT_THROW(sample_next(x.data(), 2, c, rng), Error);
  c.top_p = 1.5f;
  EXPECT_THROW(sample_next(x.data(), 2, c, rng), Error);
  c = SamplingConfig{};
  c.top_k = -1;
  EXPECT_THROW(sample_next(x.data(), 2, c, rng), Error);
  c = SamplingConfig{};
  c.temperature = NAN;
  EXPECT_THROW(sample_next(x.data(), 2, c, rng), Error);
  c = SamplingConfig{};
  const std::vector<float> nan = {0.0f, NAN};
  EXPECT_THROW(sample_next(nan.data(), 2, c, rng), Error);
  const std::vector<float> all_masked = {-INFINITY, -INFINITY};
  EXPECT_THROW(sample_next(all_masked.data(), 2, c, rng), Error);
  EXPECT_THROW(sample_next(x.data(), 0, c, rng), Error);
}

}  // namespace
}  // namespace sllm::infer
