// Bad input to an op never aborts: it raises sllm::Error whose text says what was wrong and
// carries a hint ("---> HINT: ..."), so the CLI can print it and exit non-zero.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/error.h"
#include "ops/ops.h"

namespace sllm {
namespace {

struct BadCall {
  const char* name;
  std::function<void()> call;
  const char* must_mention;  // a fragment of the message that locates the problem
};

TEST(OpsErrors, BadInputRaisesErrorWithHint) {
  const Tensor x23 = Tensor::zeros({2, 3});
  const Tensor ids = Tensor::from_ints({0, 5, 7}, {3});
  const std::vector<BadCall> calls = {
      {"matmul inner dims", [&] { ops::matmul(x23, Tensor::zeros({4, 2})); }, "inner dimensions"},
      {"matmul batch dims", [&] { ops::matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 4})); }, "batch dims"},
      {"matmul 1-D", [&] { ops::matmul(Tensor::zeros({3}), Tensor::zeros({3, 2})); }, "2-D"},
      {"linear in_features", [&] { ops::linear(x23, Tensor::zeros({4, 5})); }, "in_features"},
      {"linear bias", [&] { ops::linear(x23, Tensor::zeros({4, 3}), Tensor::zeros({5})); }, "bias"},
      {"layernorm i32 input",
       [&] { ops::layernorm(Tensor::zeros({2, 3}, DType::I32), Tensor::zeros({3}), Tensor::zeros({3})); }, "i32"},
      {"layernorm weight size", [&] { ops::layernorm(x23, Tensor::zeros({4}), Tensor()); }, "weight"},
      {"rmsnorm bf16 input", [&] { ops::rmsnorm(Tensor::zeros({2, 3}, DType::BF16), Tensor::zeros({3})); }, "bf16"},
      {"embedding id too large", [&] { ops::embedding(ids, Tensor::zeros({6, 4})); }, "token id 7"},
      {"embedding negative id", [&] { ops::embedding(Tensor::from_ints({-1}, {1}), Tensor::zeros({6, 4})); }, "-1"},
      {"embedding f32 ids", [&] { ops::embedding(Tensor::zeros({3}), Tensor::zeros({6, 4})); }, "i32"},
      {"cross_entropy target out of range",
       [&] { ops::cross_entropy(Tensor::zeros({3, 7}), ids); }, "target 7"},
      {"cross_entropy negative target",
       [&] { ops::cross_entropy(Tensor::zeros({3, 7}), Tensor::from_ints({0, -5, 1}, {3})); }, "-5"},
      {"cross_entropy target shape",
       [&] { ops::cross_entropy(Tensor::zeros({3, 7}), Tensor::from_ints({0, 1}, {2})); }, "targets"},
      {"attention heads not dividing",
       [&] { ops::attention(Tensor::zeros({1, 2, 12}), Tensor::zeros({1, 2, 8}), Tensor::zeros({1, 2, 8}), 3, 2); },
       "not a multiple"},
      {"attention width not dividing",
       [&] { ops::attention(Tensor::zeros({1, 2, 10}), Tensor::zeros({1, 2, 10}), Tensor::zeros({1, 2, 10}), 4, 4); },
       "not divisible"},
      {"attention kv shape",
       [&] { ops::attention(Tensor::zeros({1, 2, 8}), Tensor::zeros({1, 2, 8}), Tensor::zeros({1, 2, 4}), 2, 2); },
       "attention v"},
      {"attention offset past the keys",
       [&] { ops::attention(Tensor::zeros({1, 2, 8}), Tensor::zeros({1, 2, 8}), Tensor::zeros({1, 2, 8}), 2, 2, 1); },
       "q_offset"},
      {"rope odd head dim",
       [&] { ops::rope(Tensor::zeros({1, 2, 6}), Tensor::zeros({4, 1}), Tensor::zeros({4, 1}), 2, 0, false); },
       "even"},
      {"rope past the table",
       [&] { ops::rope(Tensor::zeros({1, 5, 8}), Tensor::zeros({4, 2}), Tensor::zeros({4, 2}), 2, 0, false); },
       "exceed"},
      {"add broadcasting mismatch", [&] { ops::add(x23, Tensor::zeros({2})); }, "broadcast"},
      {"mul broadcasting mismatch", [&] { ops::mul(x23, Tensor::zeros({3, 3})); }, "broadcast"},
      {"sub larger second operand", [&] { ops::sub(Tensor::zeros({3}), x23); }, "broadcast"},
      {"swiglu shapes", [&] { ops::swiglu(x23, Tensor::zeros({3, 2})); }, "swiglu"},
      {"undefined input", [&] { ops::gelu(Tensor()); }, "undefined"},
      {"dropout p", [&] { ops::dropout(x23, 1.0f, true, 1, 0); }, "dropout"},
      {"transpose dim", [&] { ops::transpose(x23, 0, 2); }, "2"},
      {"slice range", [&] { ops::slice(x23, 1, 2, 5); }, "slice"},
      {"concat shapes", [&] { ops::concat({x23, Tensor::zeros({2, 4})}, 0); }, "concat"},
      {"index_select row", [&] { ops::index_select(x23, Tensor::from_ints({0, 2}, {2})); }, "index 2"},
      {"gather column", [&] { ops::gather(x23, Tensor::from_ints({1, 3}, {2})); }, "index 3"},
  };
  for (const BadCall& c : calls) {
    SCOPED_TRACE(c.name);
    try {
      c.call();
      ADD_FAILURE() << c.name << ": expected sllm::Error, nothing was thrown";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("HINT"), std::string::npos) << what;
      EXPECT_FALSE(e.hint().empty()) << what;
      EXPECT_NE(what.find(c.must_mention), std::string::npos) << "expected '" << c.must_mention << "' in: " << what;
    } catch (const std::exception& e) {
      ADD_FAILURE() << c.name << ": threw a non-sllm exception: " << e.what();
    }
  }
}

TEST(OpsErrors, IgnoredTargetsAreNotRangeChecked) {
  // ignore_index may be any value, including a negative one far outside [0, V).
  const Tensor logits = Tensor::zeros({2, 4});
  EXPECT_NO_THROW(ops::cross_entropy(logits, Tensor::from_ints({-100, 3}, {2})));
  EXPECT_NO_THROW(ops::cross_entropy(logits, Tensor::from_ints({-7, 3}, {2}), -7));
  EXPECT_THROW(ops::cross_entropy(logits, Tensor::from_ints({-100, 3}, {2}), -7), Error);
}

}  // namespace
}  // namespace sllm
