#include "train/data_parallel.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>

#include "autograd/autograd.h"
#include "core/error.h"

namespace sllm::train {

namespace {

// floor(S·r/N) without overflow for any realistic S (S < 2^40, N < 2^20).
int64_t zero_boundary(int64_t total, int rank, int world) {
  return static_cast<int64_t>((static_cast<__int128>(total) * rank) / world);
}

std::vector<int64_t> flat_offsets(const std::vector<optim::ParamRef>& params) {
  std::vector<int64_t> offsets{0};
  for (const auto& p : params) offsets.push_back(offsets.back() + p.param.numel());
  return offsets;
}

}  // namespace

std::vector<optim::ParamSpan> zero_partition(const std::vector<optim::ParamRef>& params, int rank, int world) {
  SLLM_CHECK(world >= 1 && rank >= 0 && rank < world, str("zero_partition: rank ", rank, " of ", world), "a valid rank");
  const std::vector<int64_t> offsets = flat_offsets(params);
  const int64_t lo = zero_boundary(offsets.back(), rank, world), hi = zero_boundary(offsets.back(), rank + 1, world);
  std::vector<optim::ParamSpan> spans;
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t b = std::clamp(lo, offsets[i], offsets[i + 1]), e = std::clamp(hi, offsets[i], offsets[i + 1]);
    spans.push_back({b - offsets[i], e - offsets[i]});
  }
  return spans;
}

std::shared_ptr<dist::NcclComm> open_gpu_transport(dist::Comm& comm, const std::string& device) {
  if (comm.size() == 1 || device != "cuda") return nullptr;
  return dist::NcclComm::create(comm);
}

DataParallel::DataParallel(dist::Comm& comm, DataParallelOptions options, std::vector<optim::ParamRef> params,
                           dist::NcclComm* gpu)
    : comm_(comm), gpu_(gpu), options_(options), params_(std::move(params)), offsets_(flat_offsets(params_)) {
  SLLM_CHECK(options_.zero == 0 || options_.zero == 1, str("--zero ", options_.zero, " is not supported"),
             "pass --zero 0 (every rank keeps the whole optimizer state) or --zero 1 (sharded)");
  SLLM_CHECK(options_.bucket_floats > 0, "DataParallel: bucket_floats must be > 0", "e.g. 4 Mi floats");
  for (const auto& p : comm_.size() > 1 ? params_ : std::vector<optim::ParamRef>{}) {
    const Device want = gpu_ ? Device::CUDA : Device::CPU;
    SLLM_CHECK(p.param.device() == want,
               str("data-parallel training: '", p.name, "' is on ", device_name(p.param.device()), ", expected ",
                   device_name(want)),
               "every trainable parameter of a multi-rank run lives on the run's --device");
  }
  SLLM_CHECK(!(gpu_ && options_.zero == 1), "--zero 1 shards host optimizer state; this run's parameters are on a GPU",
             "drop --zero (each GPU keeps the whole optimizer state), or train on the CPU");
  // Overlap buckets: the parameters in reverse order (backward finishes the last layers'
  // gradients first), cut every bucket_floats elements.
  int64_t filled = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    if (overlap_buckets_.empty() || filled >= options_.bucket_floats) {
      overlap_buckets_.emplace_back();
      filled = 0;
    }
    overlap_buckets_.back().push_back(k);
    filled += params_[k].param.numel();
    index_of_[&params_[k].param.impl()] = k;
  }
  if (comm_.size() > 1) bucket_.resize(static_cast<size_t>(std::min(options_.bucket_floats, std::max<int64_t>(1, offsets_.back()))));
}

std::vector<optim::ParamSpan> DataParallel::optimizer_spans() const {
  if (options_.zero == 0) return {};
  return zero_partition(params_, comm_.rank(), comm_.size());
}

template <class Fn>
void DataParallel::for_each_piece(int64_t begin, int64_t end, Fn&& fn) const {
  // The first param that ends after `begin`.
  size_t i = static_cast<size_t>(std::upper_bound(offsets_.begin(), offsets_.end(), begin) - offsets_.begin()) - 1;
  for (; i < params_.size() && offsets_[i] < end; ++i) {
    const int64_t b = std::max(begin, offsets_[i]), e = std::min(end, offsets_[i + 1]);
    if (e > b) fn(i, b - offsets_[i], e - b, b - begin);
  }
}

void DataParallel::broadcast_parameters() {
  if (comm_.size() == 1) return;
  if (gpu_) {
    gpu_->group_begin();
    for (auto& p : params_) gpu_->broadcast(p.param.mutable_raw(), p.param.nbytes(), 0);
    gpu_->group_end();
    return;
  }
  for (auto& p : params_) comm_.broadcast(p.param.mutable_raw(), p.param.nbytes(), 0);
}

void DataParallel::allreduce_gradients_gpu(const std::vector<int64_t>& reached) {
  if (!options_.deterministic_reduce) {
    // One NCCL group per bucket's worth of tensors: NCCL fuses the group's calls.
    int64_t in_group = 0;
    gpu_->group_begin();
    for (size_t i = 0; i < params_.size(); ++i) {
      if (reached[i] == 0) continue;
      if (in_group > 0 && in_group + params_[i].param.numel() > options_.bucket_floats) {
        gpu_->group_end();
        gpu_->group_begin();
        in_group = 0;
      }
      gpu_->allreduce_sum(params_[i].param.grad().mutable_f32(), params_[i].param.numel());
      in_group += params_[i].param.numel();
    }
    gpu_->group_end();
    return;
  }
  // Rank order: gather every rank's gradient, sum on the host as ((g0 + g1) + g2) + ...
  for (size_t i = 0; i < params_.size(); ++i) {
    if (reached[i] == 0) continue;
    Tensor grad = params_[i].param.grad();
    const int64_t n = grad.numel();
    Tensor gathered = Tensor::empty({comm_.size() * n}, DType::F32, Device::CUDA);
    gpu_->allgather(grad.f32(), gathered.mutable_f32(), n);
    const Tensor host = gathered.to(Device::CPU);
    Tensor sum = Tensor::empty(grad.shape());
    float* out = sum.mutable_f32();
    const float* g = host.f32();
    std::copy(g, g + n, out);
    for (int r = 1; r < comm_.size(); ++r)
      for (int64_t j = 0; j < n; ++j) out[j] += g[r * n + j];
    grad.copy_from(sum);
  }
}

DataParallel::~DataParallel() {
  if (overlapping_) autograd::set_leaf_ready_hook(std::move(previous_hook_));
}

void DataParallel::begin_overlap() {
  if (comm_.size() == 1 || gpu_ || options_.deterministic_reduce || expected_.empty()) return;
  ready_.assign(params_.size(), 0);
  next_bucket_ = 0;
  overlapping_ = true;
  previous_hook_ = autograd::set_leaf_ready_hook([this](const Tensor& leaf) {
    auto it = index_of_.find(&leaf.impl());
    if (it == index_of_.end()) return;  // not a trainable parameter of this run
    ready_[it->second] = 1;
    launch_ready_buckets(false);
  });
}

void DataParallel::launch_ready_buckets(bool all) {
  bool launched = false;
  for (; next_bucket_ < overlap_buckets_.size(); ++next_bucket_) {
    const std::vector<size_t>& bucket = overlap_buckets_[next_bucket_];
    // Buckets start in one fixed order on every rank (MPI's rule for collectives): the next
    // one waits until every parameter of it that the ranks reduce is final here.
    if (!all && !std::all_of(bucket.begin(), bucket.end(), [&](size_t i) { return !expected_[i] || ready_[i]; })) break;
    for (size_t i : bucket) {
      if (!expected_[i]) continue;
      if (!optim::has_grad(params_[i]))  // reached on another rank only: a zero gradient here
        params_[i].param.set_grad(Tensor::zeros(params_[i].param.shape(), DType::F32, Device::CPU));
      comm_.start_allreduce_sum(params_[i].param.grad().mutable_f32(), params_[i].param.numel());
    }
    launched = true;
  }
  if (launched || next_bucket_ > 0) comm_.progress();
}

void DataParallel::end_overlap() {
  if (!overlapping_) return;
  autograd::set_leaf_ready_hook(std::move(previous_hook_));
  previous_hook_ = nullptr;
  launch_ready_buckets(true);  // parameters no gradient reached on this rank: zeros, in order
  comm_.finish_allreduces();
}

void DataParallel::allreduce_gradients() {
  if (comm_.size() == 1) return;
  const bool overlapped = overlapping_;
  overlapping_ = false;
  // Which params got a gradient, on how many ranks: every rank learns the same set, which the
  // next step's overlap starts from.
  std::vector<int64_t> reached(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) reached[i] = optim::has_grad(params_[i]) ? 1 : 0;
  comm_.allreduce_sum(reached.data(), static_cast<int64_t>(reached.size()));
  std::vector<char> left(params_.size());  // reached, and not reduced while backward ran
  for (size_t i = 0; i < params_.size(); ++i) left[i] = reached[i] > 0 && !(overlapped && expected_[i]);
  expected_.assign(params_.size(), 0);
  for (size_t i = 0; i < params_.size(); ++i) expected_[i] = reached[i] > 0;
  if (std::none_of(left.begin(), left.end(), [](char l) { return l != 0; })) return;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (left[i] && !optim::has_grad(params_[i]))
      params_[i].param.set_grad(Tensor::zeros(params_[i].param.shape(), DType::F32, params_[i].param.device()));
  }
  if (gpu_) {
    allreduce_gradients_gpu(reached);
    return;
  }
  const int64_t total = offsets_.back(), cap = static_cast<int64_t>(bucket_.size());
  for (int64_t begin = 0; begin < total; begin += cap) {
    const int64_t end = std::min(total, begin + cap);
    float* bucket = bucket_.data();
    // Pieces of params no rank reached, or already reduced, stay zero and are not written back.
    std::fill(bucket, bucket + (end - begin), 0.0f);
    for_each_piece(begin, end, [&](size_t i, int64_t first, int64_t n, int64_t at) {
      if (left[i]) std::memcpy(bucket + at, params_[i].param.grad().f32() + first, static_cast<size_t>(n) * sizeof(float));
    });
    if (options_.deterministic_reduce) {
      comm_.allreduce_sum_ordered(bucket, end - begin);
    } else {
      comm_.allreduce_sum(bucket, end - begin);
    }
    for_each_piece(begin, end, [&](size_t i, int64_t first, int64_t n, int64_t at) {
      if (left[i]) std::memcpy(params_[i].param.grad().mutable_f32() + first, bucket + at, static_cast<size_t>(n) * sizeof(float));
    });
  }
}

void DataParallel::sum_micro_batch(int64_t micro) {
  if (micro == 0) micro_sum_.assign(params_.size(), Tensor());
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!optim::has_grad(params_[i])) continue;
    Tensor grad = params_[i].param.grad();
    params_[i].param.zero_grad();
    if (!micro_sum_[i].defined()) {
      micro_sum_[i] = grad;
      continue;
    }
    float* sum = micro_sum_[i].mutable_f32();
    const float* g = grad.f32();
    const int64_t n = grad.numel();
#pragma omp parallel for schedule(static) if (n > (int64_t{1} << 16))
    for (int64_t j = 0; j < n; ++j) sum[j] += g[j];
  }
}

void DataParallel::finish_micro_batches() {
  for (size_t i = 0; i < params_.size(); ++i) {
    if (micro_sum_[i].defined()) params_[i].param.set_grad(micro_sum_[i]);
  }
  micro_sum_.clear();
}

void DataParallel::allreduce_sum(double* values, int64_t n) {
  if (options_.deterministic_reduce) {
    comm_.allreduce_sum_ordered(values, n);
  } else {
    comm_.allreduce_sum(values, n);
  }
}

void DataParallel::gather_parameters() {
  if (comm_.size() == 1 || options_.zero == 0) return;
  const int64_t total = offsets_.back(), cap = static_cast<int64_t>(bucket_.size());
  for (int root = 0; root < comm_.size(); ++root) {
    const int64_t lo = zero_boundary(total, root, comm_.size()), hi = zero_boundary(total, root + 1, comm_.size());
    for (int64_t begin = lo; begin < hi; begin += cap) {
      const int64_t end = std::min(hi, begin + cap);
      float* bucket = bucket_.data();
      if (comm_.rank() == root) {
        for_each_piece(begin, end, [&](size_t i, int64_t first, int64_t n, int64_t at) {
          std::memcpy(bucket + at, params_[i].param.f32() + first, static_cast<size_t>(n) * sizeof(float));
        });
      }
      comm_.broadcast(bucket, static_cast<size_t>(end - begin) * sizeof(float), root);
      if (comm_.rank() == root) continue;
      for_each_piece(begin, end, [&](size_t i, int64_t first, int64_t n, int64_t at) {
        std::memcpy(params_[i].param.mutable_f32() + first, bucket + at, static_cast<size_t>(n) * sizeof(float));
      });
    }
  }
}

std::vector<std::pair<std::string, std::pair<size_t, int>>> DataParallel::optimizer_file_order() const {
  // The file's order is the writer's rule (io/safetensors.h): ask a writer of the same names.
  io::SafetensorsWriter layout;
  std::map<std::string, std::pair<size_t, int>> which;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Shape& shape = params_[i].param.shape();
    for (int k = 0; k < 2; ++k) {
      const std::string name = params_[i].name + (k == 0 ? ".exp_avg" : ".exp_avg_sq");
      layout.add_produced(name, "F32", std::vector<int64_t>(shape.begin(), shape.end()), params_[i].param.nbytes(),
                          [](void*) {});
      which[name] = {i, k};
    }
  }
  std::vector<std::pair<std::string, std::pair<size_t, int>>> order;
  for (const std::string& name : layout.write_order()) order.emplace_back(name, which.at(name));
  return order;
}

void DataParallel::add_optimizer_state(io::SafetensorsWriter& file, const optim::AdamW& opt) {
  SLLM_ASSERT(comm_.is_root() && opt.sharded());
  const std::vector<std::pair<std::string, Tensor>> mine = opt.state_tensors();  // (param, moment) pairs
  auto spans = std::make_shared<std::vector<std::vector<optim::ParamSpan>>>();  // [rank][param]
  for (int r = 0; r < comm_.size(); ++r) spans->push_back(zero_partition(params_, r, comm_.size()));
  const auto order = optimizer_file_order();
  auto next = std::make_shared<size_t>(0);  // producers must run in the order the others send
  for (size_t at = 0; at < order.size(); ++at) {
    const auto [i, k] = order[at].second;
    const Tensor moment = mine[2 * i + static_cast<size_t>(k)].second;
    const Shape& shape = params_[i].param.shape();
    file.add_produced(order[at].first, "F32", std::vector<int64_t>(shape.begin(), shape.end()), params_[i].param.nbytes(),
                      [this, spans, moment, next, at, i = i](void* dst) {
                        SLLM_CHECK(*next == at, "ZeRO-1 checkpoint: optimizer state written out of order",
                                   "this is a bug in sllm; please report it");
                        ++*next;
                        float* out = static_cast<float*>(dst);
                        const auto& by_rank = *spans;
                        std::copy(moment.f32(), moment.f32() + moment.numel(), out + by_rank[0][i].begin);
                        for (int r = 1; r < comm_.size(); ++r)
                          if (by_rank[r][i].size() > 0) comm_.recv(out + by_rank[r][i].begin, by_rank[r][i].size(), r);
                      });
  }
}

void DataParallel::send_optimizer_state(const optim::AdamW& opt) {
  SLLM_ASSERT(!comm_.is_root() && opt.sharded());
  const std::vector<std::pair<std::string, Tensor>> mine = opt.state_tensors();
  for (const auto& [name, which] : optimizer_file_order()) {
    const Tensor& moment = mine[2 * which.first + static_cast<size_t>(which.second)].second;
    if (moment.numel() > 0) comm_.send(moment.f32(), moment.numel(), 0);
  }
}

}  // namespace sllm::train
