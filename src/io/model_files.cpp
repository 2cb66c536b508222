#include "io/model_files.h"

#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/gguf_model.h"
#include "io/safetensors.h"
#include "tensor/dtype.h"

namespace sllm::io {

namespace fs = std::filesystem;

namespace {

bool is_ignored_buffer(const std::string& name) {
  auto ends = [&](const std::string& s) { return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0; };
  return ends(".attn.bias") || ends(".attn.masked_bias") || ends("rotary_emb.inv_freq");
}

// GPT-2 checkpoints exist with and without the "transformer." prefix.
std::string canonical_name(const nn::ModelConfig& c, const std::string& name) {
  if (c.family == nn::Family::GPT2 && name.rfind("transformer.", 0) != 0 && name != "lm_head.weight")
    return "transformer." + name;
  return name;
}

// Converts an entry to f32 values in `dst`, transposing a [in, out] Conv1D matrix to (out, in).
void read_entry(const SafetensorsEntry& e, float* dst, int64_t n, bool transpose, int64_t rows, int64_t cols,
                const std::string& where) {
  std::vector<float> tmp;
  float* out = dst;
  if (transpose) {
    tmp.resize(static_cast<size_t>(n));
    out = tmp.data();
  }
  const uint8_t* src = e.data;
  for (int64_t i = 0; i < n; ++i) {
    if (e.dtype == "F32") {
      std::memcpy(&out[i], src + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      out[i] = e.dtype == "BF16" ? bf16_to_f32(h) : f16_to_f32(h);
    }
  }
  if (transpose)  // file: (rows = in, cols = out) → model: (out, in)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = tmp[static_cast<size_t>(r * cols + c)];
  (void)where;
}

// The entry's dtype and shape against what the model needs (`expected`, already in the
// file's [in, out] order for a Conv1D weight).
void check_entry(const SafetensorsEntry& e, const Shape& expected, const std::string& path) {
  SLLM_CHECK(e.dtype == "F32" || e.dtype == "F16" || e.dtype == "BF16",
             str(path, ": tensor '", e.name, "' has dtype ", e.dtype), "model weights must be F32, F16 or BF16");
  SLLM_CHECK(Shape(e.shape.begin(), e.shape.end()) == expected,
             str(path, ": tensor '", e.name, "' has shape ", shape_str(Shape(e.shape.begin(), e.shape.end())),
                 ", the config expects ", shape_str(expected)),
             "config.json and model.safetensors disagree; load the config that came with these weights");
}

}  // namespace

void load_weights(nn::Transformer& model, const std::string& path, const std::map<std::string, Tensor*>& extra) {
  SafetensorsFile file = SafetensorsFile::open(path);
  const nn::ModelConfig& cfg = model.config();
  std::map<std::string, const SafetensorsEntry*> by_name;
  std::map<std::string, const SafetensorsEntry*> extra_entries;  // by their names in the file
  for (const auto& e : file.entries()) {
    if (extra.count(e.name)) {
      extra_entries.emplace(e.name, &e);  // a file's names are unique (safetensors.h checks)
      continue;
    }
    if (is_ignored_buffer(e.name)) continue;
    std::string name = canonical_name(cfg, e.name);
    if (name == "lm_head.weight" && cfg.tie_embeddings) continue;  // tied: the embedding is the head
    // Two spellings of one GPT-2 name ("wte.weight", "transformer.wte.weight") are ambiguous.
    SLLM_CHECK(by_name.emplace(name, &e).second,
               str(path, ": parameter '", name, "' appears twice, as '", by_name.at(name)->name, "' and '", e.name, "'"),
               "keep one copy; GPT-2 names may carry the \"transformer.\" prefix or not, but not both");
  }
  std::set<std::string> used;
  for (auto& prm : model.parameters()) {
    auto it = by_name.find(prm.name);
    SLLM_CHECK(it != by_name.end(), str(path, ": missing tensor '", prm.name, "'"),
               str("the file does not hold a ", cfg.family_name(), " model matching config.json (n_layer, names)"));
    const SafetensorsEntry& e = *it->second;
    Shape expected = prm.value.shape();
    if (prm.conv1d) std::swap(expected[0], expected[1]);  // GPT-2 Conv1D files store [in, out]
    check_entry(e, expected, path);
    read_entry(e, prm.value.mutable_f32(), prm.value.numel(), prm.conv1d, expected[0], prm.conv1d ? expected[1] : 0, path);
    used.insert(prm.name);
  }
  for (const auto& [name, e] : by_name)
    SLLM_CHECK(used.count(name), str(path, ": unexpected tensor '", e->name, "'"),
               str("the file holds parameters this ", cfg.family_name(), " config does not have (wrong config.json?)"));
  for (const auto& [name, dst] : extra) {
    SLLM_ASSERT(dst && dst->defined() && dst->device() == Device::CPU && dst->dtype() == DType::F32);
    const auto it = extra_entries.find(name);
    SLLM_CHECK(it != extra_entries.end(), str(path, ": missing tensor '", name, "'"),
               str("the file holds the ", cfg.family_name(), " model's parameters but not '", name,
                   "', which this model type needs beside them (config.json's architectures name the type)"));
    check_entry(*it->second, dst->shape(), path);
    read_entry(*it->second, dst->mutable_f32(), dst->numel(), false, 0, 0, path);
  }
}

std::unique_ptr<nn::Transformer> load_model(const std::string& dir) {
  if (is_gguf_file(dir)) return load_gguf_model(dir);
  SLLM_CHECK(fs::is_directory(dir), str("model directory '", dir, "' does not exist"),
             "pass a directory with config.json and model.safetensors (e.g. a run's ckpt-<step>)");
  const fs::path weights = fs::path(dir) / "model.safetensors";
  SLLM_CHECK(fs::exists(fs::path(dir) / "config.json"), str("'", dir, "' has no config.json"), "a model directory holds config.json and model.safetensors");
  SLLM_CHECK(fs::exists(weights), str("'", dir, "' has no model.safetensors"), "a model directory holds config.json and model.safetensors");
  // A quantized directory (bitsandbytes' 4-bit layout, src/quant/bnb_files.h) holds u8 codes
  // and quant states under the weights' names: io sits below quant, so it refuses by name
  // rather than misreading them.
  const nlohmann::json config = nlohmann::json::parse(read_file((fs::path(dir) / "config.json").string()), nullptr, false);
  SLLM_CHECK(!(config.is_object() && config.contains("quantization_config") && !config["quantization_config"].is_null()),
             str("'", dir, "' holds a quantized model (config.json has quantization_config)"),
             "load it with quant::load_model (src/quant/bnb_files.h), as sllm's commands do");
  // load_weights sets every parameter (a missing tensor is an error), so no random init.
  auto model = std::make_unique<nn::Transformer>(nn::load_config(dir), nn::ParamInit::Zeros);
  load_weights(*model, weights.string());
  return model;
}

void save_weights(const nn::Transformer& model, const std::string& path,
                  const std::vector<std::pair<std::string, Tensor>>& extra, const std::map<std::string, Tensor>& replaced) {
  SafetensorsWriter writer;
  std::vector<std::vector<float>> transposed;  // Conv1D copies kept alive until write
  std::vector<Tensor> host;                     // host copies of GPU tensors, likewise
  transposed.reserve(model.parameters().size());
  host.reserve(model.parameters().size() + extra.size());
  size_t replacements = 0;
  for (const auto& prm : model.parameters()) {
    const auto it = replaced.find(prm.name);
    replacements += it != replaced.end();
    const Tensor& value = host.emplace_back((it != replaced.end() ? it->second : prm.value).to(Device::CPU));  // no copy on the CPU
    SLLM_ASSERT(value.shape() == prm.value.shape() && value.dtype() == DType::F32);
    const Shape& s = value.shape();
    if (prm.conv1d) {
      const int64_t rows = s[0], cols = s[1];  // (out, in) → file [in, out]
      std::vector<float> t(static_cast<size_t>(rows * cols));
      const float* w = value.f32();
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) t[static_cast<size_t>(c * rows + r)] = w[r * cols + c];
      transposed.push_back(std::move(t));
      writer.add(prm.name, "F32", {cols, rows}, transposed.back().data(), transposed.back().size() * 4);
    } else {
      writer.add(prm.name, "F32", std::vector<int64_t>(s.begin(), s.end()), value.f32(), value.nbytes());
    }
  }
  SLLM_ASSERT(replacements == replaced.size());  // every replaced name is a parameter's
  for (const auto& [name, tensor] : extra) {
    const Tensor& value = host.emplace_back(tensor.to(Device::CPU));
    SLLM_ASSERT(value.dtype() == DType::F32);
    const Shape& s = value.shape();
    writer.add(name, "F32", std::vector<int64_t>(s.begin(), s.end()), value.f32(), value.nbytes());
  }
  writer.set_metadata("format", "pt");  // what transformers expects in safetensors metadata
  writer.write(path);
}

void save_config(const nn::ModelConfig& config, const std::string& path) {
  write_file_atomic(path, nn::config_to_json(config).dump(2) + "\n");
}

void save_model(const nn::Transformer& model, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  SLLM_CHECK(!ec, str("cannot create model directory '", dir, "': ", ec.message()), "check the path and permissions");
  save_config(model.config(), (fs::path(dir) / "config.json").string());
  save_weights(model, (fs::path(dir) / "model.safetensors").string());
}

}  // namespace sllm::io
