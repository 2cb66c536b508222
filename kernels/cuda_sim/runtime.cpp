// The CUDA runtime calls of the simulator: one "device" whose memory is host memory.
// Allocations are tracked, so freeing or copying through a pointer that cudaMalloc did not
// return fails the way it would on a GPU (cudaErrorInvalidDevicePointer / InvalidValue).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "kernels/cuda_sim/include/cuda_runtime.h"
#include "kernels/cuda_sim/runtime_state.h"

namespace sllm::cudasim {
namespace {

std::mutex g_mutex;
std::map<const char*, size_t>& allocations() {  // start -> size
  static std::map<const char*, size_t> m;
  return m;
}
thread_local cudaError_t g_last_error = cudaSuccess;
size_t g_in_use = 0;
constexpr size_t kTotalMemory = size_t(16) << 30;  // what the simulated device reports

// True when [p, p + n) lies inside one live allocation.
bool is_device_range(const void* p, size_t n) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const char* c = static_cast<const char*>(p);
  auto it = allocations().upper_bound(c);
  if (it == allocations().begin()) return false;
  --it;
  return c >= it->first && c + n <= it->first + it->second;
}

cudaError_t fail(cudaError_t err) {
  g_last_error = err;
  return err;
}

// Checks the pointers of a copy against its kind, as the driver does for device memory.
cudaError_t check_copy(void* dst, size_t dst_n, const void* src, size_t src_n, cudaMemcpyKind kind) {
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if ((dst_dev && !is_device_range(dst, dst_n)) || (src_dev && !is_device_range(src, src_n)))
    return fail(cudaErrorInvalidValue);
  return cudaSuccess;
}

}  // namespace

void set_error(cudaError_t err) { g_last_error = err; }

}  // namespace sllm::cudasim

using sllm::cudasim::check_copy;
using sllm::cudasim::fail;

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof(prop->name), "%s", "sllm CUDA simulator on the CPU");
  prop->totalGlobalMem = sllm::cudasim::kTotalMemory;
  prop->sharedMemPerBlock = 48 * 1024;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 0x7fffffff;
  prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }

cudaError_t cudaMalloc(void** ptr, size_t nbytes) {
  using namespace sllm::cudasim;
  *ptr = nullptr;
  if (nbytes == 0) return cudaSuccess;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_in_use + nbytes > kTotalMemory) return fail(cudaErrorMemoryAllocation);
  // 256-byte alignment, as cudaMalloc guarantees, and exactly nbytes: under AddressSanitizer
  // a kernel reading one element past its buffer is caught, not hidden in rounding slack.
  void* p = nullptr;
  if (posix_memalign(&p, 256, nbytes) != 0) return fail(cudaErrorMemoryAllocation);
  allocations()[static_cast<const char*>(p)] = nbytes;
  g_in_use += nbytes;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  using namespace sllm::cudasim;
  if (!ptr) return cudaSuccess;
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = allocations().find(static_cast<const char*>(ptr));
  if (it == allocations().end()) return fail(cudaErrorInvalidDevicePointer);
  g_in_use -= it->second;
  allocations().erase(it);
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t nbytes, cudaMemcpyKind kind) {
  if (nbytes == 0) return cudaSuccess;
  if (const cudaError_t e = check_copy(dst, nbytes, src, nbytes, kind); e != cudaSuccess) return e;
  std::memmove(dst, src, nbytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t nbytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, nbytes, kind);
}

cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t) {
  if (width == 0 || height == 0) return cudaSuccess;
  if (width > dpitch || width > spitch) return fail(cudaErrorInvalidValue);
  const size_t dst_n = dpitch * (height - 1) + width, src_n = spitch * (height - 1) + width;
  if (const cudaError_t e = check_copy(dst, dst_n, src, src_n, kind); e != cudaSuccess) return e;
  for (size_t r = 0; r < height; ++r)
    std::memmove(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch, width);
  return cudaSuccess;
}

cudaError_t cudaMemset(void* ptr, int value, size_t nbytes) {
  if (nbytes == 0) return cudaSuccess;
  if (!sllm::cudasim::is_device_range(ptr, nbytes)) return fail(cudaErrorInvalidValue);
  std::memset(ptr, value, nbytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t nbytes, cudaStream_t) { return cudaMemset(ptr, value, nbytes); }

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  std::lock_guard<std::mutex> lock(sllm::cudasim::g_mutex);
  *total_bytes = sllm::cudasim::kTotalMemory;
  *free_bytes = sllm::cudasim::kTotalMemory - sllm::cudasim::g_in_use;
  return cudaSuccess;
}

// An event is the host time at which it was recorded; one never recorded has no time, and
// timing it fails as on a GPU (cudaErrorInvalidResourceHandle).
struct CUevent_st {
  std::chrono::steady_clock::time_point when;
  bool recorded = false;
};

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  if (!event) return fail(cudaErrorInvalidValue);
  *event = new CUevent_st;
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  event->when = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  return event ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms) return fail(cudaErrorInvalidValue);
  if (!start || !end || !start->recorded || !end->recorded) return fail(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}

// Work runs synchronously at launch, so there is never anything to wait for.
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaGetLastError() {
  const cudaError_t e = sllm::cudasim::g_last_error;
  sllm::cudasim::g_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return sllm::cudasim::g_last_error; }

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNoKernelImageForDevice: return "cudaErrorNoKernelImageForDevice";
    case cudaErrorUnsupportedPtxVersion: return "cudaErrorUnsupportedPtxVersion";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    default: return "simulated CUDA error";
  }
}
