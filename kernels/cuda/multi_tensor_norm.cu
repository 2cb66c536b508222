// The two passes of gradient clipping over a whole gradient list, one launch each
// (multi_tensor.cuh's (tensor, chunk) blocks), instead of a square, a two-kernel sum and a
// scale per tensor:
//  - sum_of_squares_multi: each block sums g² of its chunk in double (every square exact:
//    a float's 24-bit mantissa squared fits double's 53) with a fixed partition (thread t
//    takes elements t, t + 256, ...; then reduce.cuh's butterfly), writes one partial per
//    block, and the host adds the partials in block order in double after one copy back.
//    Nothing depends on scheduling, so the result is the same on every run.
//  - scale_multi: g *= s in place, rounded as scale_forward rounds.
// Legend: count spans, blocks = multi_tensor.cuh's chunk count; partial (blocks) double.
#include "kernels/cuda/launch.h"
#include "kernels/cuda/multi_tensor.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/scratch.h"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

// One gradient in the device table; no implicit padding (the DeviceTable compares bytes).
struct SpanEntry {
  float* data;  // (n)
  int64_t n;
  int64_t first_block;  // multi_tensor.cuh
};
static_assert(sizeof(SpanEntry) == sizeof(void*) + 2 * sizeof(int64_t));

__global__ void sum_of_squares_multi_kernel(double* partial, const SpanEntry* entries, int64_t count) {
  const SpanEntry e = entries[entry_of_block(entries, count, blockIdx.x)];
  const int64_t begin = (int64_t(blockIdx.x) - e.first_block) * kMultiTensorChunk;
  const int64_t end = min(e.n, begin + kMultiTensorChunk);
  double s = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const double g = e.data[i];
    s += g * g;
  }
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void scale_multi_kernel(const SpanEntry* entries, int64_t count, float s) {
  const SpanEntry e = entries[entry_of_block(entries, count, blockIdx.x)];
  const int64_t begin = (int64_t(blockIdx.x) - e.first_block) * kMultiTensorChunk;
  const int64_t end = min(e.n, begin + kMultiTensorChunk);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) e.data[i] = e.data[i] * s;
}

// The device table of `spans` and its block count (0: nothing to do, nothing uploaded).
struct Table {
  const SpanEntry* entries;
  int64_t count, blocks;
};
Table upload_spans(DeviceTable& table, const std::vector<GradSpan>& spans, const char* who) {
  std::vector<SpanEntry> entries;
  entries.reserve(spans.size());
  for (const GradSpan& g : spans) {
    SLLM_CHECK(g.n == 0 || g.data, str(who, ": span ", entries.size(), " of ", g.n, " elements has no data"),
               "pass the gradient's device pointer");
    entries.push_back({g.data, g.n, 0});
  }
  const int64_t blocks = assign_blocks(entries, who);
  if (blocks == 0) return {nullptr, 0, 0};
  const auto* device = static_cast<const SpanEntry*>(table.upload(entries.data(), entries.size() * sizeof(SpanEntry)));
  return {device, int64_t(entries.size()), blocks};
}

}  // namespace

double sum_of_squares_multi(DeviceTable& table, const std::vector<GradSpan>& spans) {
  const Table t = upload_spans(table, spans, "sum_of_squares_multi");
  if (t.blocks == 0) return 0.0;
  Scratch<double> partial(size_t(t.blocks));  // (blocks)
  SLLM_LAUNCH(unsigned(t.blocks), kThreads, 0, sum_of_squares_multi_kernel)(partial.get(), t.entries, t.count);
  SLLM_CUDA_CHECK_LAUNCH();
  std::vector<double> host(size_t(t.blocks));
  copy_d2h(host.data(), partial.get(), host.size() * sizeof(double));
  double total = 0.0;
  for (const double s : host) total += s;
  return total;
}

void scale_multi(DeviceTable& table, const std::vector<GradSpan>& spans, float s) {
  const Table t = upload_spans(table, spans, "scale_multi");
  if (t.blocks == 0) return;
  SLLM_LAUNCH(unsigned(t.blocks), kThreads, 0, scale_multi_kernel)(t.entries, t.count, s);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace sllm::kernels::cuda
