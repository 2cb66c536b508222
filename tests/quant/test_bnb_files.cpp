// 4-bit model directories in the Hugging Face bitsandbytes layout (src/quant/bnb_files.h):
//  - sllm's own files round-trip: every packed byte, absmax, nested array and offset, every
//    dense parameter, and so the logits, come back bit for bit (GPT-2 and Llama, NF4 + DQ
//    and FP4 without it, a short last block);
//  - files written by transformers + bitsandbytes (tests/golden/quant/hf_bnb_<family>/, made
//    by tools/make_golden_bnb_model.py) load: bitsandbytes' own dequantization bit for bit,
//    its quant_state JSON byte for byte, and transformers' logits;
//  - each way a file can be wrong is a sllm::Error with a hint, never a misread.
// With SLLM_BNB_OUT set, the round-trip models are written there for the opt-in reverse
// check (`tools/make_golden_bnb_model.py --check-sllm DIR`: transformers loads sllm's files).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/model_files.h"
#include "io/safetensors.h"
#include "quant/bnb_files.h"
#include "quant/quantize_model.h"
#include "quant/quantized_weight.h"

namespace sllm::quant {
namespace {

namespace fs = std::filesystem;

// GPT-2 with a 320-wide MLP (c_fc: 320 blocks of 64, so two nested blocks of 256, the second
// short); Llama with hidden 40 and 2 kv heads of 10 (k_proj: 800 weights, a half last block
// at 64) and a 424-wide MLP (265 blocks), untied lm_head. The same shapes as the HF goldens.
nn::ModelConfig gpt2_config() { return {nn::Family::GPT2, 96, 32, 64, 2, 4, 4, 320}; }
nn::ModelConfig llama_config() {
  nn::ModelConfig c{nn::Family::Llama, 96, 32, 40, 2, 4, 2, 424};
  c.tie_embeddings = false;
  return c;
}

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = str("sllm_bnb_", info->name(), "_", ::getpid());
    for (char& ch : name)
      if (ch == '/') ch = '_';
    path_ = fs::temp_directory_path() / name;
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& leaf) const { return (path_ / leaf).string(); }

 private:
  fs::path path_;
};

Tensor ids_tensor() {
  std::vector<int32_t> ids(2 * 16);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 37 + 11) % 96);
  return Tensor::from_ints(ids, {2, 16});
}

std::unique_ptr<nn::Transformer> quantized_model(const nn::ModelConfig& c, const QuantOptions& o, uint64_t seed) {
  auto model = std::make_unique<nn::Transformer>(c);
  model->init(seed);
  quantize_model(*model, o);
  return model;
}

const QuantizedTensor& packed_of(nn::Linear& linear) {
  const auto* w = dynamic_cast<const QuantizedWeight*>(linear.packed_weight().get());
  SLLM_ASSERT(w != nullptr);
  return w->tensor();
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.defined() != b.defined()) return false;
  if (!a.defined()) return true;
  return a.dtype() == b.dtype() && a.numel() == b.numel() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// The error text of f(), or "" when it does not throw a sllm::Error.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_FALSE(e.hint().empty()) << e.what();
    return e.what();
  }
  return "";
}

struct RoundTrip {
  std::string name;
  nn::ModelConfig config;
  QuantOptions options;
};

class BnbRoundTrip : public ::testing::TestWithParam<RoundTrip> {};
INSTANTIATE_TEST_SUITE_P(
    Files, BnbRoundTrip,
    ::testing::Values(RoundTrip{"gpt2_nf4_dq", gpt2_config(), {}},
                      RoundTrip{"llama_nf4_dq", llama_config(), {}},
                      RoundTrip{"gpt2_fp4_128", gpt2_config(), {QuantType::FP4, 128, false}},
                      RoundTrip{"llama_fp4_dq_32", llama_config(), {QuantType::FP4, 32, true}}),
    [](const auto& info) { return info.param.name; });

TEST_P(BnbRoundTrip, EveryByteAndTheLogitsComeBack) {
  TempDir tmp;
  auto model = quantized_model(GetParam().config, GetParam().options, 7);
  const Tensor ids = ids_tensor();
  const std::vector<float> logits = model->forward(ids).to_floats();
  save_quantized_model(*model, tmp / "q");
  EXPECT_TRUE(is_quantized_dir(tmp / "q"));

  auto loaded = load_model(tmp / "q");
  ASSERT_EQ(loaded->linears().size(), model->linears().size());
  for (size_t i = 0; i < model->linears().size(); ++i) {
    nn::Linear& a = *model->linears()[i];
    nn::Linear& b = *loaded->linears()[i];
    ASSERT_TRUE(b.is_packed()) << b.path();
    EXPECT_FALSE(b.weight().defined()) << b.path() << ": the dense zeros should be released";
    const QuantizedTensor &qa = packed_of(a), &qb = packed_of(b);
    EXPECT_EQ(qa.shape, qb.shape);
    EXPECT_EQ(qa.type, qb.type);
    EXPECT_EQ(qa.blocksize, qb.blocksize);
    EXPECT_EQ(qa.nested, qb.nested);
    EXPECT_TRUE(same_bytes(qa.packed, qb.packed)) << b.path();
    EXPECT_TRUE(same_bytes(qa.quant_map, qb.quant_map)) << b.path();
    EXPECT_TRUE(same_bytes(qa.absmax, qb.absmax)) << b.path();
    EXPECT_TRUE(same_bytes(qa.nested_absmax, qb.nested_absmax)) << b.path();
    EXPECT_TRUE(same_bytes(qa.nested_quant_map, qb.nested_quant_map)) << b.path();
    EXPECT_EQ(qa.nested_blocksize, qb.nested_blocksize);
    EXPECT_EQ(std::memcmp(&qa.offset, &qb.offset, sizeof(float)), 0) << b.path() << ": " << qa.offset << " vs " << qb.offset;
  }
  ASSERT_EQ(loaded->parameters().size(), model->parameters().size());
  for (size_t i = 0; i < model->parameters().size(); ++i) {
    EXPECT_EQ(loaded->parameters()[i].name, model->parameters()[i].name);
    EXPECT_TRUE(same_bytes(loaded->parameters()[i].value, model->parameters()[i].value)) << model->parameters()[i].name;
  }
  const std::vector<float> again = loaded->forward(ids).to_floats();
  ASSERT_EQ(again.size(), logits.size());
  EXPECT_EQ(std::memcmp(again.data(), logits.data(), logits.size() * sizeof(float)), 0);

  // Saving the loaded model writes the same bytes again.
  save_quantized_model(*loaded, tmp / "q2");
  EXPECT_EQ(read_file(tmp / "q/model.safetensors"), read_file(tmp / "q2/model.safetensors"));
  EXPECT_EQ(read_file(tmp / "q/config.json"), read_file(tmp / "q2/config.json"));
}

TEST(BnbFiles, ConfigAndKeysAreWhatTransformersWrites) {
  TempDir tmp;
  auto model = quantized_model(gpt2_config(), {}, 3);
  save_quantized_model(*model, tmp / "q");
  const auto j = nlohmann::json::parse(read_file(tmp / "q/config.json"));
  const auto& q = j.at("quantization_config");
  EXPECT_EQ(q.at("quant_method"), "bitsandbytes");
  EXPECT_EQ(q.at("load_in_4bit"), true);
  EXPECT_EQ(q.at("load_in_8bit"), false);
  EXPECT_EQ(q.at("bnb_4bit_quant_type"), "nf4");
  EXPECT_EQ(q.at("bnb_4bit_use_double_quant"), true);
  EXPECT_EQ(q.at("bnb_4bit_quant_storage"), "uint8");
  const auto file = io::SafetensorsFile::open(tmp / "q/model.safetensors");
  const std::string p = "transformer.h.0.attn.c_attn.weight";
  EXPECT_EQ(file.get(p).dtype, "U8");
  EXPECT_EQ(file.get(p).shape, (std::vector<int64_t>{192 * 64 / 2, 1}));
  EXPECT_EQ(file.get(p + ".absmax").dtype, "U8");
  EXPECT_EQ(file.get(p + ".quant_map").shape, std::vector<int64_t>{16});
  EXPECT_EQ(file.get(p + ".nested_quant_map").shape, std::vector<int64_t>{256});
  EXPECT_EQ(file.get(p + ".nested_absmax").shape, std::vector<int64_t>{1});
  const auto& s = file.get(p + ".quant_state.bitsandbytes__nf4");
  const std::string state(reinterpret_cast<const char*>(s.data), s.nbytes);
  // The Conv1D weight is quantized in nn.Linear's (out, in) layout, as transformers does.
  EXPECT_EQ(state.rfind("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [192, 64], "
                        "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": ",
                        0),
            0u)
      << state;
  EXPECT_EQ(file.get("transformer.h.0.attn.c_attn.bias").dtype, "F32");
  EXPECT_EQ(file.get("transformer.wte.weight").dtype, "F32");
  EXPECT_EQ(file.metadata().at("format"), "pt");
}

TEST(BnbFiles, IoLoadModelRefusesAQuantizedDirectoryByName) {
  TempDir tmp;
  save_quantized_model(*quantized_model(llama_config(), {}, 1), tmp / "q");
  const std::string e = error_of([&] { io::load_model(tmp / "q"); });
  EXPECT_NE(e.find("quantized"), std::string::npos) << e;
  EXPECT_NE(e.find("quant::load_model"), std::string::npos) << e;
}

// ---- files written by transformers + bitsandbytes ---------------------------------------------

Tensor entry_tensor(const io::SafetensorsEntry& e) {
  const DType dt = e.dtype == "I32" ? DType::I32 : DType::F32;
  Tensor t = Tensor::empty(Shape(e.shape.begin(), e.shape.end()), dt);
  std::memcpy(t.mutable_raw(), e.data, e.nbytes);
  return t;
}

class HfBnbGolden : public ::testing::TestWithParam<std::string> {};
INSTANTIATE_TEST_SUITE_P(Transformers, HfBnbGolden, ::testing::Values("gpt2", "llama"),
                         [](const auto& info) { return info.param; });

// Both sides dequantize the same codes to the same f32 weights (checked bit for bit below),
// then multiply in f32 with sums in different orders (our GEMMs vs torch's): ~1e-6 relative
// per op over two layers. 2e-5 of the logits' scale holds with margin; one wrong code table
// (FP4 for NF4), a missing offset or a transposed Conv1D moves them by far more than 1e-2.
constexpr double kLogitsTol = 2e-5;

TEST_P(HfBnbGolden, LoadsWithBitsandbytesDequantizationAndTransformersLogits) {
  const std::string dir = std::string(SLLM_SOURCE_DIR) + "/tests/golden/quant/hf_bnb_" + GetParam();
  auto model = load_model(dir);
  const auto golden = io::SafetensorsFile::open(dir + "/golden.safetensors");
  const auto weights = io::SafetensorsFile::open(dir + "/model.safetensors");
  int dequant_checked = 0;
  for (nn::Linear* linear : model->linears()) {
    ASSERT_TRUE(linear->is_packed()) << linear->path();
    const QuantizedTensor& q = packed_of(*linear);
    EXPECT_TRUE(q.nested && q.type == QuantType::NF4 && q.blocksize == 64) << linear->path();
    // The JSON sllm would write for this state is the one bitsandbytes wrote, byte for byte.
    const auto& s = weights.get(linear->path() + ".weight.quant_state.bitsandbytes__nf4");
    EXPECT_EQ(quant_state_json(q), std::string(reinterpret_cast<const char*>(s.data), s.nbytes)) << linear->path();
    if (const io::SafetensorsEntry* d = golden.find("dequant." + linear->path() + ".weight")) {
      const Tensor ours = dequantize(q), ref = entry_tensor(*d);
      ASSERT_EQ(ours.shape(), ref.shape()) << linear->path();
      EXPECT_EQ(std::memcmp(ours.f32(), ref.f32(), ref.nbytes()), 0) << linear->path() << ": not bitsandbytes' bits";
      ++dequant_checked;
    }
  }
  EXPECT_EQ(dequant_checked, GetParam() == "gpt2" ? 1 : 2);
  const std::vector<float> ours = model->forward(entry_tensor(golden.get("input_ids"))).to_floats();
  const std::vector<float> ref = entry_tensor(golden.get("logits")).to_floats();
  ASSERT_EQ(ours.size(), ref.size());
  double scale = 0, worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    scale = std::max(scale, std::fabs(double(ref[i])));
    worst = std::max(worst, std::fabs(double(ours[i]) - double(ref[i])));
  }
  EXPECT_LE(worst / scale, kLogitsTol);
  std::printf("hf_bnb_%s: max |logits - transformers'| / max |transformers'| = %.2e\n", GetParam().c_str(), worst / scale);
}

// ---- bad files -------------------------------------------------------------------------------

// A copy of the directory `src` at `dst` whose model.safetensors is edited by `edit`: given
// every tensor name, it returns nullopt to keep the tensor, or a replacement (an empty
// dtype drops it). `extra` adds tensors.
struct Replacement {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};
using Edit = std::function<std::optional<Replacement>(const io::SafetensorsEntry&)>;

void edited_copy(const std::string& src, const std::string& dst, const Edit& edit,
                 const std::map<std::string, Replacement>& extra = {}) {
  fs::create_directories(dst);
  fs::copy_file(src + "/config.json", dst + "/config.json");
  const auto file = io::SafetensorsFile::open(src + "/model.safetensors");
  io::SafetensorsWriter writer;
  std::vector<Replacement> keep;
  keep.reserve(file.entries().size() + extra.size());
  for (const auto& e : file.entries()) {
    const std::optional<Replacement> r = edit(e);
    if (!r) {
      writer.add(e.name, e.dtype, e.shape, e.data, e.nbytes);
    } else if (!r->dtype.empty()) {
      const Replacement& k = keep.emplace_back(*r);
      writer.add(e.name, k.dtype, k.shape, k.bytes.data(), k.bytes.size());
    }
  }
  for (const auto& [name, r] : extra) {
    const Replacement& k = keep.emplace_back(r);
    writer.add(name, k.dtype, k.shape, k.bytes.data(), k.bytes.size());
  }
  writer.write(dst + "/model.safetensors");
}

Replacement state_bytes(const std::string& json) { return {"U8", {int64_t(json.size())}, json}; }
Replacement dropped() { return {"", {}, ""}; }

struct BadFile {
  std::string name, target, needle;  // target: the tensor to edit (k_proj's by default)
  std::function<std::optional<Replacement>(const io::SafetensorsEntry&)> change;
};

const std::string kProj = "model.layers.0.self_attn.k_proj.weight";  // 800 weights: 13 blocks, 1 nested block
const std::string kState = kProj + ".quant_state.bitsandbytes__nf4";

std::string state_text(const io::SafetensorsEntry& e) { return std::string(reinterpret_cast<const char*>(e.data), e.nbytes); }
std::string replace_in(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  SLLM_ASSERT(at != std::string::npos);
  return s.replace(at, from.size(), to);
}
std::optional<Replacement> new_state(const io::SafetensorsEntry& e, const std::string& from, const std::string& to) {
  return state_bytes(replace_in(state_text(e), from, to));
}

TEST(BnbFiles, EachCorruptedOrInconsistentStateIsAnErrorWithAHint) {
  TempDir tmp;
  save_quantized_model(*quantized_model(llama_config(), {}, 5), tmp / "good");
  ASSERT_NO_THROW(load_model(tmp / "good"));
  const std::vector<BadFile> cases = {
      {"not_json", kState, "is not a JSON object", [](auto& e) { return state_bytes("{\"quant_type\": \"nf4\", oops"); }},
      {"no_blocksize", kState, "no \"blocksize\"", [](auto& e) { return new_state(e, "\"blocksize\": 64", "\"bs\": 64"); }},
      {"blocksize_string", kState, "\"blocksize\" is \"64\"",
       [](auto& e) { return new_state(e, "\"blocksize\": 64", "\"blocksize\": \"64\""); }},
      {"blocksize_48", kState, "blocksize 48 is not a power of two",
       [](auto& e) { return new_state(e, "\"blocksize\": 64", "\"blocksize\": 48"); }},
      {"blocksize_128", kState, "absmax (8-bit codes) is u8 (13,), expected u8 of 7 elements",
       [](auto& e) { return new_state(e, "\"blocksize\": 64", "\"blocksize\": 128"); }},
      {"shape", kState, "shape is (20, 41)", [](auto& e) { return new_state(e, "[20, 40]", "[20, 41]"); }},
      {"quant_type", kState, "quant_type is 'nf5'", [](auto& e) { return new_state(e, "\"nf4\"", "\"nf5\""); }},
      {"type_vs_key", kState, "quant_type is 'fp4'", [](auto& e) { return new_state(e, "\"nf4\"", "\"fp4\""); }},
      {"no_offset", kState, "has no nested_offset",
       [](auto& e) {
         std::string s = state_text(e);
         return state_bytes(s.substr(0, s.find(", \"nested_offset\"")) + "}");
       }},
      {"no_nested_absmax", kProj + ".nested_absmax", "nested_absmax' is missing", [](auto&) { return dropped(); }},
      {"no_nested_map", kProj + ".nested_quant_map", "no nested_quant_map", [](auto&) { return dropped(); }},
      {"no_packed", kProj, "no packed weight", [](auto&) { return dropped(); }},
      {"short_absmax", kProj + ".absmax", "expected u8 of 13 elements",
       [](auto& e) { return Replacement{"U8", {12}, std::string(reinterpret_cast<const char*>(e.data), 12)}; }},
      {"absmax_f16", kProj + ".absmax", "is F16, expected U8",
       [](auto& e) { return Replacement{"F16", {13}, std::string(26, '\0')}; }},
      {"not_nf4_map", kProj + ".quant_map", "is not nf4's",
       [](auto& e) {
         std::string b(reinterpret_cast<const char*>(e.data), e.nbytes);
         const float v = 0.5f;
         std::memcpy(&b[4 * 9], &v, 4);
         return Replacement{"F32", {16}, b};
       }},
      {"fp4_map_for_nf4", kProj + ".quant_map", "is not nf4's",
       [](auto&) {
         const auto& t = code4(QuantType::FP4);
         return Replacement{"F32", {16}, std::string(reinterpret_cast<const char*>(t.data()), 64)};
       }},
      {"nan_scale", kProj + ".nested_absmax", "nested_absmax[0] = nan",
       [](auto&) {
         const float v = std::nanf("");
         return Replacement{"F32", {1}, std::string(reinterpret_cast<const char*>(&v), 4)};
       }},
      {"packed_f16_short", kProj, "holds 398 bytes of F16, expected 400",
       [](auto& e) { return Replacement{"F16", {199, 1}, std::string(reinterpret_cast<const char*>(e.data), 398)}; }},
      {"state_dtype", kState, "quant_state tensor is I8",
       [](auto& e) { return Replacement{"I8", e.shape, state_text(e)}; }},
  };
  for (const BadFile& c : cases) {
    const std::string dir = tmp / c.name;
    edited_copy(tmp / "good", dir, [&](const io::SafetensorsEntry& e) -> std::optional<Replacement> {
      return e.name == c.target ? c.change(e) : std::nullopt;
    });
    const std::string e = error_of([&] { load_model(dir); });
    EXPECT_NE(e.find(c.needle), std::string::npos) << c.name << ": " << (e.empty() ? "no error" : e);
  }
}

TEST(BnbFiles, PackedCodesStoredUnderAnotherDtypeLoadAsBytes) {
  // bnb_4bit_quant_storage=bfloat16 (FSDP) stores the same bytes as a bf16 tensor.
  TempDir tmp;
  auto model = quantized_model(llama_config(), {}, 5);
  save_quantized_model(*model, tmp / "good");
  edited_copy(tmp / "good", tmp / "bf16", [](const io::SafetensorsEntry& e) -> std::optional<Replacement> {
    if (e.name != kProj) return std::nullopt;
    return Replacement{"BF16", {int64_t(e.nbytes / 2), 1}, std::string(reinterpret_cast<const char*>(e.data), e.nbytes)};
  });
  auto loaded = load_model(tmp / "bf16");
  EXPECT_TRUE(same_bytes(packed_of(*loaded->find_linear("model.layers.0.self_attn.k_proj")).packed,
                         packed_of(*model->find_linear("model.layers.0.self_attn.k_proj")).packed));
}

TEST(BnbFiles, MissingExtraAndMisplacedTensorsAreErrors) {
  TempDir tmp;
  save_quantized_model(*quantized_model(llama_config(), {}, 5), tmp / "good");
  // A dense parameter missing.
  edited_copy(tmp / "good", tmp / "no_norm", [](const io::SafetensorsEntry& e) -> std::optional<Replacement> {
    return e.name == "model.norm.weight" ? std::optional(dropped()) : std::nullopt;
  });
  EXPECT_NE(error_of([&] { load_model(tmp / "no_norm"); }).find("missing tensor 'model.norm.weight'"), std::string::npos);
  // A 4-bit weight without its quant_state reads as a u8 dense weight: named, not misread.
  edited_copy(tmp / "good", tmp / "no_state", [](const io::SafetensorsEntry& e) -> std::optional<Replacement> {
    return e.name.rfind(kProj + ".", 0) == 0 ? std::optional(dropped()) : std::nullopt;
  });
  EXPECT_NE(error_of([&] { load_model(tmp / "no_state"); }).find("'" + kProj + "' has dtype U8"), std::string::npos);
  // A quant state for the LM head, which sllm keeps dense (as transformers does by default).
  edited_copy(tmp / "good", tmp / "head", [](const io::SafetensorsEntry&) { return std::nullopt; },
              {{"lm_head.weight.quant_state.bitsandbytes__nf4", state_bytes("{}")}});
  EXPECT_NE(error_of([&] { load_model(tmp / "head"); }).find("unexpected tensor 'lm_head.weight.quant_state"),
            std::string::npos);
  // Both an nf4 and an fp4 state for one weight.
  edited_copy(tmp / "good", tmp / "both", [](const io::SafetensorsEntry&) { return std::nullopt; },
              {{kProj + ".quant_state.bitsandbytes__fp4", state_bytes("{}")}});
  EXPECT_NE(error_of([&] { load_model(tmp / "both"); }).find("both an nf4 and an fp4"), std::string::npos);
}

TEST(BnbFiles, OtherQuantizationConfigsAreRefusedByName) {
  TempDir tmp;
  save_quantized_model(*quantized_model(gpt2_config(), {}, 2), tmp / "good");
  auto with_config = [&](const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
    fs::create_directories(tmp / name);
    fs::copy_file(tmp / "good/model.safetensors", tmp / (name + "/model.safetensors"));
    auto j = nlohmann::json::parse(read_file(tmp / "good/config.json"));
    edit(j["quantization_config"]);
    write_file_atomic(tmp / (name + "/config.json"), j.dump());
    return error_of([&] { load_model(tmp / name); });
  };
  EXPECT_NE(with_config("gptq", [](auto& q) { q["quant_method"] = "gptq"; }).find("quantized with 'gptq'"),
            std::string::npos);
  EXPECT_NE(with_config("int8", [](auto& q) {
              q["load_in_4bit"] = false;
              q["load_in_8bit"] = true;
            }).find("8-bit (LLM.int8)"),
            std::string::npos);
  EXPECT_NE(with_config("typed", [](auto& q) { q["load_in_4bit"] = "yes"; }).find("\"load_in_4bit\" is \"yes\""),
            std::string::npos);
}

TEST(BnbFiles, SavingAModelWithoutPackedWeightsIsAnError) {
  TempDir tmp;
  nn::Transformer model(gpt2_config());
  EXPECT_NE(error_of([&] { save_quantized_model(model, tmp / "q"); }).find("no 4-bit Linear"), std::string::npos);
}

// Opt-in: the round-trip models and sllm's logits for tools/make_golden_bnb_model.py --check-sllm.
TEST(BnbFiles, SavedForTransformers) {
  const char* out = std::getenv("SLLM_BNB_OUT");
  if (!out) GTEST_SKIP() << "set SLLM_BNB_OUT=DIR to write sllm's 4-bit directories for --check-sllm";
  for (const auto& [family, config] : {std::pair{"gpt2", gpt2_config()}, std::pair{"llama", llama_config()}}) {
    auto model = quantized_model(config, {}, 11);
    const std::string dir = std::string(out) + "/" + family;
    save_quantized_model(*model, dir);
    const Tensor ids = ids_tensor();
    const Tensor logits = model->forward(ids);
    io::SafetensorsWriter w;
    w.add("input_ids", "I32", {2, 16}, ids.raw(), ids.nbytes());
    w.add("logits", "F32", {2, 16, 96}, logits.raw(), logits.nbytes());
    w.write(dir + "/sllm_logits.safetensors");
  }
}

}  // namespace
}  // namespace sllm::quant
