// AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay
// Regularization", ICLR 2019, Algorithm 2), with the update order of torch.optim.AdamW:
//   p *= 1 - lr * wd                       (only params with decay = true)
//   m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g²
//   p -= lr * m / (1 - beta1^t) / (sqrt(v / (1 - beta2^t)) + eps)      (t = step_count, 1-based)
// The arithmetic lives in kernels::adamw_update (kernels/cpu/adamw.cpp); this class owns
// the moment buffers m ("exp_avg") and v ("exp_avg_sq") and the step count.
//
// One difference from PyTorch: PyTorch counts steps per parameter (a param that got no
// gradient on some step lags behind); here one count serves all params, so a param that
// skipped steps gets the bias correction of the global step. The two agree whenever every
// trainable param receives a gradient on every step, which is the case in our trainers.
//
// On CUDA one launch updates every GPU parameter (kernels::cuda::adamw_update_multi, the
// same arithmetic bit for bit as the per-tensor kernel and the CPU's), and writes the new
// values into each weight's bf16 shadow (tensor/bf16_shadow.h) when it has one, so the
// mixed-precision forward finds it current without casting.
//
// Gradient accumulation needs no class: call backward() K times on loss / K (gradients
// accumulate with +=), then clip_grad_norm, step(lr) and zero_grad() once. The 1/K makes the
// accumulated gradient the mean over the K micro-batches, so the effective batch is K times
// larger at the same learning rate.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "optim/param.h"
#include "tensor/tensor.h"

namespace sllm::kernels::cuda {
class DeviceTable;  // kernels/cuda_kernels.h (CUDA builds)
}

namespace sllm::optim {

// ZeRO-1 (issue 14; Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion
// Parameter Models", SC 2020, section 5.1 "P_os"): each of N ranks keeps the moments of only
// its 1/N of the elements and updates only those. A span is the part of one param, elements
// [begin, end) of its flat (row-major) view, this optimizer owns; begin == end: none of it.
struct ParamSpan {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};

struct AdamWConfig {
  float lr = 3e-4f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
};

class AdamW {
 public:
  // Validates the list (see check_params) and the config; allocates zeroed moments.
  AdamW(std::vector<ParamRef> params, AdamWConfig cfg);
  // A sharded optimizer (ZeRO-1): owned[i] is the span of params[i] it keeps moments for and
  // updates; the rest of each param is another rank's to update (see train/data_parallel.h).
  // The update of an owned element is the same arithmetic, bit for bit, as the unsharded
  // optimizer's. Host (CPU) params only.
  AdamW(std::vector<ParamRef> params, AdamWConfig cfg, std::vector<ParamSpan> owned);

  // One update with this step's learning rate (from an LrSchedule; cfg.lr is only the
  // default a caller may pass). Increments step_count first, then updates every param that
  // has a gradient; params without one (frozen or unreached) are skipped untouched.
  //
  // grad_scale: every gradient is taken as grad * grad_scale (one float rounding), so that
  // step(lr, clip_scale(params, max_norm).scale) equals clip_grad_norm then step(lr) bit for
  // bit while the GPU saves the separate scaling pass. With grad_scale != 1 the grads are
  // consumed: on the CPU they are scaled in place, on CUDA left unscaled; zero_grad() next.
  void step(float lr, float grad_scale = 1.0f);
  void zero_grad();  // drops every param's grad
  int64_t step_count() const { return step_; }
  const AdamWConfig& config() const { return cfg_; }
  const std::vector<ParamRef>& params() const { return params_; }

  // Checkpoint state: "<name>.exp_avg" and "<name>.exp_avg_sq" per param, in param order.
  // The tensors alias the live moments (no copy, so a checkpoint of a big model does not
  // double its optimizer memory): write them out before the next step(). A sharded
  // optimizer's are its spans, 1-D (span.size()).
  std::vector<std::pair<std::string, Tensor>> state_tensors() const;
  // Copies saved moments in and sets the step count. Every expected name must be present
  // exactly once with the param's shape and dtype f32, and no other name may appear;
  // otherwise sllm::Error (and the optimizer is left unchanged). A sharded optimizer takes
  // the same full tensors and keeps its spans of them, so a checkpoint reads back at any
  // number of ranks.
  void load_state(const std::vector<std::pair<std::string, Tensor>>& tensors, int64_t step_count);
  // The span of each param this optimizer updates (the whole param when not sharded).
  const std::vector<ParamSpan>& spans() const { return spans_; }
  bool sharded() const { return sharded_; }

 private:
  std::vector<ParamRef> params_;
  AdamWConfig cfg_;
  std::vector<ParamSpan> spans_;  // (params) what each moment pair covers
  bool sharded_ = false;
  std::vector<Tensor> exp_avg_;     // m, one per param, same shape
  std::vector<Tensor> exp_avg_sq_;  // v, one per param, same shape
  int64_t step_ = 0;
  // The device copy of the multi-tensor update's descriptors, kept between steps (uploaded
  // again only when a pointer changes). Created on the first step with CUDA params.
  std::shared_ptr<kernels::cuda::DeviceTable> device_table_;
};

}  // namespace sllm::optim
