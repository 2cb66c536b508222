// The simulator's scheduler (sim.h): blocks one after another, a block's threads as
// ucontext fibers run round-robin in thread-index order, each until a barrier or its end.
#include <sys/mman.h>
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/cuda_sim/include/cuda_runtime.h"
#include "kernels/cuda_sim/runtime_state.h"
#include "kernels/cuda_sim/warp_gather.h"

thread_local uint3 threadIdx;
thread_local uint3 blockIdx;
thread_local dim3 blockDim;
thread_local dim3 gridDim;

namespace sllm::cudasim {
namespace {

// Stack of one fiber: kernels keep a few small arrays, wmma fragments (1 KB each here,
// whole tiles per lane) and the std::function frames. Reserved, not committed: untouched
// pages cost nothing. A guard page below each stack turns an overflow into a fault.
constexpr size_t kStackBytes = 256 * 1024;
constexpr size_t kGuardBytes = 4096;
constexpr size_t kGatherBytes = 64;  // the most one lane offers to warp_all_gather

enum class State { Ready, AtBlockBarrier, AtWarpBarrier, Done };

struct Fiber {
  ucontext_t context;
  uint3 index;
  State state;
};

struct Block {
  std::vector<Fiber> fibers;
  ucontext_t scheduler;
  int current = 0;
  const std::function<void()>* body = nullptr;
  std::vector<uint64_t> exchange;        // one warp_exchange slot per thread
  std::vector<unsigned char> gather;     // one 64-byte warp_all_gather slot per thread
  std::vector<unsigned char> shared;     // dynamic shared memory
};

thread_local Block* g_block = nullptr;
thread_local std::vector<char*> g_stacks;

char* stack_for(size_t i) {
  while (g_stacks.size() <= i) {
    void* p = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) {
      std::fprintf(stderr, "cuda_sim: cannot map a fiber stack\n");
      std::abort();
    }
    mprotect(p, kGuardBytes, PROT_NONE);
    g_stacks.push_back(static_cast<char*>(p));
  }
  return g_stacks[i];
}

void fiber_main() {
  Block& b = *g_block;
  (*b.body)();
  b.fibers[size_t(b.current)].state = State::Done;
  // returning resumes uc_link, the scheduler
}

[[noreturn]] void deadlock(const Block& b, const char* why) {
  std::fprintf(stderr, "cuda_sim: %s in block (%u, %u, %u). Thread states:\n", why, blockIdx.x, blockIdx.y, blockIdx.z);
  int shown = 0;
  for (size_t i = 0; i < b.fibers.size() && shown < 64; ++i) {
    const Fiber& f = b.fibers[i];
    const char* s = f.state == State::Done             ? "returned"
                    : f.state == State::AtBlockBarrier ? "at __syncthreads"
                    : f.state == State::AtWarpBarrier  ? "at a warp-level sync (shuffle/__syncwarp/wmma)"
                                                       : "ready";
    std::fprintf(stderr, "  thread (%u, %u, %u): %s\n", f.index.x, f.index.y, f.index.z, s);
    ++shown;
  }
  std::fprintf(stderr, "A GPU would hang or compute garbage here: every thread of a block must reach the same "
                       "__syncthreads, every lane of a warp the same shuffle.\n");
  std::abort();
}

// Releases the barriers every live thread of their scope has reached; false if none could be.
bool release_barriers(Block& b) {
  const size_t n = b.fibers.size();
  size_t live = 0, at_block = 0;
  for (const Fiber& f : b.fibers) {
    live += f.state != State::Done;
    at_block += f.state == State::AtBlockBarrier;
  }
  if (live == 0) return true;
  if (at_block == live) {
    for (Fiber& f : b.fibers)
      if (f.state == State::AtBlockBarrier) f.state = State::Ready;
    return true;
  }
  bool released = false;
  for (size_t w = 0; w < n; w += 32) {
    const size_t end = std::min(n, w + 32);
    size_t waiting = 0, done = 0;
    for (size_t i = w; i < end; ++i) {
      waiting += b.fibers[i].state == State::AtWarpBarrier;
      done += b.fibers[i].state == State::Done;
    }
    if (waiting == 0) continue;
    if (waiting + done == end - w && done > 0)
      deadlock(b, "a warp-level sync waits for lanes that have already returned");
    if (waiting == end - w) {
      for (size_t i = w; i < end; ++i) b.fibers[i].state = State::Ready;
      released = true;
    }
  }
  return released;
}

void wait_at(State barrier) {
  Block& b = *g_block;
  Fiber& f = b.fibers[size_t(b.current)];
  f.state = barrier;
  swapcontext(&f.context, &b.scheduler);
}

void run_block(Block& b, dim3 block) {
  const size_t n = size_t(block.x) * block.y * block.z;
  b.fibers.assign(n, Fiber{});
  b.exchange.assign(n, 0);
  b.gather.assign(n * kGatherBytes, 0);
  for (size_t i = 0; i < n; ++i) {
    Fiber& f = b.fibers[i];
    f.index = {unsigned(i % block.x), unsigned(i / block.x % block.y), unsigned(i / (size_t(block.x) * block.y))};
    f.state = State::Ready;
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = stack_for(i) + kGuardBytes;
    f.context.uc_stack.ss_size = kStackBytes;
    f.context.uc_link = &b.scheduler;
    makecontext(&f.context, fiber_main, 0);
  }
  for (;;) {
    bool ran = false;
    for (size_t i = 0; i < n; ++i) {
      if (b.fibers[i].state != State::Ready) continue;
      b.current = int(i);
      threadIdx = b.fibers[i].index;
      swapcontext(&b.scheduler, &b.fibers[i].context);
      ran = true;
    }
    bool all_done = true;
    for (const Fiber& f : b.fibers) all_done = all_done && f.state == State::Done;
    if (all_done) return;
    if (!release_barriers(b) && !ran) deadlock(b, "no thread can make progress");
  }
}

}  // namespace

void run_grid(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()>& body) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.y > 65535 || grid.z > 65535) {
    set_error(cudaErrorInvalidConfiguration);
    return;
  }
  if (shared_bytes > 48 * 1024) {  // the default limit without cudaFuncSetAttribute
    set_error(cudaErrorInvalidValue);
    return;
  }
  if (g_block) {
    std::fprintf(stderr, "cuda_sim: a kernel launched another kernel (dynamic parallelism is not used by sllm)\n");
    std::abort();
  }
  Block b;
  b.body = &body;
  g_block = &b;
  gridDim = grid;
  blockDim = block;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        blockIdx = {x, y, z};
        b.shared.assign(shared_bytes, 0xFF);  // NaN bytes: reading unwritten shared memory shows
        run_block(b, block);
      }
  g_block = nullptr;
}

void* dynamic_shared() { return g_block->shared.data(); }

void sync_block() { wait_at(State::AtBlockBarrier); }
void sync_warp() { wait_at(State::AtWarpBarrier); }

int lane_id() { return g_block->current % 32; }

uint64_t warp_exchange(uint64_t mine, int src_lane, unsigned mask) {
  if (mask != 0xffffffffu) {
    std::fprintf(stderr, "cuda_sim: a shuffle with mask 0x%x; sllm's kernels use full-warp shuffles only\n", mask);
    std::abort();
  }
  Block& b = *g_block;
  const size_t me = size_t(b.current), warp0 = me - me % 32;
  b.exchange[me] = mine;
  sync_warp();  // every lane has offered its value
  const uint64_t got = b.exchange[warp0 + size_t(src_lane)];
  sync_warp();  // every lane has read before any lane offers again
  return got;
}

void warp_all_gather(const void* mine, size_t bytes, void* all) {
  if (bytes > kGatherBytes) {
    std::fprintf(stderr, "cuda_sim: warp_all_gather of %zu bytes per lane (at most %zu)\n", bytes, kGatherBytes);
    std::abort();
  }
  Block& b = *g_block;
  const size_t me = size_t(b.current), warp0 = me - me % 32;
  std::memcpy(&b.gather[me * kGatherBytes], mine, bytes);
  sync_warp();  // every lane has offered
  for (size_t lane = 0; lane < 32; ++lane)
    std::memcpy(static_cast<unsigned char*>(all) + lane * bytes, &b.gather[(warp0 + lane) * kGatherBytes], bytes);
  sync_warp();  // every lane has read before any lane offers again
}

}  // namespace sllm::cudasim
