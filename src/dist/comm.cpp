// dist::Comm over MPI_COMM_WORLD (SLLM_HAVE_MPI and a launcher), else one rank. See comm.h.
// Only the main thread calls MPI (MPI_THREAD_FUNNELED): OpenMP teams never communicate.
#include "dist/comm.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "core/error.h"

#if SLLM_HAVE_MPI
#include <mpi.h>
#endif

namespace sllm::dist {
namespace {

Comm g_world;
bool g_initialized = false;
bool g_mpi_started = false;   // this process called MPI_Init_thread
bool g_mpi_finalized = false;

// MPI counts are int: larger buffers go in pieces of at most this many elements.
constexpr int64_t kMaxCount = int64_t{1} << 30;
// allreduce_sum_ordered gathers this many elements per rank at a time.
constexpr int64_t kOrderedChunk = int64_t{1} << 20;

#if SLLM_HAVE_MPI
void check_mpi(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  fail(str(call, " failed: ", text),
       "a rank died or the ranks called different collectives; see the other ranks' messages and the launcher's "
       "(mpirun) output");
}
#endif

#if SLLM_HAVE_MPI
// The collective timeout (comm.h): a watchdog thread ends this process when one MPI call has
// waited longer than SLLM_COLLECTIVE_TIMEOUT seconds, so a rank that hangs (rather than
// dies) cannot keep the others waiting forever: the launcher sees this rank exit without
// MPI_Finalize and ends the job.
std::atomic<int64_t> g_call_started_ms{0};  // 0: not inside an MPI call
std::atomic<const char*> g_call_name{""};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void start_watchdog(int rank) {
  const char* env = std::getenv("SLLM_COLLECTIVE_TIMEOUT");
  const double timeout_s = env ? std::atof(env) : kDefaultCollectiveTimeoutS;
  if (!(timeout_s > 0)) return;  // 0 (or garbage): no watchdog
  std::thread([rank, timeout_s] {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      const int64_t started = g_call_started_ms.load();
      if (started == 0 || static_cast<double>(now_ms() - started) < 1000.0 * timeout_s) continue;
      std::fprintf(stderr,
                   "error: rank %d waited %.0f s in %s: another rank is hung or gone\n"
                   "---> HINT: see the other ranks' output; raise SLLM_COLLECTIVE_TIMEOUT (seconds, now %.0f; 0 "
                   "disables) if a rank legitimately works that long alone (e.g. writing a large checkpoint)\n",
                   rank, timeout_s, g_call_name.load(), timeout_s);
      std::fflush(stderr);
      std::_Exit(1);
    }
  }).detach();
}

// Marks the span of one MPI call for the watchdog.
struct TimedCall {
  explicit TimedCall(const char* name) {
    g_call_name.store(name);
    g_call_started_ms.store(now_ms());
  }
  ~TimedCall() { g_call_started_ms.store(0); }
};
#endif

void require_live() {
  SLLM_CHECK(!g_mpi_finalized, "dist: a collective after dist::finalize()", "call collectives before finalize()");
}

}  // namespace

bool built_with_mpi() {
#if SLLM_HAVE_MPI
  return true;
#else
  return false;
#endif
}

bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(var)) return true;
  }
  return false;
}

int local_ranks() {
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"}) {
    if (const char* v = std::getenv(var)) return std::max(1, std::atoi(v));
  }
  return 1;
}

// The launcher's number of ranks (1 when its variables are absent).
[[maybe_unused]] static int launcher_world_size() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    if (const char* v = std::getenv(var)) return std::max(1, std::atoi(v));
  }
  return 1;
}

void init() {
  if (g_initialized) return;
  g_initialized = true;
#if !SLLM_HAVE_MPI
  // N copies of a one-rank sllm would each train alone and overwrite each other's files.
  SLLM_CHECK(launcher_world_size() <= 1,
             str("dist: started as one of ", launcher_world_size(), " ranks, but this sllm was built without MPI"),
             "install openmpi-bin and libopenmpi-dev (tools/install_deps.sh), reconfigure with SLLM_MPI=AUTO or ON, "
             "and rebuild");
#else
  if (!launched_by_mpi()) return;
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    int provided = 0;
    SLLM_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS,
               "dist: MPI_Init_thread failed", "check the MPI installation with `mpirun -np 2 hostname`");
    g_mpi_started = true;
  }
  // Errors come back as codes (check_mpi turns them into sllm::Error) instead of MPI's
  // default of aborting the job with the library's own message.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  g_world.mpi_ = true;
  check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &g_world.rank_), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &g_world.size_), "MPI_Comm_size");
  if (g_world.size_ > 1) start_watchdog(g_world.rank_);
#endif
}

Comm& world() {
  init();
  return g_world;
}

void finalize() {
#if SLLM_HAVE_MPI
  if (g_mpi_started && !g_mpi_finalized) MPI_Finalize();
#endif
  g_mpi_finalized = g_mpi_started;
}

void abort_all(int code) {
#if SLLM_HAVE_MPI
  if (g_world.mpi_ && g_world.size_ > 1 && !g_mpi_finalized) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  (void)code;
}

#if SLLM_HAVE_MPI
namespace {
template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }
template <>
MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }
template <>
MPI_Datatype mpi_type<int64_t>() { return MPI_INT64_T; }

template <typename T>
void allreduce_mpi(T* buf, int64_t n, MPI_Op op) {
  for (int64_t off = 0; off < n; off += kMaxCount) {
    const int count = static_cast<int>(std::min(kMaxCount, n - off));
    TimedCall timed("MPI_Allreduce");
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, buf + off, count, mpi_type<T>(), op, MPI_COMM_WORLD), "MPI_Allreduce");
  }
}

// Every rank gathers every rank's buf and sums in rank order, ((g0 + g1) + g2) + ...
template <typename T>
void allreduce_ordered_mpi(T* buf, int64_t n, int size) {
  std::vector<T> gathered(static_cast<size_t>(size) * static_cast<size_t>(std::min(n, kOrderedChunk)));
  for (int64_t off = 0; off < n; off += kOrderedChunk) {
    const int64_t c = std::min(kOrderedChunk, n - off);
    TimedCall timed("MPI_Allgather");
    check_mpi(MPI_Allgather(buf + off, static_cast<int>(c), mpi_type<T>(), gathered.data(), static_cast<int>(c),
                            mpi_type<T>(), MPI_COMM_WORLD),
              "MPI_Allgather");
    // gathered (size, c): rank r's chunk at row r.
    for (int64_t i = 0; i < c; ++i) {
      T s = gathered[static_cast<size_t>(i)];
      for (int r = 1; r < size; ++r) s += gathered[static_cast<size_t>(r) * static_cast<size_t>(c) + static_cast<size_t>(i)];
      buf[off + i] = s;
    }
  }
}
}  // namespace
#endif

namespace {
// The bodies of Comm's typed overloads: in place over MPI when it runs, else nothing to do.
template <typename T>
void reduce_in_place(bool mpi, T* buf, int64_t n, bool max) {
  require_live();
  SLLM_ASSERT(n >= 0);
#if SLLM_HAVE_MPI
  if (mpi) allreduce_mpi(buf, n, max ? MPI_MAX : MPI_SUM);
#else
  (void)mpi, (void)buf, (void)max;
#endif
}

template <typename T>
void sum_in_rank_order(bool mpi, int size, T* buf, int64_t n) {
  require_live();
  SLLM_ASSERT(n >= 0);
  if (!mpi || size == 1) return;  // the sum of one rank is its own buffer
#if SLLM_HAVE_MPI
  allreduce_ordered_mpi(buf, n, size);
#else
  (void)buf;
#endif
}
}  // namespace

void Comm::allreduce_sum(float* buf, int64_t n) { reduce_in_place(mpi_, buf, n, false); }
void Comm::allreduce_sum(double* buf, int64_t n) { reduce_in_place(mpi_, buf, n, false); }
void Comm::allreduce_sum(int64_t* buf, int64_t n) { reduce_in_place(mpi_, buf, n, false); }
void Comm::allreduce_max(double* buf, int64_t n) { reduce_in_place(mpi_, buf, n, true); }
void Comm::allreduce_sum_ordered(float* buf, int64_t n) { sum_in_rank_order(mpi_, size_, buf, n); }
void Comm::allreduce_sum_ordered(double* buf, int64_t n) { sum_in_rank_order(mpi_, size_, buf, n); }

#if SLLM_HAVE_MPI
struct Comm::Started {
  std::vector<MPI_Request> requests;
};
#else
struct Comm::Started {};
#endif

void Comm::start_allreduce_sum(float* buf, int64_t n) {
  require_live();
  SLLM_ASSERT(n >= 0);
#if SLLM_HAVE_MPI
  if (!mpi_) return;
  if (!started_) started_ = std::make_shared<Started>();
  for (int64_t off = 0; off < n; off += kMaxCount) {
    MPI_Request request;
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, buf + off, static_cast<int>(std::min(kMaxCount, n - off)), MPI_FLOAT, MPI_SUM,
                             MPI_COMM_WORLD, &request),
              "MPI_Iallreduce");
    started_->requests.push_back(request);
  }
#else
  (void)buf;
#endif
}

void Comm::progress() {
#if SLLM_HAVE_MPI
  if (!started_ || started_->requests.empty()) return;
  int done = 0;  // completed requests become MPI_REQUEST_NULL, which Waitall skips
  auto& r = started_->requests;
  check_mpi(MPI_Testall(static_cast<int>(r.size()), r.data(), &done, MPI_STATUSES_IGNORE), "MPI_Testall");
#endif
}

void Comm::finish_allreduces() {
#if SLLM_HAVE_MPI
  if (!started_ || started_->requests.empty()) return;
  auto& r = started_->requests;
  TimedCall timed("MPI_Waitall");
  check_mpi(MPI_Waitall(static_cast<int>(r.size()), r.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
  r.clear();
#endif
}

#if SLLM_HAVE_MPI
namespace {
// MPI_Send or MPI_Recv of n floats with rank `peer`, in pieces of at most kMaxCount.
template <class Float, class Call>
void point_to_point(Float* buf, int64_t n, const char* name, Call&& call) {
  for (int64_t off = 0; off < n; off += kMaxCount) {
    TimedCall timed(name);
    check_mpi(call(buf + off, static_cast<int>(std::min(kMaxCount, n - off))), name);
  }
}
}  // namespace
#endif

void Comm::send(const float* buf, int64_t n, int dest) {
  require_live();
  SLLM_CHECK(dest >= 0 && dest < size_ && dest != rank_, str("dist: send to rank ", dest, " from rank ", rank_, " of ", size_),
             "send to another rank");
#if SLLM_HAVE_MPI
  point_to_point(buf, n, "MPI_Send", [dest](const float* p, int count) {
    return MPI_Send(p, count, MPI_FLOAT, dest, 0, MPI_COMM_WORLD);
  });
#else
  (void)buf, (void)n;
#endif
}

void Comm::recv(float* buf, int64_t n, int src) {
  require_live();
  SLLM_CHECK(src >= 0 && src < size_ && src != rank_, str("dist: receive from rank ", src, " on rank ", rank_, " of ", size_),
             "receive from another rank");
#if SLLM_HAVE_MPI
  point_to_point(buf, n, "MPI_Recv", [src](float* p, int count) {
    return MPI_Recv(p, count, MPI_FLOAT, src, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  });
#else
  (void)buf, (void)n;
#endif
}

void Comm::broadcast(void* buf, size_t bytes, int root) {
  require_live();
  SLLM_CHECK(root >= 0 && root < size_, str("dist: broadcast from rank ", root, " of ", size_), "root must be a rank");
#if SLLM_HAVE_MPI
  if (!mpi_) return;
  auto* p = static_cast<char*>(buf);
  for (size_t off = 0; off < bytes; off += static_cast<size_t>(kMaxCount)) {
    const int count = static_cast<int>(std::min(static_cast<size_t>(kMaxCount), bytes - off));
    TimedCall timed("MPI_Bcast");
    check_mpi(MPI_Bcast(p + off, count, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
  }
#else
  (void)buf, (void)bytes;
#endif
}

void Comm::barrier() {
  require_live();
#if SLLM_HAVE_MPI
  if (!mpi_) return;
  TimedCall timed("MPI_Barrier");
  check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
}

std::vector<uint64_t> Comm::allgather(uint64_t value) {
  require_live();
  std::vector<uint64_t> all(static_cast<size_t>(size_), value);
#if SLLM_HAVE_MPI
  if (mpi_) {
    TimedCall timed("MPI_Allgather");
    check_mpi(MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD), "MPI_Allgather");
  }
#endif
  return all;
}

void Comm::check_same(uint64_t hash, const std::string& what) {
  const std::vector<uint64_t> all = allgather(hash);
  std::string differ;
  for (size_t r = 1; r < all.size(); ++r) {
    if (all[r] != all[0]) differ += str(differ.empty() ? "" : ", ", r);
  }
  // Every rank sees the same gathered values, so every rank fails here together.
  SLLM_CHECK(differ.empty(), str("dist: ranks ", differ, " disagree with rank 0 on the ", what, " (", size_, " ranks)"),
             str("start every rank with the same flags and files; the ", what, " must match across ranks"));
}

uint64_t hash_bytes(const void* data, size_t bytes, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = seed;
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

}  // namespace sllm::dist
