#include "optim/param.h"

#include <set>

#include "core/error.h"

namespace sllm::optim {

bool has_grad(const ParamRef& p) { return p.param.requires_grad() && p.param.grad().defined(); }

bool default_decay(const std::string& name, const Tensor& param) {
  if (param.ndim() < 2) return false;
  for (const char* embedding : {"wte", "wpe", "embed_tokens"})
    if (name.find(embedding) != std::string::npos) return false;
  return true;
}

void check_params(const std::vector<ParamRef>& params, const std::string& who) {
  std::set<std::string> names;
  std::set<const TensorImpl*> tensors;
  for (const auto& p : params) {
    SLLM_CHECK(!p.name.empty(), str(who, ": a parameter has an empty name"),
               "give every parameter its module path, e.g. 'h.0.attn.c_attn.weight'");
    SLLM_CHECK(names.insert(p.name).second, str(who, ": parameter name '", p.name, "' appears twice"),
               "parameter names are checkpoint keys and must be unique");
    SLLM_CHECK(p.param.defined(), str(who, ": parameter '", p.name, "' is an undefined tensor"),
               "build the model before the optimizer");
    SLLM_CHECK(p.param.dtype() == DType::F32,
               str(who, ": parameter '", p.name, "' is ", dtype_name(p.param.dtype()), ", expected f32"),
               "trainable parameters are f32; keep quantized or half-precision weights frozen and out of the list");
#if SLLM_HAVE_CUDA
    const bool supported = p.param.device() == Device::CPU || p.param.device() == Device::CUDA;
#else
    const bool supported = p.param.device() == Device::CPU;
#endif
    SLLM_CHECK(supported, str(who, ": parameter '", p.name, "' is on ", device_name(p.param.device())),
               "this build updates host (CPU) tensors only; build with CUDA (cmake -DSLLM_CUDA=ON) for GPU parameters");
    SLLM_CHECK(tensors.insert(p.param.impl_ptr().get()).second,
               str(who, ": parameter '", p.name, "' is the same tensor as an earlier entry"),
               "tied weights (e.g. lm_head tied to wte) must be listed once, or they are updated twice per step");
  }
}

}  // namespace sllm::optim
