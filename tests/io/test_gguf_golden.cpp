// GGUF against ggml's own Python package (issue 12, deliverable 8): tests/golden/gguf/types.gguf
// was written by gguf-py's GGUFWriter (tools/make_gguf_fixture.py), one tensor per type sllm
// dequantizes, and types_dequant.safetensors holds gguf.quants.dequantize() of each. sllm's
// dequantization must equal NumPy's bit for bit: both do the same float operations in the same
// order (scale * quant, then +/- offset, each rounded; our kernels are built without FMA
// contraction) and f16/bf16 -> f32 is exact in both, so no tolerance is needed.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "io/safetensors.h"

using sllm::io::GgufFile;

namespace {
const std::string kDir = std::string(SLLM_SOURCE_DIR) + "/tests/golden/gguf/";
}

TEST(GgufGolden, EveryTypeEqualsNumpyBitForBit) {
  GgufFile f = GgufFile::open(kDir + "types.gguf");
  auto golden = sllm::io::SafetensorsFile::open(kDir + "types_dequant.safetensors");
  ASSERT_EQ(f.tensors().size(), golden.entries().size());
  ASSERT_EQ(f.tensors().size(), 11u);  // F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K
  for (const auto& t : f.tensors()) {
    SCOPED_TRACE(t.name + " (" + sllm::io::ggml_type_name(t.type) + ")");
    const auto& g = golden.get(t.name);
    ASSERT_EQ(g.dtype, "F32");
    EXPECT_EQ(t.shape(), g.shape);
    const std::vector<float> ours = f.dequantize(t);
    ASSERT_EQ(ours.size() * 4, g.nbytes);
    size_t mismatches = 0, first = 0;
    for (size_t i = 0; i < ours.size(); ++i) {
      float want;
      std::memcpy(&want, g.data + 4 * i, 4);
      if (std::memcmp(&ours[i], &want, 4) != 0 && mismatches++ == 0) first = i;
    }
    EXPECT_EQ(mismatches, 0u) << "first mismatch at element " << first;
    // The reference kernels agree too.
    std::vector<float> ref(ours.size());
    sllm::io::dequantize_ref(t.type, t.data, ref.data(), t.n_elements);
    EXPECT_EQ(0, std::memcmp(ref.data(), ours.data(), ours.size() * 4));
  }
}

TEST(GgufGolden, MetadataWrittenByGgufPy) {
  GgufFile f = GgufFile::open(kDir + "types.gguf");
  std::ifstream in(kDir + "types_expected.json");
  const nlohmann::json want = nlohmann::json::parse(in);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture"), want["general.architecture"].get<std::string>());
  EXPECT_EQ(f.get_u8("sllm.test.u8"), want["sllm.test.u8"].get<int>());
  EXPECT_EQ(f.get_i8("sllm.test.i8"), want["sllm.test.i8"].get<int>());
  EXPECT_EQ(f.get_u16("sllm.test.u16"), want["sllm.test.u16"].get<int>());
  EXPECT_EQ(f.get_i16("sllm.test.i16"), want["sllm.test.i16"].get<int>());
  EXPECT_EQ(f.get_u32("sllm.test.u32"), want["sllm.test.u32"].get<uint32_t>());
  EXPECT_EQ(f.get_i32("sllm.test.i32"), want["sllm.test.i32"].get<int32_t>());
  EXPECT_EQ(f.get_f32("sllm.test.f32"), want["sllm.test.f32"].get<float>());
  EXPECT_EQ(f.get_u64("sllm.test.u64"), want["sllm.test.u64"].get<uint64_t>());
  EXPECT_EQ(f.get_i64("sllm.test.i64"), want["sllm.test.i64"].get<int64_t>());
  EXPECT_EQ(f.get_f64("sllm.test.f64"), want["sllm.test.f64"].get<double>());
  EXPECT_EQ(f.get_bool("sllm.test.bool"), want["sllm.test.bool"].get<bool>());
  EXPECT_EQ(f.get_string("sllm.test.string"), want["sllm.test.string"].get<std::string>());
  EXPECT_EQ(f.get_string_array("sllm.test.strings"), want["sllm.test.strings"].get<std::vector<std::string>>());
  EXPECT_EQ(f.get_i32_array("sllm.test.ints"), want["sllm.test.ints"].get<std::vector<int32_t>>());
  EXPECT_EQ(f.get_f32_array("sllm.test.floats"), want["sllm.test.floats"].get<std::vector<float>>());
}
