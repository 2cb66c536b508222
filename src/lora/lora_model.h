// A Transformer with LoRA adapters (PEFT's PeftModel, in small): attaches a LoraLayer to
// the Linears an adapter targets, freezes the base, and hands out the adapters' parameters
// under PEFT's tensor names. Several named adapters can be added; one is active (trainable
// and running), the others wait frozen. DisabledScope runs the plain base model (the frozen
// reference of PPO and DPO). merge() folds the active adapter into the base weights.
//
//   lora::LoraModel lora(model);
//   lora.add_adapter("default", cfg);            // base frozen, A/B trainable
//   optim::AdamW opt(to_param_refs(lora.parameters()), ...);
//   { auto off = lora.disabled(); ref = model.forward(ids); }   // base only
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "lora/lora_config.h"
#include "lora/lora_layer.h"
#include "nn/parameter.h"
#include "nn/transformer.h"

namespace sllm::lora {

// PEFT's tensor names (peft/utils/save_and_load.py strips the adapter name on save):
// "base_model.model.<module path>.lora_A.weight" and "….lora_B.weight".
std::string peft_tensor_name(const std::string& module_path, bool is_A);

class LoraModel {
 public:
  // Takes over the model's adapter hooks; the model must outlive this object. Add adapters
  // after model.to(device): A and B are created on the model's device.
  explicit LoraModel(nn::Transformer& model);
  LoraModel(const LoraModel&) = delete;
  LoraModel& operator=(const LoraModel&) = delete;

  // Adds adapter `name` on the Linears cfg selects (select_targets) and makes it active.
  // Every base parameter is frozen (requires_grad = false: no gradient buffer, no weight
  // gradient GEMM, no optimizer state), as PEFT does (bias "none"). A is drawn from cfg.seed
  // (InitA), B is zero.
  void add_adapter(const std::string& name, const LoraConfig& cfg);
  // Makes `name` the adapter that runs and trains; every other adapter's A and B are frozen.
  void set_active(const std::string& name);
  const std::string& active() const { return state_->active; }
  std::vector<std::string> adapter_names() const;
  const LoraConfig& config(const std::string& name) const;
  // The adapted Linears of adapter `name`, in model order.
  std::vector<LoraLayer*> layers(const std::string& name);

  // Adapter `name`'s A and B (of the active one by default) under PEFT's names, in model
  // order, A before B: what the optimizer trains and adapter_model.safetensors holds.
  std::vector<nn::Parameter> parameters(const std::string& name = "");
  int64_t num_parameters(const std::string& name = "");

  // Dropout runs only in training mode; masks change with the step (set once per micro-batch).
  void set_training(bool on) { state_->training = on; }
  void set_dropout_step(uint64_t step) { state_->dropout_step = step; }

  // W += s·B·A on every Linear of the active adapter; forward then skips the adapter path.
  // unmerge() subtracts it again. merged() is true in between.
  void merge();
  void unmerge();
  bool merged() const { return merged_; }

  // While alive, every adapter is off and the model computes its base output. Not while
  // merged (the update is inside W then).
  class DisabledScope {
   public:
    explicit DisabledScope(LoraState& state) : state_(state) { ++state_.disabled; }
    ~DisabledScope() { --state_.disabled; }
    DisabledScope(const DisabledScope&) = delete;
    DisabledScope& operator=(const DisabledScope&) = delete;

   private:
    LoraState& state_;
  };
  [[nodiscard]] std::unique_ptr<DisabledScope> disabled();

  nn::Transformer& model() { return model_; }

 private:
  const std::string& resolve(const std::string& name) const;
  nn::Transformer& model_;
  std::shared_ptr<LoraState> state_;
  std::vector<std::shared_ptr<LoraLayer>> layers_;  // one per Linear that has any adapter
  std::vector<std::pair<std::string, LoraConfig>> configs_;
  bool merged_ = false;
};

}  // namespace sllm::lora
