// Transformer::to(device) through a host-backed stand-in allocator for Device::CUDA (no GPU
// needed): every parameter and the RoPE tables move, names, trainable flags and values
// are kept, and a moved model refuses host-only work with a clear error.
#include <gtest/gtest.h>

#include "core/error.h"
#include "nn/config.h"
#include "nn/transformer.h"
#include "ops/device.h"
#include "tests/tensor/stand_in_device.h"

using namespace sllm;
using sllm::testing::StandInDevice;

namespace {

void expect_moved_with_same_values(const nn::ModelConfig& config) {
  StandInDevice guard;
  nn::Transformer model(config);
  model.parameters().back().value.set_requires_grad(false);  // one frozen parameter
  std::vector<std::vector<float>> before;
  for (const auto& p : model.parameters()) before.push_back(p.value.to_floats());
  model.to(Device::CUDA);
  EXPECT_EQ(model.device(), Device::CUDA);
  const auto& params = model.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    SCOPED_TRACE(params[i].name);
    EXPECT_EQ(params[i].value.device(), Device::CUDA);
    EXPECT_EQ(params[i].value.name(), params[i].name);
    EXPECT_EQ(params[i].value.requires_grad(), i + 1 != params.size());
    EXPECT_EQ(params[i].value.to_floats(), before[i]);
  }
  EXPECT_THROW(model.init(1), Error);  // init writes on the host
  model.to(Device::CPU);
  EXPECT_EQ(model.parameters().front().value.device(), Device::CPU);
  EXPECT_EQ(model.parameters().front().value.to_floats(), before.front());
}

}  // namespace

TEST(ModelDevice, Gpt2ParametersMoveWithNamesFlagsAndValues) { expect_moved_with_same_values(nn::preset("tiny")); }

TEST(ModelDevice, LlamaParametersMoveWithNamesFlagsAndValues) {
  nn::ModelConfig c{nn::Family::Llama, 512, 64, 32, 2, 4, 2, 128};  // tiny, with GQA and RoPE tables
  c.tie_embeddings = false;
  c.validate();
  expect_moved_with_same_values(c);
}

TEST(ModelDevice, InitDeviceCpuIsANoOpAndCudaWithoutAGpuIsAClearError) {
  EXPECT_NO_THROW(ops::init_device(Device::CPU));
  if (ops::cuda_available()) GTEST_SKIP() << "a CUDA GPU is visible";
  try {
    ops::init_device(Device::CUDA);
    FAIL() << "init_device(CUDA) without a GPU must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--device cpu"), std::string::npos) << e.what();
  }
}
