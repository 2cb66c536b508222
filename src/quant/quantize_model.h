// QLoRA's base model (Dettmers et al. 2023, section 3): every Linear of the trunk stored in
// 4 bits, its dense weight released. Embeddings, norms and the LM head stay as they are, as
// bitsandbytes' and PEFT's QLoRA leave them (transformers' BitsAndBytesConfig skips the
// output head: llm_int8_skip_modules defaults to it).
#pragma once
#include <cstdint>

#include "nn/transformer.h"
#include "quant/quantized_tensor.h"

namespace sllm::quant {

struct QuantizeReport {
  int64_t linears = 0;      // Linears quantized
  int64_t params = 0;       // their weights' element count
  int64_t bytes = 0;        // what the quantized weights hold
  double bits_per_param() const { return params ? 8.0 * double(bytes) / double(params) : 0.0; }
};

// Quantizes every trunk Linear of a CPU f32 model in place (Linear::set_packed_weight), one
// at a time so that the dense weights are released as they go, then refreshes the model's
// parameter list. A model already holding packed weights is refused.
QuantizeReport quantize_model(nn::Transformer& model, const QuantOptions& options);

// What a model's packed weights hold (0 linears when it has none).
QuantizeReport packed_report(nn::Transformer& model);

}  // namespace sllm::quant
