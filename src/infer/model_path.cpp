#include "infer/model_path.h"

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"

namespace sllm::infer {

namespace fs = std::filesystem;

std::string resolve_model_dir(const std::string& model_or_run) {
  const std::string hint =
      "pass a model directory (config.json + model.safetensors) or a run directory of `sllm pretrain` (with a 'latest' file)";
  const fs::path dir(model_or_run);
  SLLM_CHECK(!model_or_run.empty(), "--model is empty", hint);
  SLLM_CHECK(fs::is_directory(dir), str("'", model_or_run, "' is not a directory"), hint);
  if (fs::is_regular_file(dir / "config.json")) return dir.string();
  const fs::path latest = dir / "latest";
  SLLM_CHECK(fs::is_regular_file(latest), str("'", model_or_run, "' holds neither config.json nor a 'latest' file"), hint);
  std::string name = read_file(latest.string());
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' ')) name.pop_back();
  SLLM_CHECK(!name.empty(), str(latest.string(), " is empty"), "it should name the newest checkpoint, e.g. ckpt-200");
  const fs::path ckpt = dir / name;
  SLLM_CHECK(fs::is_regular_file(ckpt / "config.json"),
             str(latest.string(), " names '", name, "', but ", ckpt.string(), " holds no config.json"),
             "fix the 'latest' file so it names an existing ckpt-<step> directory, or pass that directory itself");
  return ckpt.string();
}

}  // namespace sllm::infer
