#include "nn/transformer.h"

#include <cmath>

#include "autograd/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "nn/gpt2.h"
#include "nn/llama.h"
#include "ops/ops.h"

namespace sllm::nn {

std::unique_ptr<Trunk> make_trunk(const ModelConfig& config) {
  if (config.family == Family::GPT2) return std::make_unique<GPT2Trunk>(config);
  return std::make_unique<LlamaTrunk>(config);
}

Transformer::Transformer(const ModelConfig& config, ParamInit param_init) : config_(config) {
  config_.validate();
  trunk_ = make_trunk(config_);
  if (config_.family == Family::Llama && !config_.tie_embeddings)
    lm_head_ = std::make_unique<Linear>("lm_head", config_.n_embd, config_.vocab_size, /*bias=*/false, /*conv1d=*/false);
  refresh_parameters();
  if (param_init == ParamInit::Random) init(0);  // else the zeros new_parameter made
}

Transformer::~Transformer() = default;
Transformer::Transformer(Transformer&&) noexcept = default;
Transformer& Transformer::operator=(Transformer&&) noexcept = default;

void Transformer::refresh_parameters() {
  params_.clear();
  const_params_.clear();
  trunk_->append_parameters(params_);
  if (lm_head_) lm_head_->append_parameters(params_);
  for (const Parameter& p : params_) const_params_.push_back({p.name, p.value, p.conv1d});
}

int64_t Transformer::packed_bytes() {
  int64_t total = 0;
  for (Linear* linear : linears())
    if (linear->is_packed()) total += linear->packed_weight()->nbytes();
  return total;
}

Tensor& Transformer::param(const std::string& name) {
  for (const Parameter& p : params_)
    if (p.name == name) return p.value;
  fail(str("model has no parameter '", name, "'"), "parameter names follow Hugging Face (e.g. transformer.h.0.ln_1.weight)");
}

std::vector<Linear*> Transformer::linears() {
  std::vector<Linear*> out;
  trunk_->append_linears(out);
  return out;
}

Linear* Transformer::find_linear(const std::string& path) {
  for (Linear* linear : linears())
    if (linear->path() == path) return linear;
  return nullptr;
}

void Transformer::set_trainable(bool on) {
  for (const Parameter& p : params_) p.value.set_requires_grad(on);
}

static bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void Transformer::init(uint64_t seed) {
  SLLM_CHECK(device_ == Device::CPU, "Transformer::init on a model already moved to a GPU",
             "initialize (or load weights) on the CPU, then call model.to(device)");
  // One generator walks the parameters in file order, so a seed gives the same weights as
  // long as the order (which the files fix) stays.
  Rng rng(seed);
  const float std_base = 0.02f;
  const float std_resid = std_base / std::sqrt(2.0f * static_cast<float>(config_.n_layer));
  for (const Parameter& prm : params_) {
    float* w = prm.value.mutable_f32();
    const int64_t n = prm.value.numel();
    const std::string& name = prm.name;
    const bool is_norm = name.find("ln_") != std::string::npos || name.find("layernorm") != std::string::npos ||
                         name == "model.norm.weight";
    if (is_norm && ends_with(name, ".weight")) {
      for (int64_t i = 0; i < n; ++i) w[i] = 1.0f;
    } else if (ends_with(name, ".bias")) {
      for (int64_t i = 0; i < n; ++i) w[i] = 0.0f;
    } else {
      const bool residual = ends_with(name, "attn.c_proj.weight") || ends_with(name, "mlp.c_proj.weight") ||
                            ends_with(name, "o_proj.weight") || ends_with(name, "down_proj.weight");
      const float std = residual ? std_resid : std_base;
      for (int64_t i = 0; i < n; ++i) w[i] = static_cast<float>(rng.normal()) * std;
    }
  }
}

void Transformer::set_compute_dtype(DType dtype) {
  SLLM_CHECK(dtype == DType::F32 || dtype == DType::BF16,
             str("compute dtype ", dtype_name(dtype), " is not supported"), "use f32, or bf16 on CUDA");
  SLLM_CHECK(dtype == DType::F32 || device_ == Device::CUDA,
             str("bf16 mixed precision needs the model on CUDA, it is on ", device_name(device_)),
             "call model.to(Device::CUDA) first, or keep f32 (--precision fp32) on the CPU");
  compute_dtype_ = dtype;
}

void Transformer::set_gradient_checkpointing(bool on) { trunk_->checkpoint_blocks = on; }
bool Transformer::gradient_checkpointing() const { return trunk_->checkpoint_blocks; }

void Transformer::to(Device device) {
  if (device == device_) return;
  for (const Parameter& p : params_) {
    const bool trainable = p.value.requires_grad();
    Tensor moved = p.value.detach().to(device);
    moved.set_name(p.name).set_requires_grad(trainable);
    p.value = moved;  // replaces the module's tensor
  }
  for (Linear* linear : linears())
    if (linear->is_packed()) linear->set_packed_weight(linear->packed_weight()->to(device));
  for (Tensor* buffer : trunk_->buffers()) *buffer = buffer->to(device);
  device_ = device;
}

KVCache Transformer::make_cache(int64_t batch, int64_t length) const {
  SLLM_CHECK(length >= 0 && length <= config_.n_ctx, str("KV cache of ", length, " positions for a context of ", config_.n_ctx),
             "ask for at most n_ctx positions (0 = n_ctx)");
  const int64_t T = length > 0 ? length : config_.n_ctx;
  KVCache cache;
  cache.batch = batch;
  const int64_t kvC = config_.n_kv_head * config_.head_dim();
  for (int64_t l = 0; l < config_.n_layer; ++l) {
    // The compute dtype: bf16 keys and values under mixed precision on CUDA (half the bytes
    // each decoding step reads), f32 otherwise.
    cache.k.push_back(Tensor::zeros({batch, T, kvC}, compute_dtype_, device_));
    cache.v.push_back(Tensor::zeros({batch, T, kvC}, compute_dtype_, device_));
  }
  return cache;
}

Tensor Transformer::hidden(const Tensor& ids, KVCache* cache) {
  check_ndim(ids, 2, "model input ids (B, T)");
  check_dtype(ids, DType::I32, "model input ids");
  const int64_t B = ids.dim(0), T = ids.dim(1);
  const int64_t pos0 = cache ? cache->length : 0;
  SLLM_CHECK(T > 0, "model forward: empty input sequence", "pass at least one token");
  if (cache && cache->ragged()) {
    SLLM_CHECK(static_cast<int64_t>(cache->row_length.size()) == B,
               str("ragged KV cache: ", cache->row_length.size(), " row lengths for a batch of ", B), "one length per row");
    if (cache->row_new.empty()) cache->row_new.assign(size_t(B), T);
    SLLM_CHECK(static_cast<int64_t>(cache->row_new.size()) == B,
               str("ragged KV cache: ", cache->row_new.size(), " new-token counts for a batch of ", B), "one count per row");
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = cache->row_length[size_t(b)], n = cache->row_new[size_t(b)];
      SLLM_CHECK(n >= 0 && n <= T, str("ragged KV cache: row ", b, " has ", n, " new tokens of ", T), "0 <= row_new <= T");
      SLLM_CHECK(len >= 0 && len + n <= config_.n_ctx,
                 str("row ", b, ": sequence of ", len + n, " tokens exceeds the model's context of ", config_.n_ctx),
                 "use a shorter prompt, or fewer --max-new-tokens");
      SLLM_CHECK(len + n <= cache->k.front().dim(1),
                 str("row ", b, ": sequence of ", len + n, " tokens exceeds the KV cache's ", cache->k.front().dim(1)),
                 "make_cache(batch, length) with room for the prompt and every new token");
    }
  } else {
    SLLM_CHECK(pos0 + T <= config_.n_ctx,
               str("sequence of ", pos0 + T, " tokens exceeds the model's context of ", config_.n_ctx),
               "use a shorter --seq / prompt, or fewer --max-new-tokens");
    SLLM_CHECK(!cache || pos0 + T <= cache->k.front().dim(1),
               str("sequence of ", pos0 + T, " tokens exceeds the KV cache's ", cache->k.front().dim(1)),
               "make_cache(batch, length) with room for the prompt and every new token");
  }
  if (cache) {
    SLLM_CHECK(cache->batch == B, str("KV cache was made for batch ", cache->batch, ", got ", B), "make_cache(B) with the same batch");
    SLLM_CHECK(!autograd::grad_enabled(), "the KV cache is for inference", "wrap generation in autograd::NoGradGuard");
    SLLM_CHECK(cache->k.front().dtype() == compute_dtype_,
               str("the KV cache holds ", dtype_name(cache->k.front().dtype()), " keys and values, the model computes in ",
                   dtype_name(compute_dtype_)),
               "make the cache after set_compute_dtype: make_cache uses the compute dtype");
    SLLM_CHECK(compute_dtype_ == DType::F32 || cache->ragged(), "a bf16 KV cache needs the ragged (per-row) layout",
               "set cache.row_length (one entry per row), as infer::generate_batch does");
  }
  SLLM_CHECK(compute_dtype_ == DType::F32 || device_ == Device::CUDA, "bf16 compute with the model on the CPU",
             "move the model back with to(Device::CUDA), or set_compute_dtype(DType::F32)");
  Tensor h = trunk_->forward(ids, cache, compute_dtype_);
  if (cache && cache->ragged()) {
    for (size_t b = 0; b < cache->row_length.size(); ++b) cache->row_length[b] += cache->row_new[b];
    cache->row_new.clear();
  } else if (cache) {
    cache->length += T;
  }
  return h;
}

Tensor& Transformer::lm_head_weight() { return lm_head_ ? lm_head_->weight() : trunk_->token_embedding().weight(); }

Tensor Transformer::forward(const Tensor& ids, KVCache* cache) { return ops::linear(hidden(ids, cache), lm_head_weight()); }

Tensor Transformer::loss(const Tensor& ids, const Tensor& targets, int32_t ignore_index) {
  return ops::linear_cross_entropy(hidden(ids), lm_head_weight(), targets, ignore_index);
}

}  // namespace sllm::nn
