#include "lora/lora_model.h"

#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace sllm::lora {

std::string peft_tensor_name(const std::string& module_path, bool is_A) {
  return "base_model.model." + module_path + (is_A ? ".lora_A.weight" : ".lora_B.weight");
}

LoraModel::LoraModel(nn::Transformer& model) : model_(model), state_(std::make_shared<LoraState>()) {
  for (nn::Linear* l : model_.linears())
    SLLM_CHECK(!l->adapter(), str(l->path(), " already carries an adapter"),
               "build one LoraModel per model and add every adapter to it");
}

// PEFT initializes A with nn.init.kaiming_uniform_(a=sqrt(5)) (peft/tuners/lora/layer.py,
// LoraLayer.reset_lora_parameters): gain = sqrt(2 / (1 + a²)) = sqrt(1/3), bound =
// gain·sqrt(3 / fan_in) = 1/sqrt(in) for A (R, in); "gaussian" is normal_(std = 1/r). B = 0.
static Tensor init_A(int64_t r, int64_t in, InitA how, Rng& rng) {
  Tensor A = Tensor::empty({r, in});
  float* a = A.mutable_f32();
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  for (int64_t i = 0; i < r * in; ++i)
    a[i] = how == InitA::KaimingUniform ? static_cast<float>((2.0 * rng.uniform_double() - 1.0) * bound)
                                        : static_cast<float>(rng.normal() / static_cast<double>(r));
  return A;
}

void LoraModel::add_adapter(const std::string& name, const LoraConfig& cfg) {
  SLLM_CHECK(!name.empty(), "an empty LoRA adapter name", "name it, e.g. 'default' as PEFT does");
  for (const auto& [n, c] : configs_)
    SLLM_CHECK(n != name, str("a LoRA adapter named '", name, "' already exists"), "pick another name");
  SLLM_CHECK(!merged_, str("adding adapter '", name, "' while '", state_->active, "' is merged"), "unmerge first");
  const float scale = lora_scale(cfg);
  const std::vector<nn::Linear*> targets = select_targets(model_, cfg);

  model_.set_trainable(false);  // the frozen base (PEFT: _mark_only_adapters_as_trainable)
  Rng rng(cfg.seed);
  uint64_t dropout_seeds = cfg.seed ^ 0xD0D0D0D0D0D0D0D0ull;
  for (nn::Linear* l : targets) {
    auto layer = std::dynamic_pointer_cast<LoraLayer>(l->adapter());
    if (!layer) {
      layer = std::make_shared<LoraLayer>(*l, state_);
      l->set_adapter(layer);
      layers_.push_back(layer);
    }
    AdapterWeights w;
    w.A = init_A(cfg.r, l->in_features(), cfg.init_a, rng);
    w.B = Tensor::zeros({l->out_features(), cfg.r});
    if (model_.device() != Device::CPU) {
      w.A = w.A.to(model_.device());
      w.B = w.B.to(model_.device());
    }
    w.A.set_name(peft_tensor_name(l->path(), true));
    w.B.set_name(peft_tensor_name(l->path(), false));
    w.scale = scale;
    w.dropout = cfg.lora_dropout;
    w.dropout_seed = splitmix64(dropout_seeds);
    layer->adapters().emplace(name, std::move(w));
  }
  configs_.emplace_back(name, cfg);
  set_active(name);
}

const std::string& LoraModel::resolve(const std::string& name) const {
  const std::string& n = name.empty() ? state_->active : name;
  for (const auto& [known, c] : configs_)
    if (known == n) return known;
  fail(str("no LoRA adapter named '", n, "'"), "add_adapter or load_adapter it first");
}

void LoraModel::set_active(const std::string& name) {
  const std::string& n = resolve(name);
  SLLM_CHECK(!merged_, str("switching to adapter '", n, "' while '", state_->active, "' is merged"), "unmerge first");
  state_->active = n;
  for (auto& layer : layers_)
    for (auto& [adapter, w] : layer->adapters()) {
      w.A.set_requires_grad(adapter == n);
      w.B.set_requires_grad(adapter == n);
    }
}

std::vector<std::string> LoraModel::adapter_names() const {
  std::vector<std::string> out;
  for (const auto& [n, c] : configs_) out.push_back(n);
  return out;
}

const LoraConfig& LoraModel::config(const std::string& name) const {
  const std::string& n = resolve(name);
  for (const auto& [known, c] : configs_)
    if (known == n) return c;
  SLLM_ASSERT(false);
}

std::vector<LoraLayer*> LoraModel::layers(const std::string& name) {
  const std::string& n = resolve(name);
  std::vector<LoraLayer*> out;
  for (auto& layer : layers_)
    if (layer->adapters().count(n)) out.push_back(layer.get());
  return out;
}

std::vector<nn::Parameter> LoraModel::parameters(const std::string& name) {
  std::vector<nn::Parameter> out;
  const std::string n = resolve(name);
  for (LoraLayer* layer : layers(n)) {
    AdapterWeights& w = layer->adapters().at(n);
    out.push_back({w.A.name(), w.A, false});
    out.push_back({w.B.name(), w.B, false});
  }
  return out;
}

int64_t LoraModel::num_parameters(const std::string& name) {
  int64_t total = 0;
  for (const nn::Parameter& p : parameters(name)) total += p.value.numel();
  return total;
}

void LoraModel::merge() {
  SLLM_CHECK(!merged_, str("adapter '", state_->active, "' is already merged"), "unmerge() before merging again");
  const std::string n = resolve("");
  for (LoraLayer* layer : layers(n)) layer->merge(n);
  merged_ = true;
}

void LoraModel::unmerge() {
  if (!merged_) return;
  for (auto& layer : layers_) layer->unmerge();
  merged_ = false;
}

std::unique_ptr<LoraModel::DisabledScope> LoraModel::disabled() {
  SLLM_CHECK(!merged_, str("disabling adapters while '", state_->active, "' is merged into the base weights"),
             "unmerge() first: a merged update cannot be switched off");
  return std::make_unique<DisabledScope>(*state_);
}

}  // namespace sllm::lora
