#include "quant/bnb_files.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/gguf_model.h"
#include "io/model_files.h"
#include "io/safetensors.h"
#include "quant/quantized_weight.h"
#include "tensor/dtype.h"

namespace sllm::quant {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* const kStatePrefix = ".quant_state.bitsandbytes__";

// Python's repr of a float (what json.dumps writes for QuantState's nested_offset): the
// shortest digits that read back to the same double, in fixed notation when the decimal
// exponent e satisfies -5 < e < 16, else d.ddde±XX (CPython's float_repr_style "short",
// Objects/floatobject.c and Python/pystrtod.c format_float_short).
std::string python_float_repr(double v) {
  if (v == 0.0) return std::signbit(v) ? "-0.0" : "0.0";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);  // shortest
  std::string sci(buf, res.ptr);
  const size_t epos = sci.find('e');
  const int e = std::stoi(sci.substr(epos + 1));
  std::string mant = sci.substr(0, epos), sign;
  if (mant[0] == '-') {
    sign = "-";
    mant.erase(0, 1);
  }
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  if (e <= -5 || e >= 16) {
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    const int a = std::abs(e);
    return out + (e < 0 ? "e-" : "e+") + (a < 10 ? "0" : "") + std::to_string(a);
  }
  if (e < 0) return sign + "0." + std::string(size_t(-e - 1), '0') + digits;
  const size_t point = size_t(e) + 1;
  if (digits.size() <= point) return sign + digits + std::string(point - digits.size(), '0') + ".0";
  return sign + digits.substr(0, point) + "." + digits.substr(point);
}

// DIR/config.json parsed (sllm::Error naming the file when it is not JSON).
json read_config_json(const std::string& dir) {
  const fs::path p = fs::path(dir) / "config.json";
  const json j = json::parse(read_file(p.string()), nullptr, /*allow_exceptions=*/false);
  SLLM_CHECK(!j.is_discarded() && j.is_object(), str(p.string(), " is not a JSON object"),
             "fix or regenerate config.json");
  return j;
}

// A key of quantization_config, or `fallback` when it is absent. A value of another type
// (e.g. "load_in_4bit": "yes") is a sllm::Error naming the key, not a bare JSON exception.
template <typename T>
T config_value(const json& q, const char* key, T fallback, const std::string& where) {
  if (!q.contains(key) || q[key].is_null()) return fallback;
  try {
    return q[key].get<T>();
  } catch (const json::exception&) {
    fail(str(where, ": quantization_config's \"", key, "\" is ", q[key].dump()), "fix or regenerate config.json");
  }
}

// quantization_config must describe bitsandbytes' 4-bit scheme; anything else is refused
// by name rather than misread.
void check_quantization_config(const json& j, const std::string& where) {
  const json& q = j["quantization_config"];
  SLLM_CHECK(q.is_object(), str(where, ": quantization_config is not an object"), "fix or regenerate config.json");
  const std::string method = config_value<std::string>(q, "quant_method", "?", where);
  SLLM_CHECK(method == "bitsandbytes",
             str(where, ": the model is quantized with '", method, "'"),
             "sllm reads bitsandbytes 4-bit models (NF4 / FP4); use the unquantized model, or re-quantize it "
             "with `sllm quantize`");
  // transformers writes both spellings (BitsAndBytesConfig keeps _load_in_4bit as the field
  // behind the load_in_4bit property); older files have only the public one.
  const bool four = config_value<bool>(q, "load_in_4bit", config_value<bool>(q, "_load_in_4bit", false, where), where);
  const bool eight = config_value<bool>(q, "load_in_8bit", config_value<bool>(q, "_load_in_8bit", false, where), where);
  SLLM_CHECK(four && !eight,
             str(where, ": the model is bitsandbytes ", eight ? "8-bit (LLM.int8)" : "without load_in_4bit"),
             "sllm reads bitsandbytes 4-bit models only (load_in_4bit); quantize the unquantized model with "
             "`sllm quantize`");
}

// What transformers' BitsAndBytesConfig.to_dict writes (utils/quantization_config.py),
// every key, so `from_pretrained` reads it without falling back to defaults.
json quantization_config(QuantType type, bool double_quant) {
  return json{{"_load_in_4bit", true},
              {"_load_in_8bit", false},
              // The dtype transformers computes in after dequantizing. float32: the rest of
              // the file is f32 and sllm's CPU path computes in f32, so transformers then
              // reproduces sllm's logits; pass bnb_4bit_compute_dtype=bfloat16 to
              // from_pretrained for QLoRA's bf16 on a GPU.
              {"bnb_4bit_compute_dtype", "float32"},
              {"bnb_4bit_quant_storage", "uint8"},
              {"bnb_4bit_quant_type", quant_type_name(type)},
              {"bnb_4bit_use_double_quant", double_quant},
              {"llm_int8_enable_fp32_cpu_offload", false},
              {"llm_int8_has_fp16_weight", false},
              {"llm_int8_skip_modules", nullptr},
              {"llm_int8_threshold", 6.0},
              {"load_in_4bit", true},
              {"load_in_8bit", false},
              {"quant_method", "bitsandbytes"}};
}

bool is_ignored_buffer(const std::string& name) {
  auto ends = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return ends(".attn.bias") || ends(".attn.masked_bias") || ends("rotary_emb.inv_freq");
}

// GPT-2 files name tensors with or without "transformer." (io/model_files.cpp does the same).
std::string canonical_name(const nn::ModelConfig& c, const std::string& name) {
  if (c.family == nn::Family::GPT2 && name.rfind("transformer.", 0) != 0 && name.rfind("lm_head.", 0) != 0)
    return "transformer." + name;
  return name;
}

// The tensors of one file under their canonical names.
class Entries {
 public:
  Entries(const io::SafetensorsFile& file, const nn::ModelConfig& cfg) : path_(file.path()) {
    for (const auto& e : file.entries()) {
      if (is_ignored_buffer(e.name)) continue;
      const std::string name = canonical_name(cfg, e.name);
      if (name == "lm_head.weight" && cfg.tie_embeddings) continue;  // tied: the embedding is the head
      SLLM_CHECK(by_name_.emplace(name, &e).second, str(path_, ": tensor '", name, "' appears twice"),
                 "keep one copy; GPT-2 names may carry the \"transformer.\" prefix or not, but not both");
    }
  }
  const io::SafetensorsEntry* find(const std::string& name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }
  // Marks a tensor read; anything never taken is an unexpected tensor at the end.
  const io::SafetensorsEntry* take(const std::string& name) {
    const io::SafetensorsEntry* e = find(name);
    if (e) used_.insert(name);
    return e;
  }
  void check_all_used(const nn::ModelConfig& cfg) const {
    for (const auto& [name, e] : by_name_) {
      if (used_.count(name)) continue;
      const bool state = name.find(kStatePrefix) != std::string::npos;
      fail(str(path_, ": unexpected tensor '", e->name, "'"),
           state ? str("sllm quantizes the trunk's Linears only (not embeddings or the LM head), as transformers "
                       "does by default: this ", cfg.family_name(), " model has no Linear at that path")
                 : str("the file holds tensors this ", cfg.family_name(), " config does not have (wrong config.json?)"));
    }
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::map<std::string, const io::SafetensorsEntry*> by_name_;
  std::set<std::string> used_;
};

// One array of the quant state, copied into a 1-D tensor; null when absent. dtype must be
// U8 or F32 (what bitsandbytes stores); the element count is checked later by validate().
Tensor read_array(Entries& entries, const std::string& name, DType dtype) {
  const io::SafetensorsEntry* e = entries.take(name);
  if (!e) return Tensor();
  const char* want = dtype == DType::U8 ? "U8" : "F32";
  SLLM_CHECK(e->dtype == want, str(entries.path(), ": '", e->name, "' is ", e->dtype, ", expected ", want),
             "bitsandbytes stores 4-bit codes and 8-bit absmax codes as U8 (bnb_4bit_quant_storage uint8) and "
             "every other quant-state array as F32");
  const int64_t n = int64_t(e->nbytes / dtype_size(dtype));
  Tensor t = Tensor::empty({n}, dtype);
  if (e->nbytes) std::memcpy(t.mutable_raw(), e->data, e->nbytes);
  return t;
}

// The packed codes: u8, or bytes stored under another dtype of the same total size
// (bnb_4bit_quant_storage, e.g. bfloat16 for FSDP; bitsandbytes views them as uint8).
Tensor read_packed(Entries& entries, const std::string& name, int64_t nbytes) {
  const io::SafetensorsEntry* e = entries.find(name);
  if (!e || e->dtype == "U8") return read_array(entries, name, DType::U8);
  entries.take(name);
  SLLM_CHECK(int64_t(e->nbytes) == nbytes,
             str(entries.path(), ": '", e->name, "' holds ", e->nbytes, " bytes of ", e->dtype, ", expected ", nbytes,
                 " bytes of packed 4-bit codes"),
             "the quant state does not match the tensor's shape: the file is corrupted or inconsistent");
  Tensor t = Tensor::empty({nbytes}, DType::U8);
  std::memcpy(t.mutable_raw(), e->data, e->nbytes);
  return t;
}

template <typename T>
T state_value(const json& s, const char* key, const std::string& where) {
  SLLM_CHECK(s.contains(key), str(where, ": the quant_state JSON has no \"", key, "\""),
             "the file is corrupted or was written by an incompatible tool: re-export it");
  try {
    return s[key].get<T>();
  } catch (const json::exception&) {
    fail(str(where, ": the quant_state's \"", key, "\" is ", s[key].dump()),
         "the file is corrupted or was written by an incompatible tool: re-export it");
  }
}

// The QuantizedTensor of a Linear's weight "P.weight" whose state sits under `state_key`,
// checked against the Linear's (out, in).
QuantizedTensor read_quantized(Entries& entries, const std::string& weight, const std::string& state_key,
                               const nn::Linear& linear) {
  const std::string where = str(entries.path(), ": ", weight);
  const io::SafetensorsEntry* se = entries.take(state_key);
  SLLM_CHECK(se->dtype == "U8", str(where, ": the quant_state tensor is ", se->dtype, ", expected U8"),
             "bitsandbytes packs the quant_state JSON into a uint8 tensor; the file is corrupted");
  const json s = json::parse(std::string(reinterpret_cast<const char*>(se->data), se->nbytes), nullptr, false);
  SLLM_CHECK(!s.is_discarded() && s.is_object(), str(where, ": the quant_state is not a JSON object"),
             "the file is corrupted: re-export it");
  QuantizedTensor q;
  const std::string type = state_value<std::string>(s, "quant_type", where);
  SLLM_CHECK(type == "nf4" || type == "fp4", str(where, ": the quant_state's quant_type is '", type, "'"),
             "sllm reads bitsandbytes' 4-bit types nf4 and fp4; the file is corrupted or of another scheme");
  q.type = parse_quant_type(type);
  const std::string suffix = state_key.substr(state_key.rfind("__") + 2);
  SLLM_CHECK(suffix == type, str(where, ": the state key ends in '", suffix, "' but its quant_type is '", type, "'"),
             "the file is inconsistent: re-export it");
  q.blocksize = state_value<int64_t>(s, "blocksize", where);
  check_blocksize(q.blocksize, where);
  const std::vector<int64_t> shape = state_value<std::vector<int64_t>>(s, "shape", where);
  const Shape expected = {linear.out_features(), linear.in_features()};
  SLLM_CHECK(Shape(shape.begin(), shape.end()) == expected,
             str(where, ": the quant_state's shape is ", shape_str(Shape(shape.begin(), shape.end())),
                 ", the config expects ", shape_str(expected), " (out, in)"),
             "config.json and model.safetensors disagree; load the config that came with these weights");
  q.shape = expected;
  q.packed = read_packed(entries, weight, (q.numel() + 1) / 2);
  q.quant_map = read_array(entries, weight + ".quant_map", DType::F32);
  // Double quantization: bitsandbytes' QuantState.from_dict decides by nested_absmax being
  // present; the JSON's nested_offset must then be there too, and neither without the other.
  const bool json_nested = s.contains("nested_offset");
  SLLM_CHECK(json_nested == (entries.find(weight + ".nested_absmax") != nullptr),
             json_nested ? str(where, ": the quant_state is double-quantized but '", weight, ".nested_absmax' is missing")
                         : str(where, ": '", weight, ".nested_absmax' is present but the quant_state has no nested_offset"),
             "the file is incomplete or inconsistent: re-export it");
  q.nested = json_nested;
  q.absmax = read_array(entries, weight + ".absmax", q.nested ? DType::U8 : DType::F32);
  if (q.nested) {
    q.nested_absmax = read_array(entries, weight + ".nested_absmax", DType::F32);
    q.nested_quant_map = read_array(entries, weight + ".nested_quant_map", DType::F32);
    q.nested_blocksize = state_value<int64_t>(s, "nested_blocksize", where);
    q.offset = float(state_value<double>(s, "nested_offset", where));
  } else {
    SLLM_CHECK(!entries.find(weight + ".nested_quant_map"),
               str(where, ": '", weight, ".nested_quant_map' is present without double quantization"),
               "the file is inconsistent: re-export it");
  }
  validate(q, where);
  return q;
}

// A dense parameter from its entry: f32, f16 or bf16 values; GPT-2 Conv1D files hold [in, out].
void read_dense(const io::SafetensorsEntry& e, const nn::Parameter& prm, const std::string& path) {
  SLLM_CHECK(e.dtype == "F32" || e.dtype == "F16" || e.dtype == "BF16",
             str(path, ": tensor '", e.name, "' has dtype ", e.dtype),
             e.dtype == "U8" ? "a 4-bit weight needs its quant_state tensors beside it; the file is incomplete"
                             : "model weights must be F32, F16 or BF16");
  Shape expected = prm.value.shape();
  if (prm.conv1d) std::swap(expected[0], expected[1]);
  SLLM_CHECK(Shape(e.shape.begin(), e.shape.end()) == expected,
             str(path, ": tensor '", e.name, "' has shape ", shape_str(Shape(e.shape.begin(), e.shape.end())),
                 ", the config expects ", shape_str(expected)),
             "config.json and model.safetensors disagree; load the config that came with these weights");
  const int64_t n = prm.value.numel();
  std::vector<float> values(size_t(n), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    if (e.dtype == "F32") {
      std::memcpy(&values[size_t(i)], e.data + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, e.data + 2 * i, 2);
      values[size_t(i)] = e.dtype == "BF16" ? bf16_to_f32(h) : f16_to_f32(h);
    }
  }
  Tensor value = prm.value;  // shares the parameter's storage
  float* dst = value.mutable_f32();
  if (!prm.conv1d) {
    std::memcpy(dst, values.data(), size_t(n) * sizeof(float));
    return;
  }
  const int64_t rows = expected[0], cols = expected[1];  // file [in, out] -> (out, in)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = values[size_t(r * cols + c)];
}

}  // namespace

std::string quant_state_json(const QuantizedTensor& q) {
  std::string shape;
  for (size_t i = 0; i < q.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(q.shape[i]);
  std::string s = str("{\"quant_type\": \"", quant_type_name(q.type), "\", \"blocksize\": ", q.blocksize,
                      ", \"dtype\": \"float32\", \"shape\": [", shape, "]");
  if (q.nested)
    s += str(", \"nested_blocksize\": ", q.nested_blocksize, ", \"nested_dtype\": \"float32\", \"nested_offset\": ",
             python_float_repr(double(q.offset)));
  return s + "}";
}

bool is_quantized_dir(const std::string& dir) {
  if (!fs::is_regular_file(fs::path(dir) / "config.json")) return false;
  const json j = read_config_json(dir);
  return j.contains("quantization_config") && !j["quantization_config"].is_null();
}

std::unique_ptr<nn::Transformer> load_model(const std::string& dir_or_path) {
  if (!io::is_gguf_file(dir_or_path) && is_quantized_dir(dir_or_path)) return load_quantized_model(dir_or_path);
  return io::load_model(dir_or_path);
}

std::unique_ptr<nn::Transformer> load_quantized_model(const std::string& dir) {
  const fs::path config_path = fs::path(dir) / "config.json", weights = fs::path(dir) / "model.safetensors";
  const json j = read_config_json(dir);
  SLLM_CHECK(j.contains("quantization_config") && !j["quantization_config"].is_null(),
             str(config_path.string(), " has no quantization_config"),
             "the model is not quantized: load it with io::load_model, or quantize it with `sllm quantize`");
  check_quantization_config(j, config_path.string());
  SLLM_CHECK(fs::exists(weights), str("'", dir, "' has no model.safetensors"),
             "a model directory holds config.json and model.safetensors (sharded checkpoints are not supported)");
  const nn::ModelConfig cfg = nn::config_from_json(j, config_path.string());
  const io::SafetensorsFile file = io::SafetensorsFile::open(weights.string());
  Entries entries(file, cfg);

  // Zeros, not a random draw: every parameter is overwritten or released below.
  auto model = std::make_unique<nn::Transformer>(cfg, nn::ParamInit::Zeros);
  for (nn::Linear* linear : model->linears()) {
    const std::string weight = linear->path() + ".weight";
    const std::string nf4 = weight + kStatePrefix + "nf4", fp4 = weight + kStatePrefix + "fp4";
    const bool has_nf4 = entries.find(nf4) != nullptr, has_fp4 = entries.find(fp4) != nullptr;
    SLLM_CHECK(!(has_nf4 && has_fp4), str(file.path(), ": ", weight, " has both an nf4 and an fp4 quant_state"),
               "the file is inconsistent: re-export it");
    if (!has_nf4 && !has_fp4) continue;  // a Linear left dense (llm_int8_skip_modules)
    QuantizedTensor q = read_quantized(entries, weight, has_nf4 ? nf4 : fp4, *linear);
    linear->set_packed_weight(std::make_shared<QuantizedWeight>(std::move(q)));  // the zero weight goes here
  }
  model->refresh_parameters();
  for (const auto& prm : model->parameters()) {
    const io::SafetensorsEntry* e = entries.take(prm.name);
    SLLM_CHECK(e != nullptr, str(file.path(), ": missing tensor '", prm.name, "'"),
               str("the file does not hold a ", cfg.family_name(), " model matching config.json (n_layer, names)"));
    read_dense(*e, prm, file.path());
  }
  entries.check_all_used(cfg);
  return model;
}

void save_quantized_model(nn::Transformer& model, const std::string& dir) {
  // Everything the file holds stays alive here until write(): host copies of the dense
  // parameters, transposed Conv1D weights, host quant states and their JSON.
  std::vector<Tensor> host;
  std::vector<std::vector<float>> transposed;
  std::vector<QuantizedTensor> states;
  std::vector<std::string> jsons;
  const std::vector<nn::Linear*> linears = model.linears();
  host.reserve(model.parameters().size());
  transposed.reserve(model.parameters().size());
  states.reserve(linears.size());
  jsons.reserve(linears.size());
  io::SafetensorsWriter writer;
  for (const auto& prm : model.parameters()) {
    const Tensor& value = host.emplace_back(prm.value.to(Device::CPU));
    const Shape& s = value.shape();
    if (!prm.conv1d) {
      writer.add(prm.name, "F32", std::vector<int64_t>(s.begin(), s.end()), value.f32(), value.nbytes());
      continue;
    }
    const int64_t rows = s[0], cols = s[1];  // (out, in) -> file [in, out]
    std::vector<float>& t = transposed.emplace_back(size_t(rows * cols));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) t[size_t(c * rows + r)] = value.f32()[r * cols + c];
    writer.add(prm.name, "F32", {cols, rows}, t.data(), t.size() * sizeof(float));
  }
  bool any = false, double_quant = false;
  QuantType type = QuantType::NF4;
  for (nn::Linear* linear : linears) {
    if (!linear->is_packed()) continue;
    const auto* packed = dynamic_cast<const QuantizedWeight*>(linear->packed_weight().get());
    SLLM_CHECK(packed != nullptr,
               str(linear->path(), " holds a ", linear->packed_weight()->format(), " weight, not a 4-bit QuantizedTensor"),
               "only NF4 / FP4 weights (quant::quantize_model) are written in the bitsandbytes format");
    const QuantizedTensor& q = states.emplace_back(packed->tensor().to(Device::CPU));
    SLLM_CHECK(!any || (q.type == type && q.nested == double_quant),
               str(linear->path(), " is ", quant_type_name(q.type), q.nested ? " + DQ" : "", ", another Linear ",
                   quant_type_name(type), double_quant ? " + DQ" : ""),
               "config.json's quantization_config holds one type for the whole model: quantize every Linear alike");
    any = true;
    type = q.type;
    double_quant = q.nested;
    const std::string w = linear->path() + ".weight";
    writer.add(w, "U8", {int64_t(q.packed.numel()), 1}, q.packed.data<uint8_t>(), q.packed.nbytes());
    writer.add(w + ".absmax", q.nested ? "U8" : "F32", {q.absmax.numel()}, q.absmax.raw(), q.absmax.nbytes());
    writer.add(w + ".quant_map", "F32", {16}, q.quant_map.f32(), q.quant_map.nbytes());
    if (q.nested) {
      writer.add(w + ".nested_absmax", "F32", {q.nested_absmax.numel()}, q.nested_absmax.f32(), q.nested_absmax.nbytes());
      writer.add(w + ".nested_quant_map", "F32", {256}, q.nested_quant_map.f32(), q.nested_quant_map.nbytes());
    }
    const std::string& js = jsons.emplace_back(quant_state_json(q));
    writer.add(w + kStatePrefix + quant_type_name(q.type), "U8", {int64_t(js.size())}, js.data(), js.size());
  }
  SLLM_CHECK(any, "save_quantized_model: the model holds no 4-bit Linear",
             "quantize it first (quant::quantize_model), or save it with io::save_model");
  writer.set_metadata("format", "pt");  // what transformers expects in safetensors metadata

  json config = nn::config_to_json(model.config());
  config["quantization_config"] = quantization_config(type, double_quant);
  std::error_code ec;
  fs::create_directories(dir, ec);
  SLLM_CHECK(!ec, str("cannot create model directory '", dir, "': ", ec.message()), "check the path and permissions");
  write_file_atomic((fs::path(dir) / "config.json").string(), config.dump(2) + "\n");
  writer.write((fs::path(dir) / "model.safetensors").string());
}

}  // namespace sllm::quant
