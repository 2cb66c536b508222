#include "infer/model_path.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/gguf_model.h"

namespace sllm::infer {

namespace fs = std::filesystem;

// RUN/latest's checkpoint name, trailing whitespace trimmed.
static std::string latest_name(const fs::path& latest) {
  std::string name = read_file(latest.string());
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' ')) name.pop_back();
  SLLM_CHECK(!name.empty(), str(latest.string(), " is empty"), "it should name the newest checkpoint, e.g. ckpt-200");
  return name;
}

std::string resolve_model_dir(const std::string& model_or_run) {
  const std::string hint =
      "pass a model directory (config.json + model.safetensors), a .gguf file, or a run directory of `sllm pretrain` (with a "
      "'latest' file)";
  const fs::path dir(model_or_run);
  SLLM_CHECK(!model_or_run.empty(), "--model is empty", hint);
  if (io::is_gguf_file(model_or_run)) return model_or_run;
  SLLM_CHECK(fs::is_directory(dir), str("'", model_or_run, "' is not a directory"), hint);
  if (fs::is_regular_file(dir / "config.json")) return dir.string();
  const std::string adapter_hint = str("a LoRA adapter goes to --adapter ", model_or_run, ", with its base model as --model");
  SLLM_CHECK(!fs::is_regular_file(dir / "adapter_config.json"),
             str("'", model_or_run, "' is a LoRA adapter (adapter_config.json), not a model"), adapter_hint);
  const fs::path latest = dir / "latest";
  SLLM_CHECK(fs::is_regular_file(latest), str("'", model_or_run, "' holds neither config.json nor a 'latest' file"), hint);
  const std::string name = latest_name(latest);
  const fs::path ckpt = dir / name;
  SLLM_CHECK(!fs::is_regular_file(ckpt / "adapter_config.json"),
             str("'", model_or_run, "' is a run of `sllm sft --method lora`: its checkpoints hold adapters, not models"),
             adapter_hint);
  SLLM_CHECK(fs::is_regular_file(ckpt / "config.json"),
             str(latest.string(), " names '", name, "', but ", ckpt.string(), " holds no config.json"),
             "fix the 'latest' file so it names an existing ckpt-<step> directory, or pass that directory itself");
  return ckpt.string();
}

std::string resolve_adapter_dir(const std::string& adapter_or_run) {
  const std::string hint =
      "pass a PEFT adapter directory (adapter_config.json + adapter_model.safetensors) or a run directory of "
      "`sllm sft --method lora`";
  const fs::path dir(adapter_or_run);
  SLLM_CHECK(!adapter_or_run.empty(), "--adapter is empty", hint);
  SLLM_CHECK(fs::is_directory(dir), str("adapter '", adapter_or_run, "' is not a directory"), hint);
  if (fs::is_regular_file(dir / "adapter_config.json")) return dir.string();
  SLLM_CHECK(!fs::is_regular_file(dir / "config.json"),
             str("'", adapter_or_run, "' is a model directory (config.json), not a LoRA adapter"),
             "pass it as --model; --adapter takes what `sllm sft --method lora` writes");
  const fs::path latest = dir / "latest";
  SLLM_CHECK(fs::is_regular_file(latest), str("'", adapter_or_run, "' holds neither adapter_config.json nor a 'latest' file"),
             hint);
  const std::string name = latest_name(latest);
  const fs::path ckpt = dir / name;
  if (fs::is_regular_file(ckpt / "adapter_config.json")) return ckpt.string();
  SLLM_CHECK(!fs::is_regular_file(ckpt / "config.json"),
             str("'", adapter_or_run, "' is a run of full models: ", ckpt.string(), " holds a model, not an adapter"),
             str("pass it as --model ", adapter_or_run, " (without --adapter)"));
  fail(str(latest.string(), " names '", name, "', but ", ckpt.string(), " holds no adapter_config.json"),
       "fix the 'latest' file so it names an existing ckpt-<step> directory, or pass that directory itself");
}

std::string adapter_base_model_dir(const std::string& adapter_dir) {
  const std::string path = (fs::path(adapter_dir) / "adapter_config.json").string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail(str(path, ": not valid JSON (", e.what(), ")"), "adapter_config.json is written by PEFT's save_pretrained");
  }
  if (!j.is_object() || !j.contains("base_model_name_or_path") || !j["base_model_name_or_path"].is_string()) return "";
  const std::string base = j["base_model_name_or_path"].get<std::string>();
  std::error_code ec;
  return !base.empty() && (fs::is_directory(base, ec) || io::is_gguf_file(base)) ? base : "";
}

}  // namespace sllm::infer
