#include "ops/memory_usage.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#if SLLM_HAVE_CUDA
#include "kernels/cuda_kernels.h"
#endif

namespace sllm::ops {
namespace {

// The value of one "Key:   1234 kB" line of /proc/self/status, in bytes; 0 when absent.
int64_t proc_status_bytes(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t key_len = std::strlen(key);
  while (std::getline(in, line)) {
    if (line.compare(0, key_len, key) != 0 || line.size() <= key_len || line[key_len] != ':') continue;
    long long kib = 0;
    if (std::sscanf(line.c_str() + key_len + 1, "%lld", &kib) != 1) return 0;
    return int64_t(kib) * 1024;  // proc(5): the unit is always kB (KiB)
  }
  return 0;
}

}  // namespace

int64_t current_memory_bytes(Device device) {
  if (device == Device::CPU) return proc_status_bytes("VmRSS");
#if SLLM_HAVE_CUDA
  return int64_t(kernels::cuda::cache_stats().bytes_in_use);
#else
  return 0;
#endif
}

int64_t peak_memory_bytes(Device device) {
  if (device == Device::CPU) return proc_status_bytes("VmHWM");
#if SLLM_HAVE_CUDA
  return int64_t(kernels::cuda::cache_stats().peak_bytes_in_use);
#else
  return 0;
#endif
}

bool reset_peak_memory(Device device) {
  if (device == Device::CPU) {
    // proc(5), /proc/pid/clear_refs: "5" resets the peak resident set size ("high water
    // mark") to the process's current resident set size. Some sandboxes forbid the write.
    std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
    if (f == nullptr) return false;
    const bool wrote = std::fputs("5", f) >= 0;
    const bool closed = std::fclose(f) == 0;
    return wrote && closed;
  }
#if SLLM_HAVE_CUDA
  kernels::cuda::reset_peak_stats();
#endif
  return true;
}

}  // namespace sllm::ops
