// How every kernel in kernels/cuda/ is launched: the one stream all work goes to, the grid
// size of elementwise loops, and the check that turns a CUDA error into sllm::Error.
// Internal to kernels/cuda/ (it includes CUDA headers; kernels/cuda_kernels.h does not).
#pragma once
#include <cuda_runtime.h>  // under SLLM_CUDA=SIM: kernels/cuda_sim/include/cuda_runtime.h

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace sllm::kernels::cuda {

// Throws sllm::Error naming the failed call, the CUDA error string and a hint chosen by the
// error (out of memory, no device, driver too old, no kernel image for this GPU, ...).
[[noreturn]] void fail_cuda(cudaError_t err, const char* call, const char* file, int line);

// All work is issued to the legacy default stream of the current device, in order: a
// kernel may read what the previous one wrote, and a block freed to the caching allocator
// can be handed to the next op without waiting (the stream orders the two uses).
inline cudaStream_t stream() { return nullptr; }

// Threads per block of the elementwise and row kernels: 8 warps.
constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n items: enough to fill any current GPU several times
// over, capped so huge n needs no 64-bit grid arithmetic (the loops stride by the grid).
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return unsigned(std::clamp<int64_t>(blocks, 1, int64_t(1) << 16));
}

// ---- profiling hooks (kernels/cuda/profile.cpp; profile_begin() & co. in cuda_kernels.h) ----
// While profiling is on, every kernel launch, cuBLAS call, memset and copy on stream() is
// bracketed by two events and its GPU time attributed to a name. Off, a launch pays one
// well-predicted branch on g_profiling and records nothing. One host thread issues all work.
extern bool g_profiling;
// Records the start event of one bracketed call; `name` must outlive the profile (a string
// literal: it is keyed by its address). The _dynamic form copies a name built at run time.
void profile_range_begin(const char* name);
void profile_range_begin_dynamic(const std::string& name);
// The same for a kernel launch: `signature` is kernel_signature<&kernel>() below.
void profile_launch_begin(const char* signature);
// Records the stop event of the call opened last; never throws (see profile.cpp).
void profile_range_end() noexcept;

// Brackets a scope (a cuBLAS call, a memset) while profiling is on. MakeName builds the name
// only then: `ProfileRange range([&] { return str("cublas ", ...); });` costs nothing when off.
class ProfileRange {
 public:
  explicit ProfileRange(const char* name) {
    if (g_profiling) [[unlikely]] {
      profile_range_begin(name);
      open_ = true;
    }
  }
  template <std::invocable MakeName>
  explicit ProfileRange(MakeName make_name) {
    if (g_profiling) [[unlikely]] {
      profile_range_begin_dynamic(make_name());
      open_ = true;
    }
  }
  ~ProfileRange() {
    if (open_) [[unlikely]] profile_range_end();
  }
  ProfileRange(const ProfileRange&) = delete;
  ProfileRange& operator=(const ProfileRange&) = delete;

 private:
  bool open_ = false;
};

// A static string naming the kernel with its template arguments as instantiated: GCC's and
// nvcc's __PRETTY_FUNCTION__ read "... [with auto Kernel = ns::cast_kernel<__nv_bfloat16,
// float>]", which profile.cpp trims to "cast_kernel<bf16, float>" once per kernel.
template <auto Kernel>
const char* kernel_signature() {
  return __PRETTY_FUNCTION__;
}

// What SLLM_LAUNCH builds: `KernelName{kernel_signature<&kernel>()} ->* launcher`, an object
// whose call operator brackets launcher(args...) while profiling is on. The launcher is a
// lambda doing the <<<...>>> launch on a GPU, the simulator's Launcher under SLLM_CUDA=SIM.
template <class Launcher>
struct ProfiledLaunch {
  const char* signature;
  Launcher launch;
  template <class... Args>
  void operator()(Args... args) const {
    if (g_profiling) [[unlikely]] {
      profile_launch_begin(signature);
      launch(args...);
      profile_range_end();
    } else {
      launch(args...);
    }
  }
};
struct KernelName {
  const char* signature;
  template <class Launcher>
  ProfiledLaunch<Launcher> operator->*(Launcher launch) const {
    return {signature, launch};
  }
};

}  // namespace sllm::kernels::cuda

#define SLLM_CUDA_CHECK(call)                                                        \
  do {                                                                               \
    const cudaError_t sllm_cuda_err_ = (call);                                       \
    if (sllm_cuda_err_ != cudaSuccess)                                               \
      ::sllm::kernels::cuda::fail_cuda(sllm_cuda_err_, #call, __FILE__, __LINE__);   \
  } while (0)

// After every <<<...>>>: a bad launch configuration shows up here, not at the next call.
#define SLLM_CUDA_CHECK_LAUNCH() SLLM_CUDA_CHECK(cudaGetLastError())

// Every kernel launch and every dynamically sized shared array goes through these two
// macros, so the same .cu file also compiles as plain C++ for the CPU simulator
// (kernels/cuda_sim/, `cmake -DSLLM_CUDA=SIM`), where a block's threads run as fibers:
//   SLLM_LAUNCH(grid, block, shared_bytes, kernel)(args...);
//   SLLM_DYNAMIC_SHARED(float, smem);   // extern __shared__ float smem[];
// The kernel comes last so a template with commas needs no extra parentheses; name its
// template arguments (kernel<T>, not kernel with T deduced): the profile takes its address.
#define SLLM_KERNEL_NAME_(...) ::sllm::kernels::cuda::KernelName{::sllm::kernels::cuda::kernel_signature<&__VA_ARGS__>()}
#if SLLM_CUDA_SIM
#define SLLM_LAUNCH(grid, block, shared_bytes, ...)                                   \
  (SLLM_KERNEL_NAME_(__VA_ARGS__)->*(::sllm::cudasim::Launch((grid), (block), (shared_bytes)) + \
                                     [](auto... sllm_sim_args) { __VA_ARGS__(sllm_sim_args...); }))
#define SLLM_DYNAMIC_SHARED(type, name) type* name = static_cast<type*>(::sllm::cudasim::dynamic_shared())
#else
#define SLLM_LAUNCH(grid, block, shared_bytes, ...)                                                   \
  (SLLM_KERNEL_NAME_(__VA_ARGS__)->*[&](auto... sllm_launch_args) {                                    \
    __VA_ARGS__<<<(grid), (block), (shared_bytes), ::sllm::kernels::cuda::stream()>>>(sllm_launch_args...); \
  })
#define SLLM_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif
