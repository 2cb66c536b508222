#include "quant/quantize_model.h"

#include <malloc.h>

#include <memory>

#include "core/error.h"
#include "quant/quantized_weight.h"

namespace sllm::quant {

QuantizeReport quantize_model(nn::Transformer& model, const QuantOptions& options) {
  SLLM_CHECK(model.device() == Device::CPU, "quantize_model: the model is on a GPU",
             "quantize on the CPU after loading, then move the model with to(Device::CUDA)");
  QuantizeReport report;
  for (nn::Linear* linear : model.linears()) {
    SLLM_CHECK(!linear->is_packed(), str(linear->path(), " is already ", linear->packed_weight()->format()),
               "the model is already quantized: load it as it is, without quantizing again");
    const Tensor& w = linear->weight();
    SLLM_CHECK(w.dtype() == DType::F32, str(linear->path(), ".weight is ", dtype_name(w.dtype())),
               "quantization reads f32 weights");
    auto packed = std::make_shared<QuantizedWeight>(quantize(w, options));
    report.linears += 1;
    report.params += w.numel();
    report.bytes += packed->nbytes();
    linear->set_packed_weight(std::move(packed));  // the dense weight is released here
  }
  model.refresh_parameters();
  // The dense weights just freed went to the host allocator's cache of freed blocks, sized
  // for reuse by training steps that will never ask for them: hand them back to the system,
  // or the process would keep the full-precision model's memory after all.
  allocator_for(Device::CPU).release_cache();
  malloc_trim(0);
  return report;
}

QuantizeReport packed_report(nn::Transformer& model) {
  QuantizeReport report;
  for (nn::Linear* linear : model.linears()) {
    if (!linear->is_packed()) continue;
    const auto& packed = linear->packed_weight();
    report.linears += 1;
    report.params += packed->out_features() * packed->in_features();
    report.bytes += packed->nbytes();
  }
  return report;
}

}  // namespace sllm::quant
