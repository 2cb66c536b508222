#include "train/lora_run.h"

#include <fstream>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "lora/peft_files.h"

namespace sllm::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

template <class Dims>
std::string shape_text(const Dims& dims) {
  std::string t = "(";
  for (const auto d : dims) t += (t.size() > 1 ? ", " : "") + std::to_string(d);
  return t + ")";
}

}  // namespace

void load_checkpoint_adapter(lora::LoraModel& lora, const fs::path& ckpt) {
  const std::string path = (ckpt / lora::kAdapterWeightsFile).string();
  const io::SafetensorsFile file = io::SafetensorsFile::open(path);
  const std::vector<nn::Parameter> params = lora.parameters();
  const char* hint = "the checkpoint is damaged, or --model is not the base model the run started from";
  SLLM_CHECK(file.entries().size() == params.size(),
             str(path, ": holds ", file.entries().size(), " tensors, the run's adapter has ", params.size()), hint);
  for (const nn::Parameter& p : params) {
    const io::SafetensorsEntry* e = file.find(p.name);
    SLLM_CHECK(e, str(path, ": tensor ", p.name, " is missing"), hint);
    const Shape shape(e->shape.begin(), e->shape.end());
    SLLM_CHECK(e->dtype == "F32" && shape == p.value.shape(),
               str(path, ": tensor ", p.name, " is ", e->dtype, " ", shape_text(e->shape), ", the run's adapter needs F32 ",
                   shape_text(p.value.shape())),
               hint);
    const Tensor src = Tensor::wrap(const_cast<uint8_t*>(e->data), shape, DType::F32, nullptr).clone();
    p.value.copy_from(p.value.device() == Device::CPU ? src : src.to(p.value.device()));
  }
}

std::optional<SavedRun> peek_saved_run(const std::string& run_dir, const std::function<void(const json&)>& parse) {
  try {
    std::ifstream latest(fs::path(run_dir) / "latest");
    std::string name;
    if (!(latest >> name)) return std::nullopt;
    const json state = json::parse(read_file((fs::path(run_dir) / name / "trainer_state.json").string()));
    SavedRun run;
    run.options = state.at("options");
    run.total_steps = state.at("total_steps");
    parse(run.options);
    return run;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace sllm::train
