// The GPU embedding backward writes each table row once from the rows of its id, grouped on
// the host (ops::embedding, kernels/cuda/embedding.cu embedding_backward_grouped). Its sums
// run in increasing row order from 0, as the CPU's: the table gradient must be bitwise the
// CPU's, with repeated ids, ids that never occur (rows of exact zeros) and the last id.
#include <gtest/gtest.h>

#include <vector>

#include "autograd/autograd.h"
#include "ops/device.h"
#include "ops/ops.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

class CudaEmbeddingGrouped : public CudaOpsTest {};

std::vector<float> table_grad(Device dev, const std::vector<int32_t>& ids, const std::vector<float>& table,
                              const std::vector<float>& upstream, int64_t V, int64_t C) {
  Tensor t = Tensor::from_floats(table, {V, C}).to(dev);
  t.set_requires_grad(true);
  const int64_t N = int64_t(ids.size());
  Tensor out = ops::embedding(Tensor::from_ints(ids, {N}), t);
  // loss = sum(out * G): the gradient reaching the embedding is G exactly, on both devices.
  autograd::backward(ops::sum(ops::mul(out, Tensor::from_floats(upstream, {N, C}).to(dev))));
  return t.grad().to(Device::CPU).to_floats();
}

TEST_F(CudaEmbeddingGrouped, TableGradientIsBitwiseTheCpus) {
  const int64_t V = 300, C = 37, N = 700;
  std::vector<int32_t> ids = random_ids(N, 40, 1);  // ids < 40: heavy repeats, ids 40..298 absent
  ids[5] = int32_t(V - 1);
  ids[600] = int32_t(V - 1);
  const std::vector<float> table = uniform(V * C, 2), upstream = uniform(N * C, 3);
  const std::vector<float> gpu = table_grad(Device::CUDA, ids, table, upstream, V, C);
  const std::vector<float> cpu = table_grad(Device::CPU, ids, table, upstream, V, C);
  expect_bitwise(gpu, cpu, "dtable");
  for (int64_t c = 0; c < C; ++c) ASSERT_EQ(gpu[size_t(100 * C + c)], 0.0f);  // an id that never occurs
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
