// Data-parallel training (issue 14): what the training loop does beyond one process.
//
// N ranks (processes started by `mpirun -np N`) hold the same model. Each micro-batch, rank r
// trains on rows r·B ... (r+1)·B-1 of the batch one process would read with --batch N·B (the
// objectives slice it: pretrain_objective.h, sft_objective.h). After backward:
//
//   g = sum over ranks of g_r                                   (allreduce_gradients)
//
// and every rank takes the same AdamW step on the same g, so the replicas stay identical
// without ever sending weights. The objectives scale each rank's loss by its share of the
// step (1/N of the rows, or its share of the label tokens), so the sum is the gradient of the
// loss of the whole N·B batch; nothing is divided by N afterwards.
//
// Gradients travel in buckets of bucket_floats (default 4 Mi floats, 16 MiB): the trainable
// gradients, in optimizer order, are seen as one flat vector cut into buckets; each bucket is
// packed, reduced in one call and unpacked. Fewer, larger messages than one per tensor, and a
// fixed buffer however large the model. Without --deterministic-reduce the reduction
// overlaps backward (begin_overlap): autograd reports each parameter whose gradient is final
// (autograd::set_leaf_ready_hook), and a bucket's all-reduce starts (MPI_Iallreduce, in place,
// in reverse parameter order) as soon as all of its parameters are; the step then waits only
// for what is still in flight. The first step, which learns which parameters get gradients,
// and runs with --deterministic-reduce or on GPUs reduce after backward.
//
// --deterministic-reduce: every gradient that is summed is first computed whole, and the
// sums run in one fixed order: a rank's micro-batches in order (sum_micro_batch), then the
// ranks' sums in rank order, ((g_0 + g_1) + g_2) + ..., each bucket gathered and summed on
// every rank instead of MPI's reduction tree (dist::Comm::allreduce_sum_ordered). The result
// is the same bits on every rank, in every run, on any MPI and placement. N ranks × --batch B
// then equal one process running --batch B --grad-accum N --deterministic-reduce bit for
// bit: the same slices, the same per-slice gradients, added in the same order. (Without the
// flag, backward accumulates micro-batches into the grads, and a parameter used twice in the
// graph, like GPT-2's tied embedding, adds its two parts into the running sum one at a time:
// the same sum, another rounding.) One process running --batch N·B in one pass cannot be
// bit-identical to either: its weight gradients sum all N·B·T rows inside one GEMM.
//
// ZeRO-1 (--zero 1): the trainable parameters as one flat vector of S elements, rank r owns
// elements [floor(S·r/N), floor(S·(r+1)/N)) (zero_partition). Its AdamW keeps moments only
// for those (optim::ParamSpan) and updates only them; then every rank broadcasts its updated
// slice (gather_parameters). Optimizer memory per rank: 8·S/N bytes instead of 8·S. The
// update is elementwise, so a ZeRO-1 run is bit-identical to one without. Checkpoints hold
// the full moments in the same optimizer.safetensors as always (rank 0 receives the slices
// tensor by tensor while it writes the file: add_optimizer_state), so a sharded optimizer
// reads them back at any number of ranks.
//
// CUDA tensors travel over NCCL (dist/nccl_comm.h) instead of MPI: gradients are all-reduced
// in place, one NCCL group per bucket's worth of tensors (no packing copy); the starting
// weights are broadcast. --deterministic-reduce gathers each gradient (ncclAllGather) and
// sums it on the host in rank order: exact, and slow, a tool for checking rather than
// training. ZeRO-1 is for host (CPU) parameters only.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dist/comm.h"
#include "dist/nccl_comm.h"
#include "io/safetensors.h"
#include "optim/adamw.h"

namespace sllm::train {

struct DataParallelOptions {
  bool deterministic_reduce = false;  // --deterministic-reduce
  int zero = 0;                       // --zero: 0 (off) or 1 (shard the optimizer state)
  int64_t bucket_floats = int64_t{4} << 20;
};

// The NCCL communicator of a run on `device` with several ranks (nullptr for the CPU or one
// rank). It picks this rank's GPU, so it must come before anything is put on a GPU.
std::shared_ptr<dist::NcclComm> open_gpu_transport(dist::Comm& comm, const std::string& device);

// Rank `rank` of `world`'s ZeRO-1 span of each param (see above); spans of all ranks tile
// every param exactly once.
std::vector<optim::ParamSpan> zero_partition(const std::vector<optim::ParamRef>& params, int rank, int world);

class DataParallel {
 public:
  // params: the optimizer's parameters, in its order (the same on every rank). gpu: the NCCL
  // communicator when they live on a GPU and there are several ranks (open_gpu_transport).
  DataParallel(dist::Comm& comm, DataParallelOptions options, std::vector<optim::ParamRef> params,
               dist::NcclComm* gpu = nullptr);

  ~DataParallel();  // uninstalls the overlap's autograd hook if a step was cut short
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  dist::Comm& comm() { return comm_; }
  int world() const { return comm_.size(); }
  const DataParallelOptions& options() const { return options_; }
  // This rank's spans under ZeRO-1 (empty when --zero 0: the optimizer is not sharded).
  std::vector<optim::ParamSpan> optimizer_spans() const;

  // Rank 0's values of the params to every rank, so the replicas start identical whatever
  // each rank's initialization or load did.
  void broadcast_parameters();
  // Overlap of the reduction with backward (MPI, without --deterministic-reduce): around the
  // step's last backward, begin_overlap() starts each bucket's all-reduce (MPI_Iallreduce,
  // in place on the gradients) as soon as autograd reports all of its parameters final, and
  // end_overlap() starts what is left and waits. Buckets start in one fixed order on every
  // rank, over the parameters some rank reached in the previous step (the first step
  // reduces after backward). Sums of 2 ranks are the same bits either way.
  void begin_overlap();
  void end_overlap();
  // Every param's grad <- the sum over ranks (what the overlap did not already sum). A param that got a gradient on some ranks and
  // not on others (rows that never reached it) counts as a zero gradient on the others, as it
  // would in one process's batch; one no rank reached keeps no gradient.
  void allreduce_gradients();
  // --deterministic-reduce with several micro-batches, after micro-batch `micro`'s backward
  // (0, 1, ...): its gradients are moved aside into a running sum (the first becomes it, the
  // next are added to it), so the next backward starts from no gradient.
  // finish_micro_batches() hands the sum back as the grads. One more gradient-sized buffer.
  void sum_micro_batch(int64_t micro);
  void finish_micro_batches();
  // In place: the sum over ranks, in rank order with --deterministic-reduce.
  void allreduce_sum(double* values, int64_t n);
  // ZeRO-1, after the step: every rank's updated span of the params to every rank.
  void gather_parameters();
  // A ZeRO-1 checkpoint's optimizer.safetensors, the same file an unsharded optimizer writes.
  // Rank 0 adds each moment to `file` as a producer that assembles it from its own span and
  // the other ranks' while the file is written, one tensor at a time (never the whole state
  // at once); every other rank calls send_optimizer_state at the same point, which sends its
  // spans in the file's order.
  void add_optimizer_state(io::SafetensorsWriter& file, const optim::AdamW& opt);
  void send_optimizer_state(const optim::AdamW& opt);

 private:
  // Calls fn(param index, first element, elements, bucket offset) for the pieces of params
  // in flat range [begin, end).
  template <class Fn>
  void for_each_piece(int64_t begin, int64_t end, Fn&& fn) const;
  // The moments' names in optimizer.safetensors' data order, with (param, 0 = exp_avg /
  // 1 = exp_avg_sq) for each.
  std::vector<std::pair<std::string, std::pair<size_t, int>>> optimizer_file_order() const;

  void allreduce_gradients_gpu(const std::vector<int64_t>& reached);
  // Starts the next overlap buckets whose reduced parameters are all ready (all: every one).
  void launch_ready_buckets(bool all);

  dist::Comm& comm_;
  dist::NcclComm* gpu_;
  DataParallelOptions options_;
  std::vector<optim::ParamRef> params_;
  std::vector<int64_t> offsets_;  // (params + 1) flat offset of each param; offsets_.back() = S
  std::vector<float> bucket_;
  std::vector<Tensor> micro_sum_;  // (params) sum_micro_batch's running sums
  // Overlap: buckets of parameter indices (reverse order), the parameters the ranks reduce
  // (reached on some rank last step), those final in this backward, the next bucket to start.
  std::vector<std::vector<size_t>> overlap_buckets_;
  std::unordered_map<const TensorImpl*, size_t> index_of_;
  std::vector<char> expected_, ready_;
  size_t next_bucket_ = 0;
  bool overlapping_ = false;
  std::function<void(const Tensor&)> previous_hook_;
};

}  // namespace sllm::train
