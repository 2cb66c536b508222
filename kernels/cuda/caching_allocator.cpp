// The caching allocator of Device::CUDA. cudaMalloc and cudaFree are slow (cudaFree also
// synchronizes the device), and a training step allocates the same sizes every step, so a
// freed block goes to a free list keyed by its rounded size and the next request of that
// size takes it back. Only a request no cached block fits reaches cudaMalloc; when that
// fails, every cached block is released and the cudaMalloc retried once.
//
// Reuse without waiting is safe because all work runs on one stream (launch.h): a block's
// next user enqueues its kernels after those of its previous user.
//
// Rounding: requests below 1 MiB round up to 512 bytes (small activations share buckets),
// larger ones to 2 MiB (the driver's own granularity for large allocations), so a block
// wastes under 512 bytes or under 2 MiB.
#include <cuda_runtime.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <vector>

#include "kernels/cuda/launch.h"
#include "kernels/cuda_kernels.h"
#include "tensor/storage.h"

namespace sllm::kernels::cuda {
namespace {

constexpr size_t kSmallLimit = size_t(1) << 20;
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t(2) << 20;

size_t rounded_size(size_t nbytes) {
  const size_t unit = nbytes < kSmallLimit ? kSmallRound : kLargeRound;
  return (std::max<size_t>(nbytes, 1) + unit - 1) / unit * unit;
}

class CachingAllocator final : public Allocator {
 public:
  ~CachingAllocator() override = default;  // at exit the driver reclaims device memory

  void* allocate(size_t nbytes) override {
    const size_t size = rounded_size(nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      cached_ -= size;
      add_in_use(size);
      return p;
    }
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation && cached_ > 0) {
      cudaGetLastError();  // clear it, give the cache back to the driver, try once more
      release_cached_locked();
      err = cudaMalloc(&p, size);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      SLLM_CHECK(err != cudaErrorMemoryAllocation,
                 str("CUDA out of memory allocating ", nbytes, " bytes (", in_use_ >> 20, " MiB in use by sllm)"),
                 "use a smaller batch size, sequence length or model (or gradient accumulation), "
                 "or stop other processes using the GPU (see nvidia-smi)");
      fail_cuda(err, "cudaMalloc", __FILE__, __LINE__);
    }
    ++mallocs_;
    add_in_use(size);
    return p;
  }

  void deallocate(void* ptr, size_t nbytes) override {
    if (!ptr) return;
    const size_t size = rounded_size(nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    free_[size].push_back(ptr);
    in_use_ -= size;
    cached_ += size;
  }

  void copy_to_host(void* host_dst, const void* src, size_t nbytes) override { copy_d2h(host_dst, src, nbytes); }
  void copy_from_host(void* dst, const void* host_src, size_t nbytes) override { copy_h2d(dst, host_src, nbytes); }
  void fill_zero(void* ptr, size_t nbytes) override { memset_zero(ptr, nbytes); }
  void copy_within(void* dst, const void* src, size_t nbytes) override { copy_d2d(dst, src, nbytes); }

  CacheStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {mallocs_, in_use_, cached_, peak_in_use_};
  }

  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    peak_in_use_ = in_use_;
  }

  void release_cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_cached_locked();
  }

 private:
  // The peak counts rounded sizes in use, not the cache: cached blocks are reusable, so
  // the peak is what a run needs, which the memory predictor (train/memory_estimate.h)
  // is checked against.
  void add_in_use(size_t size) {
    in_use_ += size;
    peak_in_use_ = std::max(peak_in_use_, in_use_);
  }

  // cudaFree waits for the device, so kernels still using a cached block finish first.
  void release_cached_locked() {
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) SLLM_CUDA_CHECK(cudaFree(p));
    free_.clear();
    cached_ = 0;
  }

  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;  // rounded size -> cached blocks of that size
  size_t mallocs_ = 0, in_use_ = 0, cached_ = 0, peak_in_use_ = 0;
};

CachingAllocator& instance() {
  // Never destroyed: tensors released during static destruction may still return blocks.
  static CachingAllocator* a = new CachingAllocator();
  return *a;
}

}  // namespace

Allocator& caching_allocator() { return instance(); }

void register_cuda_allocator() { register_allocator(Device::CUDA, &instance()); }

CacheStats cache_stats() { return instance().stats(); }

void reset_peak_stats() { instance().reset_peak(); }

void empty_cache() { instance().release_cached(); }

}  // namespace sllm::kernels::cuda
