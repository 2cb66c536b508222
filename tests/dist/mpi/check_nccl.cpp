// Run under mpirun (one rank per GPU) by ctest `dist_nccl` and tools/gpu_check.sh: every rank
// checks dist::NcclComm's collectives on device buffers against sums it computes itself.
// Exits 77 (skip) when no GPU is visible, 0 with "rank r/n: nccl ok" lines, 1 on a failure.
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "core/error.h"
#include "dist/comm.h"
#include "dist/nccl_comm.h"
#include "rank_expect.h"

using namespace sllm;
using test::expect;

namespace {

std::vector<float> rank_data(int r, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = std::ldexp(static_cast<float>((i * 7 + r * 13) % 101) - 50.0f, -4);
  return v;
}

float* to_device(const std::vector<float>& host) {
  void* p = nullptr;
  if (cudaMalloc(&p, host.size() * sizeof(float)) != cudaSuccess) fail("cudaMalloc failed", "check the GPU");
  cudaMemcpy(p, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice);
  return static_cast<float*>(p);
}

std::vector<float> to_host(const float* device, int64_t n) {
  std::vector<float> host(static_cast<size_t>(n));
  cudaMemcpy(host.data(), device, host.size() * sizeof(float), cudaMemcpyDeviceToHost);
  return host;
}

}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("SKIP: no GPU visible\n");
    return 77;
  }
  try {
    dist::Comm& mpi = dist::world();
    const int rank = mpi.rank(), size = mpi.size();
    std::unique_ptr<dist::NcclComm> nccl = dist::NcclComm::create(mpi);
    expect(nccl->rank() == rank && nccl->size() == size, "rank/size differ from MPI's", rank);

    // All-reduce: small integers times 2^-4, so every order of the sum is exact.
    const int64_t n = (int64_t{1} << 20) + 77;
    float* buf = to_device(rank_data(rank, n));
    nccl->allreduce_sum(buf, n);
    std::vector<float> expected(static_cast<size_t>(n), 0.0f);
    for (int r = 0; r < size; ++r) {
      const std::vector<float> d = rank_data(r, n);
      for (int64_t i = 0; i < n; ++i) expected[static_cast<size_t>(i)] += d[static_cast<size_t>(i)];
    }
    expect(to_host(buf, n) == expected, "allreduce_sum differs from the host sum", rank);

    // A group of two all-reduces, then all-gather and broadcast.
    float* a = to_device(rank_data(rank, 1000));
    float* b = to_device(rank_data(rank + 5, 333));
    nccl->group_begin();
    nccl->allreduce_sum(a, 1000);
    nccl->allreduce_sum(b, 333);
    nccl->group_end();
    std::vector<float> ea(1000, 0.0f), eb(333, 0.0f);
    for (int r = 0; r < size; ++r) {
      const std::vector<float> da = rank_data(r, 1000), db = rank_data(r + 5, 333);
      for (size_t i = 0; i < ea.size(); ++i) ea[i] += da[i];
      for (size_t i = 0; i < eb.size(); ++i) eb[i] += db[i];
    }
    expect(to_host(a, 1000) == ea && to_host(b, 333) == eb, "grouped all-reduces differ", rank);

    float* mine = to_device(rank_data(rank, 500));
    float* all = to_device(std::vector<float>(static_cast<size_t>(size) * 500, -1.0f));
    nccl->allgather(mine, all, 500);
    std::vector<float> eall;
    for (int r = 0; r < size; ++r) {
      const std::vector<float> d = rank_data(r, 500);
      eall.insert(eall.end(), d.begin(), d.end());
    }
    expect(to_host(all, size * 500) == eall, "allgather is not every rank's buffer in rank order", rank);

    nccl->broadcast(mine, 500 * sizeof(float), 0);
    expect(to_host(mine, 500) == rank_data(0, 500), "broadcast did not deliver rank 0's buffer", rank);
    for (float* p : {buf, a, b, mine, all}) cudaFree(p);
    nccl.reset();
    if (test::rank_failures() == 0) std::printf("rank %d/%d: nccl ok (GPU %d)\n", rank, size, rank % devices);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAIL: %s\n", e.what());
    ++test::rank_failures();
  }
  dist::finalize();
  return test::rank_failures() == 0 ? 0 : 1;
}
