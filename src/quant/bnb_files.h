// 4-bit model directories in the Hugging Face bitsandbytes serialization: what transformers'
// save_pretrained writes for a model loaded with BitsAndBytesConfig(load_in_4bit=True), so
// transformers loads what `sllm quantize` writes and sllm loads what the Hub publishes.
//
// model.safetensors holds, for each quantized Linear at HF module path P (a QuantState,
// bitsandbytes/functional.py QuantState.as_dict(packed=True), keys prefixed with "P.weight."):
//   P.weight                                  u8 (ceil(n/2), 1)  two codes per byte, first element high
//   P.weight.absmax                           u8 (nb) with double quantization, else f32 (nb)
//   P.weight.quant_map                        f32 (16)   the NF4 or FP4 code table
//   P.weight.nested_absmax                    f32 (nb2)  double quantization only
//   P.weight.nested_quant_map                 f32 (256)  double quantization only
//   P.weight.quant_state.bitsandbytes__nf4    u8: UTF-8 JSON (bitsandbytes/utils.py pack_dict_to_tensor)
//       {"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [out, in],
//        "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.0123}
//   (…__fp4 for FP4; the three nested_* JSON keys only with double quantization)
// Every other tensor (embeddings, norms, biases, an untied lm_head) is stored as usual. The
// shape is the Linear's (out, in), GPT-2's Conv1D included: transformers transposes Conv1D
// weights to nn.Linear's layout before quantizing (integrations/bitsandbytes.py), which is
// the layout sllm keeps in memory. config.json carries "quantization_config" with the keys of
// transformers' BitsAndBytesConfig.to_dict (quant_method "bitsandbytes", load_in_4bit, ...).
#pragma once
#include <memory>
#include <string>

#include "nn/transformer.h"
#include "quant/quantize_model.h"
#include "quant/quantized_tensor.h"

namespace sllm::quant {

// Whether DIR/config.json declares a quantized model (a "quantization_config" that is not null).
bool is_quantized_dir(const std::string& dir);

// Any model: a .gguf file or a plain model directory (io::load_model), or a bitsandbytes
// 4-bit directory (load_quantized_model). Every command that runs a model loads through here.
std::unique_ptr<nn::Transformer> load_model(const std::string& dir_or_path);

// A bitsandbytes 4-bit directory: the model is built with zero parameters, each quantized
// Linear gets its QuantizedTensor (checked with validate()) as a packed weight, releasing
// its dense weight, and the remaining parameters are read from the file (f32, f16 or bf16).
// Linears without a quant_state stay dense. Everything is checked: a missing or extra
// tensor, a corrupted quant_state JSON, arrays that do not fit its shape and blocksize, a
// code table that is neither NF4 nor FP4 are each a sllm::Error with a hint.
std::unique_ptr<nn::Transformer> load_quantized_model(const std::string& dir);

// Writes DIR/config.json (with quantization_config) and DIR/model.safetensors, each
// atomically; DIR is created. Every packed Linear must hold a quant::QuantizedWeight; the
// model may be on either device (its tensors are copied to the host).
void save_quantized_model(nn::Transformer& model, const std::string& dir);

// The quant_state JSON bitsandbytes packs into P.weight.quant_state.bitsandbytes__<type>
// (json.dumps's ", " / ": " separators, keys in QuantState.as_dict's order): the same bytes
// as bitsandbytes for the same state.
std::string quant_state_json(const QuantizedTensor& q);

}  // namespace sllm::quant
