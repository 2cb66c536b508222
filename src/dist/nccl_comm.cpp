// dist::NcclComm over NCCL (SLLM_HAVE_NCCL), else create() refuses with a hint. See nccl_comm.h.
#include "dist/nccl_comm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

#if SLLM_HAVE_NCCL
#include <cuda_runtime_api.h>
#include <nccl.h>
#endif

namespace sllm::dist {

bool built_with_nccl() {
#if SLLM_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

#if SLLM_HAVE_NCCL

namespace {

constexpr const char* kHint =
    "a rank died or the ranks called different collectives; NCCL_DEBUG=WARN shows NCCL's own account";

void check_nccl(ncclResult_t rc, const char* call) {
  if (rc == ncclSuccess) return;
  fail(str(call, " failed: ", ncclGetErrorString(rc), " (", ncclGetLastError(nullptr), ")"), kHint);
}

void check_cuda(cudaError_t rc, const char* call) {
  SLLM_CHECK(rc == cudaSuccess, str(call, " failed: ", cudaGetErrorString(rc)),
             "check the GPU with nvidia-smi and CUDA_VISIBLE_DEVICES");
}

// NCCL counts are size_t, but keep each call under 2^31 elements like the MPI side.
constexpr int64_t kMaxCount = int64_t{1} << 30;

// The rank's index among the ranks on its machine (OpenMPI, MPICH); -1 when not said.
int local_rank() {
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}) {
    if (const char* v = std::getenv(var)) return std::atoi(v);
  }
  return -1;
}

}  // namespace

struct NcclComm::Impl {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;  // the legacy default stream, as sllm's kernels (kernels/cuda/launch.h)
};

std::unique_ptr<NcclComm> NcclComm::create(Comm& mpi) {
  int devices = 0;
  check_cuda(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
  SLLM_CHECK(devices > 0, "data-parallel on CUDA: no GPU is visible to this rank",
             "run one rank per GPU on GPU machines (check nvidia-smi and CUDA_VISIBLE_DEVICES)");
  const int local = local_rank() >= 0 ? local_rank() : mpi.rank();
  SLLM_CHECK(local_ranks() <= devices,
             str("data-parallel on CUDA: ", local_ranks(), " ranks on this machine but ", devices, " GPU(s)"),
             "NCCL runs one rank per GPU: start at most as many ranks per machine as it has GPUs (mpirun -np, "
             "or --map-by ppr:<GPUs>:node)");
  std::unique_ptr<NcclComm> c(new NcclComm());
  c->impl_ = std::make_unique<Impl>();
  c->rank_ = mpi.rank();
  c->size_ = mpi.size();
  c->device_ = local % devices;
  check_cuda(cudaSetDevice(c->device_), "cudaSetDevice");
  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  if (mpi.is_root()) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  mpi.broadcast(&id, sizeof id, 0);
  check_nccl(ncclCommInitRank(&c->impl_->comm, c->size_, id, c->rank_), "ncclCommInitRank");
  return c;
}

NcclComm::~NcclComm() {
  if (impl_ && impl_->comm) ncclCommDestroy(impl_->comm);
}

void NcclComm::finish() {
  if (group_depth_ == 0) check_cuda(cudaStreamSynchronize(impl_->stream), "cudaStreamSynchronize after NCCL");
}

void NcclComm::allreduce_sum(float* device_buf, int64_t n) {
  for (int64_t off = 0; off < n; off += kMaxCount) {
    const size_t count = static_cast<size_t>(std::min(kMaxCount, n - off));
    check_nccl(ncclAllReduce(device_buf + off, device_buf + off, count, ncclFloat, ncclSum, impl_->comm, impl_->stream),
               "ncclAllReduce");
  }
  finish();
}

void NcclComm::allgather(const float* device_send, float* device_recv, int64_t n) {
  SLLM_CHECK(n <= kMaxCount, str("NcclComm::allgather of ", n, " floats"), "gather in pieces of at most 2^30");
  check_nccl(ncclAllGather(device_send, device_recv, static_cast<size_t>(n), ncclFloat, impl_->comm, impl_->stream),
             "ncclAllGather");
  finish();
}

void NcclComm::broadcast(void* device_buf, size_t bytes, int root) {
  SLLM_CHECK(root >= 0 && root < size_, str("NcclComm: broadcast from rank ", root, " of ", size_), "root must be a rank");
  check_nccl(ncclBroadcast(device_buf, device_buf, bytes, ncclUint8, root, impl_->comm, impl_->stream), "ncclBroadcast");
  finish();
}

void NcclComm::group_begin() {
  check_nccl(ncclGroupStart(), "ncclGroupStart");
  ++group_depth_;
}

void NcclComm::group_end() {
  SLLM_ASSERT(group_depth_ > 0);
  --group_depth_;
  check_nccl(ncclGroupEnd(), "ncclGroupEnd");
  finish();
}

#else  // !SLLM_HAVE_NCCL

struct NcclComm::Impl {};

std::unique_ptr<NcclComm> NcclComm::create(Comm& mpi) {
  fail(str("data-parallel on CUDA: this sllm was built without NCCL (", mpi.size(), " ranks)"),
       "install NCCL (the PyPI wheel nvidia-nccl-cu13 has nccl.h and libnccl.so.2), reconfigure with "
       "-DNCCL_ROOT=<its nvidia/nccl folder> and rebuild; or train on the CPU (--device cpu)");
}

NcclComm::~NcclComm() = default;
void NcclComm::finish() {}
void NcclComm::allreduce_sum(float*, int64_t) { SLLM_ASSERT(false); }
void NcclComm::allgather(const float*, float*, int64_t) { SLLM_ASSERT(false); }
void NcclComm::broadcast(void*, size_t, int) { SLLM_ASSERT(false); }
void NcclComm::group_begin() { SLLM_ASSERT(false); }
void NcclComm::group_end() { SLLM_ASSERT(false); }

#endif

}  // namespace sllm::dist
