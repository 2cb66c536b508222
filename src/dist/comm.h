// Data-parallel communication (issue 14): the one place sllm talks to MPI. Every rank runs
// the same program on its own slice of the batch and the ranks meet in collectives: sum the
// gradients, broadcast the initial weights, check that all ranks agree on config/data/seed.
//
// One interface, two backings, so the rest of sllm needs no #ifdef:
//   - MPI, in a build with SLLM_HAVE_MPI *and* a process started by a launcher (mpirun,
//     srun): MPI_COMM_WORLD;
//   - a single rank otherwise (size 1): every collective is a no-op or a copy, so a plain
//     `sllm pretrain` never initializes MPI, and behaves exactly as it did before.
// MPI is started lazily, by the first call to world() (or init()); finalize() ends it.
//
// Failures: MPI errors come back as return codes (MPI_ERRORS_RETURN on the communicator)
// and are raised as sllm::Error with the MPI text and a hint. A rank that exits (error,
// crash, kill) after MPI_Init without MPI_Finalize makes OpenMPI's mpirun terminate every
// other rank of the job; sllm's main() calls abort_all() on an uncaught error when size > 1,
// so a rank that fails alone takes the others down at once. A rank that hangs instead (a
// stuck file system, a deadlock) is caught by the collective timeout: in a multi-rank run a
// watchdog thread ends the process, with a message naming the call, when one MPI call has
// waited more than SLLM_COLLECTIVE_TIMEOUT seconds (default kDefaultCollectiveTimeoutS;
// 0 disables it), and the launcher then ends the job.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sllm::dist {

// Seconds one MPI call may wait before the watchdog ends the process (SLLM_COLLECTIVE_TIMEOUT
// overrides). Long enough for rank 0 to write a large checkpoint while the others wait.
constexpr double kDefaultCollectiveTimeoutS = 1800;

// True when this binary was built with MPI (CMake found it; SLLM_MPI=AUTO or ON).
bool built_with_mpi();
// True when the process was started by an MPI launcher: the environment holds
// OMPI_COMM_WORLD_SIZE (OpenMPI), PMI_SIZE (MPICH/Hydra, Slurm PMI) or PMIX_RANK (PMIx).
bool launched_by_mpi();
// The launcher's number of ranks on this machine (OpenMPI's OMPI_COMM_WORLD_LOCAL_SIZE,
// MPICH's MPI_LOCALNRANKS); 1 when not launched or not said.
int local_ranks();

class Comm {
 public:
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }
  // "mpi" or "single" (one rank, no MPI calls).
  const char* transport() const { return mpi_ ? "mpi" : "single"; }

  // In place: buf (n) <- the sum over ranks of every rank's buf. The order of MPI's
  // reduction tree is the library's choice, so the last bits may differ from a sequential
  // sum (and, in principle, between runs with other process placements).
  void allreduce_sum(float* buf, int64_t n);
  void allreduce_sum(double* buf, int64_t n);
  void allreduce_sum(int64_t* buf, int64_t n);
  // Non-blocking, in place (MPI_Iallreduce): starts buf (n) <- the sum over ranks and
  // returns; buf must stay untouched until finish_allreduces(). Every rank must start the
  // same calls in the same order. progress() lets MPI advance the started calls (MPI_Testall)
  // without waiting; finish_allreduces() waits for all of them.
  void start_allreduce_sum(float* buf, int64_t n);
  void progress();
  void finish_allreduces();
  // In place: the largest value over ranks (timings: the slowest rank's).
  void allreduce_max(double* buf, int64_t n);
  // In place, deterministic (--deterministic-reduce): every rank gathers every rank's buf
  // and sums them in rank order, ((b0 + b1) + b2) + ..., so the result is the same bits on
  // every rank and for every MPI algorithm and placement. Each rank receives (size-1)·n
  // floats, against 2(size-1)/size·n for a ring all-reduce: the same at 2 ranks, size/2
  // times more beyond. Done in chunks of 1 Mi elements (a gather buffer of size Mi floats).
  void allreduce_sum_ordered(float* buf, int64_t n);
  void allreduce_sum_ordered(double* buf, int64_t n);
  // bytes from root's buf to every rank's buf.
  void broadcast(void* buf, size_t bytes, int root);
  void barrier();
  // Point to point, blocking: n floats to rank `dest` / from rank `src` (tag 0; messages
  // between one pair of ranks arrive in the order they were sent). ZeRO-1 gathers the
  // optimizer's shards on rank 0 with them for a checkpoint.
  void send(const float* buf, int64_t n, int dest);
  void recv(float* buf, int64_t n, int src);
  // Every rank's value, indexed by rank.
  std::vector<uint64_t> allgather(uint64_t value);
  // Fails on every rank (sllm::Error naming the ranks that differ from rank 0) unless all
  // ranks pass the same hash. `what` names the thing hashed ("config", "data", "seed").
  void check_same(uint64_t hash, const std::string& what);

 private:
  friend void init();
  friend void abort_all(int code);
  bool mpi_ = false;
  int rank_ = 0, size_ = 1;
  struct Started;                     // the MPI_Requests of start_allreduce_sum (comm.cpp)
  std::shared_ptr<Started> started_;
};

// Starts MPI when built_with_mpi() and launched_by_mpi(), else sets up one rank. Idempotent.
void init();
// The communicator of all ranks; calls init() the first time.
Comm& world();
// Ends MPI if init() started it (MPI_Finalize). Idempotent; world() is unusable afterwards.
void finalize();
// After an error on this rank: MPI_Abort(MPI_COMM_WORLD, code) when MPI runs with more than
// one rank, so no other rank waits forever in a collective. Returns when there is nothing to do.
void abort_all(int code);

// FNV-1a 64 of bytes, chained through `seed`: hashes for check_same.
uint64_t hash_bytes(const void* data, size_t bytes, uint64_t seed = 14695981039346656037ull);

}  // namespace sllm::dist
