#include "nn/linear.h"

#include <utility>

#include "core/error.h"
#include "ops/ops.h"

namespace sllm::nn {

Linear::Linear(std::string path, int64_t in_features, int64_t out_features, bool bias, bool conv1d)
    : path_(std::move(path)),
      weight_name_(path_ + ".weight"),
      bias_name_(bias ? path_ + ".bias" : ""),
      in_features_(in_features),
      out_features_(out_features),
      conv1d_(conv1d) {
  SLLM_CHECK(in_features > 0 && out_features > 0,
             str("Linear ", path_, " of ", in_features, " inputs and ", out_features, " outputs"),
             "both sizes must be positive: check the model config");
  weight_ = new_parameter(weight_name_, {out_features, in_features});
  if (bias) bias_ = new_parameter(bias_name_, {out_features});
}

Tensor Linear::forward(const Tensor& x) const { return adapter_ ? adapter_->forward(x, *this) : base_forward(x); }

Tensor Linear::base_forward(const Tensor& x) const {
  return packed_ ? ops::packed_linear(x, packed_, bias_) : ops::linear(x, weight_, bias_);
}

void Linear::set_packed_weight(std::shared_ptr<const ops::PackedWeight> packed) {
  SLLM_CHECK(packed != nullptr, str("Linear ", path_, ": no packed weight"), "pass the quantized weight");
  SLLM_CHECK(packed->out_features() == out_features_ && packed->in_features() == in_features_,
             str("Linear ", path_, " is (", out_features_, ", ", in_features_, "), its ", packed->format(),
                 " weight is (", packed->out_features(), ", ", packed->in_features(), ")"),
             "the quantized file does not belong to this model config");
  packed_ = std::move(packed);
  weight_ = Tensor();
}

void Linear::append_parameters(std::vector<Parameter>& out) {
  if (!packed_) out.push_back({weight_name_, weight_, conv1d_});
  if (bias_.defined()) out.push_back({bias_name_, bias_, false});
}

}  // namespace sllm::nn
