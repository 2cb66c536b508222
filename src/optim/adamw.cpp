#include "optim/adamw.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"
#include "kernels/kernels.h"
#include "optim/grad_clip.h"
#include "tensor/bf16_shadow.h"
#if SLLM_HAVE_CUDA
#include "kernels/cuda_kernels.h"
#endif

namespace sllm::optim {

AdamW::AdamW(std::vector<ParamRef> params, AdamWConfig cfg) : AdamW(std::move(params), cfg, {}) {}

AdamW::AdamW(std::vector<ParamRef> params, AdamWConfig cfg, std::vector<ParamSpan> owned)
    : params_(std::move(params)), cfg_(cfg), sharded_(!owned.empty()) {
  check_params(params_, "AdamW");
  SLLM_CHECK(cfg_.beta1 >= 0 && cfg_.beta1 < 1 && cfg_.beta2 >= 0 && cfg_.beta2 < 1,
             str("AdamW: betas must be in [0, 1), got (", cfg_.beta1, ", ", cfg_.beta2, ")"),
             "the usual LLM values are beta1 = 0.9, beta2 = 0.95");
  SLLM_CHECK(cfg_.eps > 0 && std::isfinite(cfg_.eps), str("AdamW: eps must be positive, got ", cfg_.eps), "e.g. 1e-8");
  SLLM_CHECK(cfg_.weight_decay >= 0 && std::isfinite(cfg_.weight_decay),
             str("AdamW: weight_decay must be >= 0, got ", cfg_.weight_decay), "e.g. 0.1 (0 disables it)");
  if (sharded_) {
    SLLM_CHECK(owned.size() == params_.size(), str("AdamW: ", owned.size(), " spans for ", params_.size(), " params"),
               "pass one span per param");
    for (size_t i = 0; i < params_.size(); ++i) {
      const ParamSpan s = owned[i];
      SLLM_CHECK(0 <= s.begin && s.begin <= s.end && s.end <= params_[i].param.numel(),
                 str("AdamW: span [", s.begin, ", ", s.end, ") of '", params_[i].name, "' (", params_[i].param.numel(),
                     " elements)"),
                 "a span lies within its param");
      SLLM_CHECK(params_[i].param.device() == Device::CPU, "AdamW: a sharded optimizer (ZeRO-1) needs host params",
                 "train on the CPU, or without --zero");
    }
    spans_ = std::move(owned);
  } else {
    for (const auto& p : params_) spans_.push_back({0, p.param.numel()});
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].param;
    const Shape shape = sharded_ ? Shape{spans_[i].size()} : p.shape();
    exp_avg_.push_back(Tensor::zeros(shape, DType::F32, p.device()));  // the moments live with the param
    exp_avg_sq_.push_back(Tensor::zeros(shape, DType::F32, p.device()));
  }
}

void AdamW::step(float lr, float grad_scale) {
  SLLM_CHECK(std::isfinite(lr) && lr >= 0, str("AdamW::step: learning rate must be finite and >= 0, got ", lr),
             "check the LrSchedule (max_lr, min_lr)");
  ++step_;
  if (grad_scale != 1.0f) {  // host grads: scaled in place first, exactly as clip_grad_norm does
    std::vector<ParamRef> host;
    for (const auto& p : params_)
      if (has_grad(p) && p.param.device() == Device::CPU) host.push_back(p);
    scale_grads(host, grad_scale);
  }
#if SLLM_HAVE_CUDA
  std::vector<kernels::cuda::AdamWTensor> device_params;  // updated below in one launch
  std::vector<const Tensor*> shadowed;                    // their params that have a bf16 shadow
#endif
  for (size_t i = 0; i < params_.size(); ++i) {
    ParamRef& p = params_[i];
    if (!has_grad(p)) continue;
    const Tensor grad = p.param.grad();
    SLLM_ASSERT(grad.shape() == p.param.shape() && grad.dtype() == DType::F32 && grad.device() == p.param.device());
    const float decay = p.decay ? cfg_.weight_decay : 0.0f;
#if SLLM_HAVE_CUDA
    if (p.param.device() == Device::CUDA) {
      Tensor shadow = existing_bf16_shadow(p.param);
      if (shadow.defined()) shadowed.push_back(&p.param);
      device_params.push_back({p.param.mutable_f32(), grad.f32(), exp_avg_[i].mutable_f32(),
                               exp_avg_sq_[i].mutable_f32(), shadow.defined() ? shadow.mutable_data<bf16>() : nullptr,
                               p.param.numel(), decay});
      continue;
    }
#endif
    const ParamSpan span = spans_[i];
    if (span.size() == 0) continue;
    kernels::adamw_update(p.param.mutable_f32() + span.begin, grad.f32() + span.begin, exp_avg_[i].mutable_f32(),
                          exp_avg_sq_[i].mutable_f32(), span.size(), lr, cfg_.beta1, cfg_.beta2, cfg_.eps, decay, step_);
  }
#if SLLM_HAVE_CUDA
  if (!device_params.empty()) {
    if (!device_table_) device_table_ = std::make_shared<kernels::cuda::DeviceTable>();
    kernels::cuda::adamw_update_multi(*device_table_, device_params, lr, cfg_.beta1, cfg_.beta2, cfg_.eps, grad_scale,
                                      step_);
    // The launch wrote every element of these shadows after the params' last version bump.
    for (const Tensor* param : shadowed) mark_bf16_shadow_current(*param);
  }
#endif
}

void AdamW::zero_grad() {
  for (auto& p : params_) p.param.zero_grad();
}

std::vector<std::pair<std::string, Tensor>> AdamW::state_tensors() const {
  std::vector<std::pair<std::string, Tensor>> out;
  out.reserve(2 * params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back(params_[i].name + ".exp_avg", exp_avg_[i]);
    out.emplace_back(params_[i].name + ".exp_avg_sq", exp_avg_sq_[i]);
  }
  return out;
}

void AdamW::load_state(const std::vector<std::pair<std::string, Tensor>>& tensors, int64_t step_count) {
  const std::string hint = "the checkpoint was written for another model or parameter list; resume with the same "
                           "model config and the same frozen/trainable split";
  SLLM_CHECK(step_count >= 0, str("AdamW::load_state: negative step count ", step_count), hint);
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [name, t] : tensors)
    SLLM_CHECK(by_name.emplace(name, &t).second, str("AdamW::load_state: '", name, "' appears twice"), hint);

  // Validate everything before copying anything, so a bad checkpoint leaves us unchanged.
  std::vector<const Tensor*> sources;  // (2 * params): exp_avg, exp_avg_sq per param
  for (size_t i = 0; i < params_.size(); ++i) {
    const ParamRef& p = params_[i];
    for (int k = 0; k < 2; ++k) {
      const std::string key = p.name + (k == 0 ? ".exp_avg" : ".exp_avg_sq");
      auto it = by_name.find(key);
      SLLM_CHECK(it != by_name.end(), str("AdamW::load_state: optimizer state '", key, "' is missing"), hint);
      const Tensor& t = *it->second;
      const bool own = t.same_as(k == 0 ? exp_avg_[i] : exp_avg_sq_[i]);  // our own state_tensors() back
      SLLM_CHECK(own || (t.defined() && t.dtype() == DType::F32 && t.shape() == p.param.shape()),
                 str("AdamW::load_state: '", key, "' is ", t.defined() ? dtype_name(t.dtype()) : "undefined", " ",
                     t.defined() ? shape_str(t.shape()) : "", ", expected f32 ", shape_str(p.param.shape())),
                 hint);
      sources.push_back(&t);
      by_name.erase(it);
    }
  }
  SLLM_CHECK(by_name.empty(),
             str("AdamW::load_state: unexpected optimizer state '", by_name.empty() ? "" : by_name.begin()->first,
                 "' (", by_name.size(), " unknown names)"),
             hint);

  // copy_from also brings device tensors to the host; loading our own state_tensors() back
  // (the same tensors) is a no-op rather than a self-overlapping memcpy.
  for (size_t i = 0; i < params_.size(); ++i) {
    for (int k = 0; k < 2; ++k) {
      const Tensor& source = *sources[2 * i + k];
      Tensor& moment = k == 0 ? exp_avg_[i] : exp_avg_sq_[i];
      if (source.same_as(moment)) continue;
      if (!sharded_) {
        moment.copy_from(source);
        continue;
      }
      const Tensor host = source.to(Device::CPU);
      std::copy(host.f32() + spans_[i].begin, host.f32() + spans_[i].end, moment.mutable_f32());
    }
  }
  step_ = step_count;
}

}  // namespace sllm::optim
