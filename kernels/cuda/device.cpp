// The device side of the CUDA backend that is not a kernel: device discovery, raw memory,
// copies, and the translation of CUDA errors into sllm::Error with a hint.
// Everything runs on device 0 and the stream of launch.h.
#include <cuda_runtime.h>

#include <string>

#include "kernels/cuda/launch.h"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

const char* hint_for(cudaError_t err) {
  switch (err) {
    case cudaErrorMemoryAllocation:
      return "the GPU is out of memory: use a smaller batch size, sequence length or model, "
             "or stop other processes using the GPU (see nvidia-smi)";
    case cudaErrorNoDevice:
      return "no CUDA GPU is visible: check nvidia-smi and CUDA_VISIBLE_DEVICES, or run on the CPU";
    case cudaErrorInsufficientDriver:
      return "no usable NVIDIA driver: none is installed (no GPU here?), or it is older than the CUDA "
             "runtime sllm was built with; check nvidia-smi, update the driver, or run on the CPU";
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
      return "this GPU's architecture was not compiled in: rebuild with -DSLLM_CUDA_ARCHS=<sm> "
             "(e.g. 86 for RTX 30xx, 89 for RTX 40xx)";
    case cudaErrorInvalidValue:
    case cudaErrorInvalidDevicePointer:
      return "a bad argument reached CUDA: a host pointer where a device pointer belongs, or a size "
             "out of range";
    default:
      return "an earlier kernel may have failed (errors are reported late): rerun with "
             "CUDA_LAUNCH_BLOCKING=1 to find it, and under compute-sanitizer to find a bad access";
  }
}

}  // namespace

void fail_cuda(cudaError_t err, const char* call, const char* file, int line) {
  // A failed call is also recorded as the thread's "last error", which the launch check
  // after the next kernel would report again (a caught out-of-memory resurfacing at an
  // unrelated GEMM). Clear it: recoverable errors reset, sticky ones (a faulted kernel)
  // keep failing every call anyway.
  cudaGetLastError();
  fail(str("CUDA error ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ") in ", call, " at ", file,
           ":", line),
       hint_for(err));
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device / no driver" error for later callers
    return 0;
  }
  return n;
}

const char* device_name() {
  static const std::string name = [] {
    cudaDeviceProp prop{};
    SLLM_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    return str(prop.name, " (sm_", prop.major, prop.minor, ")");
  }();
  return name.c_str();
}

void* device_alloc(size_t nbytes) {
  void* p = nullptr;
  if (nbytes == 0) return nullptr;
  SLLM_CUDA_CHECK(cudaMalloc(&p, nbytes));
  return p;
}

void device_free(void* ptr) {
  if (ptr) SLLM_CUDA_CHECK(cudaFree(ptr));
}

// Synchronous, so the host buffer may be reused (or freed) as soon as this returns, pinned
// or not; a batch of tokens is tiny next to the step that consumes it.
void copy_h2d(void* dst, const void* host_src, size_t nbytes) {
  if (!nbytes) return;
  const ProfileRange range("memcpy h2d");
  SLLM_CUDA_CHECK(cudaMemcpy(dst, host_src, nbytes, cudaMemcpyHostToDevice));
}

void copy_d2h(void* host_dst, const void* src, size_t nbytes) {
  if (!nbytes) return;
  {
    const ProfileRange range("memcpy d2h");
    SLLM_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, nbytes, cudaMemcpyDeviceToHost, stream()));
  }
  SLLM_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void copy_d2d(void* dst, const void* src, size_t nbytes) {
  if (!nbytes) return;
  const ProfileRange range("memcpy d2d");
  SLLM_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, stream()));
}

void copy_d2d_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t height) {
  if (!width || !height) return;
  const ProfileRange range("memcpy2d d2d");
  SLLM_CUDA_CHECK(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, width, height, cudaMemcpyDeviceToDevice, stream()));
}

void memset_zero(void* ptr, size_t nbytes) {
  if (!nbytes) return;
  const ProfileRange range("memset");
  SLLM_CUDA_CHECK(cudaMemsetAsync(ptr, 0, nbytes, stream()));
}

void synchronize() { SLLM_CUDA_CHECK(cudaStreamSynchronize(stream())); }

}  // namespace sllm::kernels::cuda
