#include "lora/peft_files.h"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/safetensors.h"

namespace sllm::lora {

namespace fs = std::filesystem;
using nlohmann::json;

static std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

void save_adapter(LoraModel& lora, const std::string& dir, const std::string& base_model_name_or_path,
                  const std::string& name) {
  const LoraConfig& cfg = lora.config(name);
  const std::vector<LoraLayer*> layers = lora.layers(name);
  bool conv1d = false;
  std::vector<nn::Linear*> bases;
  for (LoraLayer* l : layers) {
    conv1d = conv1d || l->base().conv1d();
    bases.push_back(&l->base());
  }
  json config = {
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"r", cfg.r},
      {"lora_alpha", cfg.lora_alpha},
      {"lora_dropout", cfg.lora_dropout},
      {"use_rslora", cfg.use_rslora},
      {"fan_in_fan_out", conv1d},
      {"bias", "none"},
      {"base_model_name_or_path", base_model_name_or_path},
      {"inference_mode", true},
      {"init_lora_weights", cfg.init_a == InitA::Gaussian ? json("gaussian") : json(true)},
      {"modules_to_save", nullptr},
      {"use_dora", false},
  };
  // PEFT writes the user's list as given, a regex as a string, and "all-linear" expanded to
  // the module names it found (tuners_utils.py, _maybe_include_all_linear_layers).
  if (!cfg.target_regex.empty())
    config["target_modules"] = cfg.target_regex;
  else if (cfg.target_modules.size() == 1 && cfg.target_modules[0] == "all-linear")
    config["target_modules"] = module_names(bases);
  else
    config["target_modules"] = cfg.target_modules;

  // Host copies of A and B (the model may be on a GPU); they stay alive until write().
  std::vector<Tensor> host;
  io::SafetensorsWriter writer;
  writer.set_metadata("format", "pt");
  for (const nn::Parameter& p : lora.parameters(name)) {
    host.push_back(p.value.device() == Device::CPU ? p.value : p.value.to(Device::CPU));
    const Tensor& t = host.back();
    writer.add(p.name, "F32", std::vector<int64_t>(t.shape().begin(), t.shape().end()), t.raw(), t.nbytes());
  }
  fs::create_directories(dir);
  writer.write((fs::path(dir) / kAdapterWeightsFile).string());
  write_file_atomic((fs::path(dir) / kAdapterConfigFile).string(), config.dump(2) + "\n");
}

LoraConfig read_adapter_config(const std::string& dir) {
  const std::string path = (fs::path(dir) / kAdapterConfigFile).string();
  json j;
  try {
    j = json::parse(read_file(path));
  } catch (const json::parse_error& e) {
    fail(str(path, ": not valid JSON (", e.what(), ")"), "adapter_config.json is written by PEFT's save_pretrained");
  }
  auto get = [&](const char* key, auto fallback) {
    using T = decltype(fallback);
    if (!j.contains(key) || j[key].is_null()) return fallback;
    try {
      return j[key].get<T>();
    } catch (const json::exception&) {
      fail(str(path, ": '", key, "' has the wrong type (", j[key].dump(), ")"), "compare with PEFT's LoraConfig");
    }
  };
  const std::string peft_type = get("peft_type", std::string());
  SLLM_CHECK(peft_type == "LORA", str(path, ": peft_type is '", peft_type, "'"), "sllm reads LoRA adapters only");
  const std::string bias = get("bias", std::string("none"));
  SLLM_CHECK(bias == "none", str(path, ": bias is '", bias, "'"), "sllm's LoRA trains no biases: use bias \"none\"");
  SLLM_CHECK(!get("use_dora", false), str(path, ": use_dora is true"), "DoRA adapters are not supported");
  for (const char* unsupported : {"rank_pattern", "alpha_pattern"})
    SLLM_CHECK(!j.contains(unsupported) || j[unsupported].is_null() || j[unsupported].empty(),
               str(path, ": ", unsupported, " is set"), "per-module ranks and alphas are not supported");
  for (const char* unsupported : {"modules_to_save", "layers_to_transform"})
    SLLM_CHECK(!j.contains(unsupported) || j[unsupported].is_null() || j[unsupported].empty(),
               str(path, ": ", unsupported, " is set"), "adapters with extra trained modules or layer subsets are not supported");

  LoraConfig cfg;
  SLLM_CHECK(j.contains("r"), str(path, ": no 'r'"), "an adapter config names its rank r");
  cfg.r = get("r", int64_t{0});
  cfg.lora_alpha = get("lora_alpha", static_cast<float>(cfg.r));
  cfg.lora_dropout = get("lora_dropout", 0.0f);
  cfg.use_rslora = get("use_rslora", false);
  const json targets = j.contains("target_modules") ? j["target_modules"] : json();
  if (targets.is_string()) {
    const std::string t = targets.get<std::string>();
    if (t == "all-linear")
      cfg.target_modules = {t};
    else
      cfg.target_regex = t;  // PEFT: a string is a regex over the full module path
  } else if (targets.is_array() && !targets.empty()) {
    cfg.target_modules = targets.get<std::vector<std::string>>();
  } else {
    fail(str(path, ": target_modules is ", targets.dump()), "it lists the adapted module names (e.g. [\"q_proj\", \"v_proj\"])");
  }
  if (j.contains("init_lora_weights") && j["init_lora_weights"] == "gaussian") cfg.init_a = InitA::Gaussian;
  check_config(cfg);
  return cfg;
}

static Tensor entry_as_f32(const io::SafetensorsEntry& e) {
  const DType dt = e.dtype == "F32" ? DType::F32 : e.dtype == "BF16" ? DType::BF16 : e.dtype == "F16" ? DType::F16 : DType::U8;
  SLLM_CHECK(dt != DType::U8, str("adapter tensor ", e.name, " has dtype ", e.dtype), "LoRA weights must be F32, BF16 or F16");
  const Tensor view = Tensor::wrap(const_cast<uint8_t*>(e.data), Shape(e.shape.begin(), e.shape.end()), dt, nullptr);
  return dt == DType::F32 ? view.clone() : view.to(DType::F32);
}

void load_adapter(LoraModel& lora, const std::string& dir, const std::string& name) {
  const LoraConfig cfg = read_adapter_config(dir);
  // Check everything before touching the model: the targets first (a config for another
  // family fails here, listing this model's module names), then every tensor.
  const std::vector<nn::Linear*> targets = select_targets(lora.model(), cfg);
  const std::string path = (fs::path(dir) / kAdapterWeightsFile).string();
  const io::SafetensorsFile file = io::SafetensorsFile::open(path);
  std::map<std::string, Tensor> loaded;  // PEFT name -> f32 host tensor
  for (nn::Linear* l : targets) {
    for (bool is_A : {true, false}) {
      const std::string tname = peft_tensor_name(l->path(), is_A);
      const std::vector<int64_t> want =
          is_A ? std::vector<int64_t>{cfg.r, l->in_features()} : std::vector<int64_t>{l->out_features(), cfg.r};
      const io::SafetensorsEntry* e = file.find(tname);
      SLLM_CHECK(e, str(path, ": tensor ", tname, " is missing"),
                 "the file does not match its adapter_config.json, or was made for another base model");
      SLLM_CHECK(e->shape == want,
                 str(path, ": tensor ", tname, " has shape ", shape_text(e->shape), " but this model needs ",
                     shape_text(want)),
                 "the adapter was made for another base model (or another r): load it onto the model it was trained on");
      loaded.emplace(tname, entry_as_f32(*e));
    }
  }
  // Nothing may be left over: an embedding adapter, a trained module or a Linear this model
  // lacks would otherwise be dropped without a word.
  for (const io::SafetensorsEntry& e : file.entries()) {
    SLLM_CHECK(loaded.count(e.name),
               str(path, ": tensor ", e.name, " belongs to no adapted Linear of this model"),
               "the adapter was made for another base model, or its target_modules do not match its tensors");
  }

  lora.add_adapter(name, cfg);
  for (const nn::Parameter& p : lora.parameters(name)) {
    const Tensor& src = loaded.at(p.name);
    p.value.copy_from(p.value.device() == Device::CPU ? src : src.to(p.value.device()));
  }
}

}  // namespace sllm::lora
