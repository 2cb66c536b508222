// Memory of a training run, predicted without running it (`sllm memory`, and the table
// every pretrain / sft run prints at its start): weights, gradients, optimizer state and
// activations for a model config, a method (full, LoRA, QLoRA), a batch and a device.
//
// The activation term is not a rule of thumb: it replays, tensor by tensor, what this
// engine's forward keeps alive for backward. In sllm's autograd (autograd/autograd.h) a
// recorded op's node holds every one of its inputs until its backward has run, and its
// closure holds a few extras (a norm's mean/rstd, attention's output and row log-sum-exp,
// cross-entropy's row lse and targets). An op records only when an input requires grad or
// one of its weights trains, so a frozen base (LoRA) keeps less in front of the first
// adapter; an adapted Linear keeps its input, u = x·Aᵀ and the dropout mask (fp32, one
// fused node) or its down/up/sum tensors (bf16, composed ops). The
// estimate walks the same op sequence as nn/gpt2.cpp, nn/llama.cpp, nn/attention.cpp,
// nn/mlp.cpp, lora/lora_layer.cpp, ops/lora_linear.cpp and ops/loss.cpp; tests/train/test_memory_estimate.cpp
// checks it against a counting allocator over a real training step (within 15%).
//
// What the device's peak (ops/memory_usage.h) is predicted to read:
//  - CUDA: the caching allocator's peak of live blocks (sizes rounded as it rounds them).
//    Gradients and activations overlap only partly in time (backward frees a layer's
//    activations as it makes its weight gradients), so the peak is a timeline maximum.
//  - CPU: the process's peak RSS. The host allocator (tensor/storage.cpp) keeps freed
//    blocks for reuse by exact size, so the activation blocks freed during backward stay
//    resident while the weight gradients (other sizes) are new: the peak is the sum of the
//    rows plus the process's own baseline (binary, libraries, threads, data) before the
//    model exists, which the caller measures (`sllm memory` reads its own RSS: the same
//    binary) and passes in, and the kernels' workspaces: each thread's GEMM pack buffers
//    (kernels::sgemm_pack_floats, up to a few MiB per thread) and QLoRA's one dequantized
//    tile (quant::QuantizedWeight).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/config.h"
#include "ops/device.h"
#include "tensor/storage.h"

namespace sllm::train {

enum class TrainMethod { Full, Lora, QLora };
// "full", "lora" or "qlora"; a sllm::Error with a hint otherwise.
TrainMethod parse_train_method(const std::string& name);
const char* train_method_name(TrainMethod method);

struct MemoryRequest {
  nn::ModelConfig config;
  TrainMethod method = TrainMethod::Full;
  // LoRA / QLoRA (sllm sft's defaults): rank, alpha (only whether s = alpha/r is 1 matters:
  // otherwise s·B is a tensor of its own), dropout on each adapter's input, targets.
  int64_t lora_r = 16;
  double lora_alpha = 32, lora_dropout = 0.05;
  bool rslora = false;
  std::vector<std::string> lora_targets = {"all-linear"};
  int64_t batch = 8, seq = 256;
  Device device = Device::CPU;
  ops::Precision precision = ops::Precision::FP32;
  int64_t baseline_bytes = 0;  // CPU: the process's RSS before the model (0: unknown)
  bool grad_checkpoint = false;  // --grad-checkpoint: each block's input kept, the block recomputed in backward
  int threads = 0;               // CPU threads (0: OpenMP's default), for the GEMM pack buffers
};

struct MemoryEstimate {
  int64_t trainable_params = 0, frozen_params = 0;
  int64_t weights = 0;        // fp32 parameters (QLoRA: NF4 base + constants) and RoPE tables
  int64_t weight_copies = 0;  // bf16 shadows of the weights mixed precision keeps (ops/mixed_precision.h)
  int64_t gradients = 0;      // fp32, trainable tensors only
  int64_t optimizer = 0;      // AdamW m and v, trainable tensors only
  int64_t activations = 0;    // kept for backward at the end of forward, plus backward's largest transient
  int64_t saved_for_backward = 0;  // the first part of `activations`
  int64_t workspace = 0;      // CPU: the GEMM's per-thread pack buffers and QLoRA's dequantization tile
  int64_t baseline = 0;       // CPU: the runtime's own RSS; 0 on CUDA
  int64_t peak_live = 0;      // tensors live at the step's peak (timeline maximum)
  int64_t total = 0;          // the predicted peak_mem_bytes of the run's device
  std::vector<std::string> lora_modules;  // the Linears LoRA adapts (HF module names, deduplicated)
};

// The request a training run makes: the loop's caller_options (batch, seq, and for LoRA
// method, lora_r, lora_alpha, lora_dropout, lora_targets, rslora as sft_run.cpp saves them).
MemoryRequest memory_request_for_run(const nn::ModelConfig& config, const nlohmann::json& caller_options,
                                     Device device, ops::Precision precision);

// Throws sllm::Error with a hint for a request no run could make: batch or seq < 1, seq
// above the context, r <= 0, a LoRA target matching no Linear (the valid names listed),
// bf16/tf32 on the CPU.
MemoryEstimate estimate_memory(const MemoryRequest& request);

// The breakdown table a run prints at its start and `sllm memory` prints, one shared text.
std::string format_memory_table(const MemoryRequest& request, const MemoryEstimate& estimate);
nlohmann::json memory_json(const MemoryRequest& request, const MemoryEstimate& estimate);

}  // namespace sllm::train
