// GGUF dequantizers (issue 12): each fast kernel equals its spec-literal reference bit for
// bit on random blocks (random bytes, so every bit pattern of scales and quants is hit, and
// blocks with finite scales), hand-computed blocks give the values ggml-quants.c's formulas
// give, and the parallel dispatcher matches the kernels. The comparison with gguf-py's NumPy
// dequantization of a real file is in test_gguf_golden.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/gguf_dequant.h"

using namespace sllm::io;

namespace {

using Kernel = void (*)(const uint8_t*, float*, int64_t);

struct Case {
  const char* name;
  GgmlType type;
  Kernel fast, ref;
  std::vector<size_t> scale_offsets;  // byte offsets of the f16 scales in a block
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"f32", GgmlType::F32, dequantize_f32, dequantize_f32_ref, {}},
      {"f16", GgmlType::F16, dequantize_f16, dequantize_f16_ref, {}},
      {"bf16", GgmlType::BF16, dequantize_bf16, dequantize_bf16_ref, {}},
      {"q8_0", GgmlType::Q8_0, dequantize_q8_0, dequantize_q8_0_ref, {0}},
      {"q4_0", GgmlType::Q4_0, dequantize_q4_0, dequantize_q4_0_ref, {0}},
      {"q4_1", GgmlType::Q4_1, dequantize_q4_1, dequantize_q4_1_ref, {0, 2}},
      {"q5_0", GgmlType::Q5_0, dequantize_q5_0, dequantize_q5_0_ref, {0}},
      {"q5_1", GgmlType::Q5_1, dequantize_q5_1, dequantize_q5_1_ref, {0, 2}},
      {"q4_k", GgmlType::Q4_K, dequantize_q4_k, dequantize_q4_k_ref, {0, 2}},
      {"q5_k", GgmlType::Q5_K, dequantize_q5_k, dequantize_q5_k_ref, {0, 2}},
      {"q6_k", GgmlType::Q6_K, dequantize_q6_k, dequantize_q6_k_ref, {208}},
  };
  return all;
}

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// Same bits, or both NaN (a NaN's payload is not part of the format's meaning).
bool same(float a, float b) { return bits_of(a) == bits_of(b) || (std::isnan(a) && std::isnan(b)); }

std::vector<uint8_t> random_blocks(const GgmlTypeInfo& info, int64_t nb, std::mt19937& rng, const Case& c,
                                   bool finite_scales) {
  std::vector<uint8_t> bytes(static_cast<size_t>(nb) * info.type_size);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  if (finite_scales)
    for (int64_t i = 0; i < nb; ++i)
      for (size_t off : c.scale_offsets) {
        // A half with exponent < 31: finite. Keep the sign and mantissa random.
        uint8_t& hi = bytes[static_cast<size_t>(i) * info.type_size + off + 1];
        hi = static_cast<uint8_t>((hi & 0x83) | ((rng() % 30) << 2));
      }
  return bytes;
}

}  // namespace

TEST(GgufDequant, FastEqualsReferenceOnRandomBlocks) {
  std::mt19937 rng(1234);
  for (const Case& c : cases()) {
    const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(c.type));
    ASSERT_NE(info, nullptr) << c.name;
    ASSERT_TRUE(info->dequantizable) << c.name;
    for (bool finite : {false, true}) {
      const int64_t nb = 97;
      const auto bytes = random_blocks(*info, nb, rng, c, finite);
      const size_t n = static_cast<size_t>(nb * info->block_size);
      std::vector<float> fast(n, -1.0f), ref(n, -2.0f);
      c.fast(bytes.data(), fast.data(), nb);
      c.ref(bytes.data(), ref.data(), nb);
      size_t mismatches = 0, first = n;
      for (size_t i = 0; i < n; ++i)
        if (!same(fast[i], ref[i]) && mismatches++ == 0) first = i;
      EXPECT_EQ(mismatches, 0u) << c.name << (finite ? " (finite scales)" : " (random bytes)") << ": first at element "
                                << first << ": fast " << fast[first] << " ref " << ref[first];
      if (finite && !c.scale_offsets.empty()) {  // finite scales, finite values: real numbers compared
        for (size_t i = 0; i < n; ++i) ASSERT_TRUE(std::isfinite(ref[i])) << c.name << " element " << i;
      }
      // The parallel dispatcher (chunks of blocks over threads) gives the same values.
      std::vector<float> dispatched(n);
      dequantize(c.type, bytes.data(), dispatched.data(), static_cast<int64_t>(n));
      for (size_t i = 0; i < n; ++i) ASSERT_TRUE(same(dispatched[i], fast[i])) << c.name << " element " << i;
      std::vector<float> via_ref(n);
      dequantize_ref(c.type, bytes.data(), via_ref.data(), static_cast<int64_t>(n));
      for (size_t i = 0; i < n; ++i) ASSERT_TRUE(same(via_ref[i], ref[i])) << c.name << " element " << i;
    }
  }
}

TEST(GgufDequant, LargeBufferSplitsIntoChunksTheSameWay) {
  std::mt19937 rng(7);
  const Case& c = cases()[8];  // q4_k
  const int64_t nb = 1000;     // 256000 elements: many OpenMP chunks
  const auto bytes = random_blocks(*ggml_type_info(12), nb, rng, c, true);
  std::vector<float> a(nb * 256), b(nb * 256);
  dequantize(GgmlType::Q4_K, bytes.data(), a.data(), nb * 256);
  dequantize_q4_k_ref(bytes.data(), b.data(), nb);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
}

TEST(GgufDequant, HalfConversionSpecialValues) {
  EXPECT_EQ(gguf_f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(gguf_f16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(gguf_f16_to_f32(0x7BFF), 65504.0f);                 // largest half
  EXPECT_EQ(gguf_f16_to_f32(0x0001), std::ldexp(1.0f, -24));    // smallest subnormal
  EXPECT_EQ(gguf_f16_to_f32(0x03FF), std::ldexp(1023.0f, -24)); // largest subnormal
  EXPECT_EQ(bits_of(gguf_f16_to_f32(0x8000)), 0x80000000u);     // -0
  EXPECT_EQ(gguf_f16_to_f32(0x7C00), INFINITY);
  EXPECT_EQ(gguf_f16_to_f32(0xFC00), -INFINITY);
  EXPECT_TRUE(std::isnan(gguf_f16_to_f32(0x7E00)));
  EXPECT_EQ(gguf_bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(gguf_bf16_to_f32(0xC0A0), -5.0f);
  // Every finite half against the definition: (-1)^s * 2^(e-15) * (1 + m/1024), or
  // 2^-14 * (m/1024) when e = 0, evaluated in double (exact for all of them).
  for (uint32_t h = 0; h < 65536; ++h) {
    const int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    if (e == 31) continue;
    const double magnitude = e == 0 ? std::ldexp(m / 1024.0, -14) : std::ldexp(1.0 + m / 1024.0, e - 15);
    EXPECT_EQ(static_cast<double>(gguf_f16_to_f32(static_cast<uint16_t>(h))), sign ? -magnitude : magnitude) << h;
  }
}

// Hand-built blocks, values from ggml-quants.c's formulas worked out by hand.
TEST(GgufDequant, HandComputedBlocks) {
  std::vector<float> y(256);
  // Q4_0: d = 0.5 (0x3800); qs[0] = 0x1F: element 0 = (15 - 8) * 0.5, element 16 = (1 - 8) * 0.5.
  {
    std::vector<uint8_t> b(18, 0x88);  // every other nibble 8 -> 0
    b[0] = 0x00, b[1] = 0x38, b[2] = 0x1F;
    dequantize_q4_0(b.data(), y.data(), 1);
    EXPECT_EQ(y[0], 3.5f);
    EXPECT_EQ(y[16], -3.5f);
    EXPECT_EQ(y[1], 0.0f);
  }
  // Q4_1: d = 2, m = -1 (0xBC00); qs[3] = 0xA5: element 3 = 5*2-1 = 9, element 19 = 10*2-1 = 19.
  {
    std::vector<uint8_t> b(20, 0);
    b[0] = 0x00, b[1] = 0x40, b[2] = 0x00, b[3] = 0xBC, b[4 + 3] = 0xA5;
    dequantize_q4_1(b.data(), y.data(), 1);
    EXPECT_EQ(y[3], 9.0f);
    EXPECT_EQ(y[19], 19.0f);
    EXPECT_EQ(y[0], -1.0f);
  }
  // Q5_0: d = 1; qh bit 0 and bit 17 set; qs all 0: element 0 = 16 - 16 = 0, element 17 = 0,
  // every other element = -16.
  {
    std::vector<uint8_t> b(22, 0);
    b[1] = 0x3C;
    b[2] = 0x01, b[4] = 0x02;  // qh = 1 | 1 << 17
    dequantize_q5_0(b.data(), y.data(), 1);
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_EQ(y[17], 0.0f);
    EXPECT_EQ(y[1], -16.0f);
    EXPECT_EQ(y[16], -16.0f);
  }
  // Q5_1: d = 1, m = 0.5; qh bit 31; qs[15] = 0xF0: element 31 = (15 | 16) + 0.5 = 31.5.
  {
    std::vector<uint8_t> b(24, 0);
    b[1] = 0x3C, b[3] = 0x38, b[7] = 0x80, b[8 + 15] = 0xF0;
    dequantize_q5_1(b.data(), y.data(), 1);
    EXPECT_EQ(y[31], 31.5f);
    EXPECT_EQ(y[15], 0.5f);
  }
  // Q4_K: d = 1, dmin = 1. Sub-block 1: sc = 3, m = 2 (scales[1], scales[5]). Sub-block 5:
  // sc = 0x25 = 37 (low 4 bits 5 in scales[9], top 2 bits 0b10 in scales[1] bits 6-7),
  // m = 0x13 = 19 (low 4 bits 3 in scales[9] high nibble, top bits 0b01 in scales[5]).
  // qs[32 + 0] = 0x70 -> element 64 (sub-block 2, low nibble 0), and element 32+l of
  // sub-block 1 takes qs[l]'s high nibble: qs[0] = 0x40 -> element 32 = 3*4 - 2 = 10.
  {
    std::vector<uint8_t> b(144, 0);
    b[1] = 0x3C, b[3] = 0x3C;
    uint8_t* scales = b.data() + 4;
    scales[1] = 3 | (0b10 << 6);
    scales[5] = 2 | (0b01 << 6);
    scales[9] = 5 | (3 << 4);
    uint8_t* qs = b.data() + 16;
    qs[0] = 0x40;
    qs[64 + 5] = 0x90;  // pair 2: sub-block 5 is the high nibble -> element 160 + 5 = 9
    dequantize_q4_k(b.data(), y.data(), 1);
    EXPECT_EQ(y[32], 10.0f);
    EXPECT_EQ(y[33], -2.0f);                 // nibble 0: -m
    EXPECT_EQ(y[165], 37.0f * 9.0f - 19.0f);  // sub-block 5
    EXPECT_EQ(y[0], 0.0f);                    // sub-block 0: sc = m = 0
  }
  // Q5_K: the Q4_K example plus a 5th bit: qh[0] bit 1 (sub-block 1) adds 16 to element 32.
  {
    std::vector<uint8_t> b(176, 0);
    b[1] = 0x3C, b[3] = 0x3C;
    b[4 + 1] = 3, b[4 + 5] = 2;
    b[16 + 0] = 0x02;  // qh[0]
    b[48 + 0] = 0x40;  // qs[0]
    dequantize_q5_k(b.data(), y.data(), 1);
    EXPECT_EQ(y[32], 3.0f * 20.0f - 2.0f);
    EXPECT_EQ(y[0], 0.0f);
  }
  // Q6_K: d = 0.5; scales[0] = -2, scales[2] = 4 (sub-blocks of 16). Element 0: ql[0] low
  // nibble 1, qh[0] bits 0-1 = 2 -> q = 1 + 32 - 32 = 1 -> 0.5 * -2 * 1 = -1. Element 32
  // (quarter 1): ql[32] low nibble 7, qh[0] bits 2-3 = 0 -> q = 7 - 32 -> 0.5 * 4 * -25 = -50.
  {
    std::vector<uint8_t> b(210, 0);
    b[0] = 0x01, b[32] = 0x07, b[128] = 0x02;
    b[192 + 0] = static_cast<uint8_t>(-2), b[192 + 2] = 4;
    b[208] = 0x00, b[209] = 0x38;
    dequantize_q6_k(b.data(), y.data(), 1);
    EXPECT_EQ(y[0], -1.0f);
    EXPECT_EQ(y[32], -50.0f);
    EXPECT_EQ(y[1], 0.5f * -2.0f * -32.0f);
  }
}

TEST(GgufDequant, RefusesPartialBlocksAndTypesWithoutKernel) {
  std::vector<uint8_t> bytes(34, 0);
  std::vector<float> y(64);
  EXPECT_THROW(dequantize(GgmlType::Q8_0, bytes.data(), y.data(), 31), sllm::Error);
  EXPECT_THROW(dequantize(GgmlType::Q2_K, bytes.data(), y.data(), 256), sllm::Error);
  EXPECT_THROW(dequantize(static_cast<GgmlType>(5), bytes.data(), y.data(), 32), sllm::Error);
  EXPECT_EQ(ggml_type_info(4), nullptr);
  EXPECT_STREQ(ggml_type_name(GgmlType::Q6_K), "Q6_K");
  EXPECT_STREQ(ggml_type_name(static_cast<GgmlType>(77)), "unknown");
}
