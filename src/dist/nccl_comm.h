// The GPU transport of data-parallel runs (issue 14): NCCL (NVIDIA Collective Communications
// Library) collectives on CUDA tensors, one communicator per process and GPU, bootstrapped
// over MPI: rank 0 draws an ncclUniqueId, dist::Comm broadcasts its bytes, and every rank
// joins with ncclCommInitRank (the NCCL documentation's "one device per process" example).
//
// Built when CMake finds nccl.h and libnccl (CUDA and MPI builds; the PyPI wheel
// nvidia-nccl-cu13 ships both: configure with -DNCCL_ROOT=<site-packages>/nvidia/nccl);
// otherwise built_with_nccl() is false and create() says how to get it.
//
// Each rank drives the GPU numbered (local rank mod visible GPUs), chosen in create() before
// anything is allocated on a GPU. NCCL does not run two ranks of one communicator on the same
// GPU, so create() refuses more ranks on a machine than it has GPUs. Calls run on the CUDA
// stream sllm's kernels use (the legacy default stream), so they order with them, and
// return after the stream has finished them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "dist/comm.h"

namespace sllm::dist {

bool built_with_nccl();

class NcclComm {
 public:
  // Collective over every rank of `mpi` (size > 1 or not). Selects this rank's GPU.
  static std::unique_ptr<NcclComm> create(Comm& mpi);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int device() const { return device_; }  // the CUDA device this rank uses

  // In place on device memory: buf (n floats) <- the sum over ranks (NCCL's ring or tree).
  void allreduce_sum(float* device_buf, int64_t n);
  // recv (size * n floats, device) <- every rank's send (n floats, device), in rank order.
  void allgather(const float* device_send, float* device_recv, int64_t n);
  // bytes of device memory from root's buf to every rank's buf.
  void broadcast(void* device_buf, size_t bytes, int root);
  // Several calls as one launch (ncclGroupStart / ncclGroupEnd): between group_begin() and
  // group_end() the calls above are queued, and group_end() waits for all of them.
  void group_begin();
  void group_end();

 private:
  NcclComm() = default;
  void finish();  // waits for the stream unless inside a group
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, size_ = 1, device_ = 0, group_depth_ = 0;
};

}  // namespace sllm::dist
