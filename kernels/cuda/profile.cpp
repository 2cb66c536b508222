// A per-kernel GPU-time profile without nsys or ncu: while profiling is on, every call that
// puts work on stream() (kernel launches through SLLM_LAUNCH, cuBLAS GEMMs, memsets and
// copies) is bracketed by two CUDA events, and profile_report() turns the event pairs into
// GPU milliseconds per name (cudaEventElapsedTime, ~0.5 us resolution per the CUDA Runtime
// API reference). The events time the GPU side only: the gap between the sum and a step's
// wall time is launch overhead, host work and host-device syncs.
//
// Events come from a pool that grows to the largest profile seen and is reused by the next
// one: cudaEventCreate per launch would cost more than many of the kernels it times.
// Recording an event costs a few microseconds of host time, so a profiled step is slower
// on the host than an unprofiled one; the GPU times themselves are not inflated.
#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/launch.h"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {

bool g_profiling = false;

namespace {

struct Range {
  int name;          // index into Profile::names
  size_t start;      // pool index of the start event; stop is start + 1
  bool stopped;      // false when the bracketed call threw before its end was recorded
};

struct Profile {
  std::vector<cudaEvent_t> pool;                        // start/stop pairs, reused
  std::vector<Range> ranges;                            // this profile's calls, in issue order
  std::vector<std::string> names;                       // interned names
  std::unordered_map<const char*, int> by_literal;      // literal address -> names index
  std::unordered_map<const char*, int> by_signature;    // kernel_signature() address -> names index
  std::unordered_map<std::string, int> by_text;         // name text -> names index
};

Profile& profile() {
  static Profile p;
  return p;
}

int intern(const std::string& text) {
  Profile& p = profile();
  const auto [it, added] = p.by_text.try_emplace(text, int(p.names.size()));
  if (added) p.names.push_back(text);
  return it->second;
}

// "const char* sllm::...::kernel_signature() [with auto Kernel = sllm::kernels::cuda::
// {anonymous}::cast_kernel<__nv_bfloat16, float>]" -> "cast_kernel<bf16, float>". A compiler
// that spells it otherwise keeps its whole text: still one distinct name per kernel.
std::string kernel_name(const std::string& signature) {
  const std::string key = "Kernel = ";
  const size_t at = signature.find(key), close = signature.rfind(']');
  if (at == std::string::npos || close == std::string::npos || close < at) return signature;
  std::string name = signature.substr(at + key.size(), close - at - key.size());
  if (!name.empty() && name[0] == '&') name.erase(0, 1);
  const size_t scope = name.rfind("::", name.find('<'));  // the kernel's namespaces, not its arguments'
  if (scope != std::string::npos) name.erase(0, scope + 2);
  for (size_t pos; (pos = name.find("__nv_bfloat16")) != std::string::npos;) name.replace(pos, 13, "bf16");
  return name;
}

void open_range(int name) {
  Profile& p = profile();
  const size_t start = 2 * p.ranges.size();
  while (p.pool.size() < start + 2) {
    cudaEvent_t e = nullptr;
    SLLM_CUDA_CHECK(cudaEventCreate(&e));
    p.pool.push_back(e);
  }
  SLLM_CUDA_CHECK(cudaEventRecord(p.pool[start], stream()));
  p.ranges.push_back({name, start, false});
}

}  // namespace

void profile_range_begin(const char* name) {
  Profile& p = profile();
  auto it = p.by_literal.find(name);
  if (it == p.by_literal.end()) it = p.by_literal.emplace(name, intern(name)).first;
  open_range(it->second);
}

void profile_range_begin_dynamic(const std::string& name) { open_range(intern(name)); }

void profile_launch_begin(const char* signature) {
  Profile& p = profile();
  auto it = p.by_signature.find(signature);
  if (it == p.by_signature.end()) it = p.by_signature.emplace(signature, intern(kernel_name(signature))).first;
  open_range(it->second);
}

// Never throws (ProfileRange calls it from a destructor): a failed record leaves the range
// unstopped, and the error itself surfaces at the next checked CUDA call.
void profile_range_end() noexcept {
  Profile& p = profile();
  if (p.ranges.empty() || p.ranges.back().stopped) return;
  Range& r = p.ranges.back();
  r.stopped = cudaEventRecord(p.pool[r.start + 1], stream()) == cudaSuccess;
}

void profile_begin() {
  profile().ranges.clear();
  g_profiling = true;
}

void profile_end() { g_profiling = false; }

bool profiling() { return g_profiling; }

std::vector<KernelTime> profile_report() {
  SLLM_CUDA_CHECK(cudaStreamSynchronize(stream()));
  const Profile& p = profile();
  std::vector<KernelTime> by_name(p.names.size());
  for (const Range& r : p.ranges) {
    if (!r.stopped) continue;
    float ms = 0;
    SLLM_CUDA_CHECK(cudaEventElapsedTime(&ms, p.pool[r.start], p.pool[r.start + 1]));
    by_name[r.name].calls += 1;
    by_name[r.name].ms += double(ms);
  }
  std::vector<KernelTime> out;
  for (size_t i = 0; i < by_name.size(); ++i)
    if (by_name[i].calls > 0) out.push_back({p.names[i], by_name[i].calls, by_name[i].ms});
  // Ties (the simulator's coarse clock, kernels too short to time) by name: a stable order.
  std::sort(out.begin(), out.end(), [](const KernelTime& a, const KernelTime& b) {
    return a.ms != b.ms ? a.ms > b.ms : a.name < b.name;
  });
  return out;
}

}  // namespace sllm::kernels::cuda
