// The ZeRO-1 partition of train/data_parallel.h: the ranks' spans tile every parameter once,
// in flat order, with sizes that differ by at most one element; and one rank is a no-op
// data-parallel setup (its collectives change nothing), whose ZeRO-1 checkpoint file equals
// the unsharded optimizer's. The multi-rank behaviour runs under
// mpirun in tests/dist/run_mpi_training_tests.sh.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "dist/comm.h"
#include "io/safetensors.h"
#include "train/data_parallel.h"

namespace sllm::train {
namespace {

std::vector<optim::ParamRef> params_of_sizes(const std::vector<int64_t>& sizes) {
  std::vector<optim::ParamRef> params;
  for (size_t i = 0; i < sizes.size(); ++i)
    params.push_back({str("p", i), Tensor::zeros({sizes[i]}), false});
  return params;
}

TEST(ZeroPartition, RanksTileEveryParameterOnceInFlatOrder) {
  const std::vector<optim::ParamRef> params = params_of_sizes({7, 1, 13, 2, 30});  // 53 elements
  for (int world = 1; world <= 6; ++world) {
    std::vector<std::vector<int>> owner(params.size());
    for (size_t i = 0; i < params.size(); ++i) owner[i].assign(static_cast<size_t>(params[i].param.numel()), -1);
    std::vector<int64_t> sizes;
    for (int r = 0; r < world; ++r) {
      const std::vector<optim::ParamSpan> spans = zero_partition(params, r, world);
      ASSERT_EQ(spans.size(), params.size());
      int64_t size = 0;
      for (size_t i = 0; i < spans.size(); ++i) {
        for (int64_t e = spans[i].begin; e < spans[i].end; ++e) {
          EXPECT_EQ(owner[i][static_cast<size_t>(e)], -1) << "world " << world << ": element owned twice";
          owner[i][static_cast<size_t>(e)] = r;
        }
        size += spans[i].size();
      }
      sizes.push_back(size);
    }
    int last = 0;  // flat order: owners never decrease along the flattened parameters
    for (const auto& elements : owner)
      for (int r : elements) {
        ASSERT_GE(r, last) << "world " << world;
        last = r;
      }
    EXPECT_EQ(last, world - 1);
    EXPECT_LE(*std::max_element(sizes.begin(), sizes.end()) - *std::min_element(sizes.begin(), sizes.end()), 1);
  }
  EXPECT_THROW(zero_partition(params, 2, 2), Error);
}

TEST(DataParallelOneRank, CollectivesLeaveGradientsAndStateAlone) {
  std::vector<optim::ParamRef> params = params_of_sizes({5, 3});
  for (auto& p : params) {
    p.param.set_requires_grad(true);
    Tensor g = Tensor::empty(p.param.shape());
    for (int64_t i = 0; i < g.numel(); ++i) g.mutable_f32()[i] = 0.5f + static_cast<float>(i);
    p.param.set_grad(g);
  }
  DataParallelOptions o;
  o.zero = 1;
  DataParallel dp(dist::world(), o, params);
  ASSERT_EQ(dp.world(), 1);  // not launched by mpirun
  const std::vector<optim::ParamSpan> spans = dp.optimizer_spans();  // one rank owns everything
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].size(), 5);
  EXPECT_EQ(spans[1].size(), 3);
  dp.allreduce_gradients();
  double sum[2] = {1.5, 2.5};
  dp.allreduce_sum(sum, 2);
  EXPECT_EQ(sum[0], 1.5);
  EXPECT_EQ(params[0].param.grad().f32()[4], 4.5f);
  optim::AdamW opt(params, optim::AdamWConfig{}, spans), whole(params, optim::AdamWConfig{});
  opt.step(1e-2f);
  whole.step(1e-2f);
  // The sharded optimizer's file (its moments produced while written) is the unsharded one's.
  io::SafetensorsWriter sharded_file, whole_file;
  dp.add_optimizer_state(sharded_file, opt);
  for (const auto& [name, t] : whole.state_tensors())
    whole_file.add(name, "F32", std::vector<int64_t>(t.shape().begin(), t.shape().end()), t.f32(), t.nbytes());
  EXPECT_EQ(sharded_file.to_bytes(), whole_file.to_bytes());
  DataParallelOptions bad;
  bad.zero = 2;
  EXPECT_THROW(DataParallel(dist::world(), bad, params), Error);
}

}  // namespace
}  // namespace sllm::train
