// Dequantization of ggml tensor types (see gguf_dequant.h for the layouts' sources and the
// fast/reference pairing). Block byte layouts, from ggml/src/ggml-common.h, with QK_K = 256:
//   block_q8_0 (34 B / 32):  ggml_half d; int8_t qs[32];
//   block_q4_0 (18 B / 32):  ggml_half d; uint8_t qs[16];                 (nibbles)
//   block_q4_1 (20 B / 32):  ggml_half d, m; uint8_t qs[16];
//   block_q5_0 (22 B / 32):  ggml_half d; uint8_t qh[4]; uint8_t qs[16];  (qh: 5th bits)
//   block_q5_1 (24 B / 32):  ggml_half d, m; uint8_t qh[4]; uint8_t qs[16];
//   block_q4_K (144 B / 256): ggml_half d, dmin; uint8_t scales[12]; uint8_t qs[128];
//   block_q5_K (176 B / 256): ggml_half d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128];
//   block_q6_K (210 B / 256): uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; ggml_half d;
// Fields are read byte by byte (little endian), so blocks need no alignment.
#include "io/gguf_dequant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GGUF tensor data is little endian; the f32 path copies it");

namespace sllm::io {

namespace {

inline uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
inline float half_at(const uint8_t* p) { return gguf_f16_to_f32(le16(p)); }

// All 65536 halves as floats, built once: the fast F16 path is then a table lookup.
const float* f16_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t h = 0; h < 65536; ++h) t[h] = gguf_f16_to_f32(static_cast<uint16_t>(h));
    return t;
  }();
  return table.data();
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block: ggml-quants.c,
// get_scale_min_k4. scales[0..3] hold sc[0..3] in their low 6 bits, scales[4..7] m[0..3];
// sub-blocks 4..7 keep their low 4 bits in scales[8..11] (sc low nibble, m high nibble) and
// their top 2 bits in the top 2 bits of scales[j-4] (sc) and scales[j] (m).
inline void scale_min_k4(int j, const uint8_t* scales, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

// The same 6-bit fields read literally off the bit layout (gguf-py quants.py draws it as
//   byte 0..3:  hi2(sc[4+k]) | sc[k]     byte 4..7: hi2(m[4+k]) | m[k]
//   byte 8..11: lo4(m[4+k]) << 4 | lo4(sc[4+k]) ), for the reference kernels.
inline void scale_min_k4_ref(int j, const uint8_t* scales, uint8_t* sc, uint8_t* m) {
  auto bits = [](uint8_t byte, int lo, int count) { return static_cast<uint8_t>((byte >> lo) & ((1 << count) - 1)); };
  if (j < 4) {
    *sc = bits(scales[j], 0, 6);
    *m = bits(scales[4 + j], 0, 6);
  } else {
    const int k = j - 4;
    *sc = static_cast<uint8_t>(bits(scales[8 + k], 0, 4) + 16 * bits(scales[k], 6, 2));
    *m = static_cast<uint8_t>(bits(scales[8 + k], 4, 4) + 16 * bits(scales[4 + k], 6, 2));
  }
}

constexpr int64_t QK = 32;     // QK4_0 = QK4_1 = QK5_0 = QK5_1 = QK8_0
constexpr int64_t QK_K = 256;  // super-block size of the k-quants

}  // namespace

float gguf_f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  uint32_t bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);  // inf, or NaN with its payload
  } else if (exponent != 0) {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);  // rebias 15 -> 127
  } else {
    const float sub = std::ldexp(static_cast<float>(mantissa), -24);  // subnormal (or zero): m * 2^-24, exact
    return sign ? -sub : sub;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float gguf_bf16_to_f32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// ---- plain types: F32, F16, BF16 -----------------------------------------------------------

void dequantize_f32(const uint8_t* src, float* dst, int64_t nb) {
  std::memcpy(dst, src, static_cast<size_t>(nb) * 4);  // little-endian host (static_assert above)
}
void dequantize_f32_ref(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const uint32_t bits = le32(src + 4 * i);
    std::memcpy(&dst[i], &bits, 4);
  }
}

void dequantize_f16(const uint8_t* src, float* dst, int64_t nb) {
  const float* table = f16_table();
  for (int64_t i = 0; i < nb; ++i) dst[i] = table[le16(src + 2 * i)];
}
void dequantize_f16_ref(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) dst[i] = gguf_f16_to_f32(le16(src + 2 * i));
}

// bf16 is the top half of an f32, so one loop is already the literal definition: the fast
// kernel is the reference.
void dequantize_bf16(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) dst[i] = gguf_bf16_to_f32(le16(src + 2 * i));
}
void dequantize_bf16_ref(const uint8_t* src, float* dst, int64_t nb) { dequantize_bf16(src, dst, nb); }

// ---- Q8_0: y = qs[j] * d ---------------------------------------------------------------------

void dequantize_q8_0(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* block = src + i * 34;
    const float d = half_at(block);
    const int8_t* qs = reinterpret_cast<const int8_t*>(block + 2);
    float* y = dst + i * QK;
    for (int j = 0; j < QK; ++j) y[j] = static_cast<float>(qs[j]) * d;
  }
}
void dequantize_q8_0_ref(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t e = 0; e < nb * QK; ++e) {
    const uint8_t* block = src + (e / QK) * 34;
    const int8_t q = static_cast<int8_t>(block[2 + e % QK]);
    dst[e] = static_cast<float>(q) * half_at(block);
  }
}

// ---- Q4_0: y = (nibble - 8) * d; element j < 16 is qs[j]'s low nibble, j >= 16 qs[j-16]'s high ---

void dequantize_q4_0(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* block = src + i * 18;
    const float d = half_at(block);
    const uint8_t* qs = block + 2;
    float* y = dst + i * QK;
    for (int j = 0; j < QK / 2; ++j) {
      y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
      y[j + QK / 2] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
  }
}
void dequantize_q4_0_ref(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t e = 0; e < nb * QK; ++e) {
    const uint8_t* block = src + (e / QK) * 18;
    const int j = static_cast<int>(e % QK);
    const uint8_t byte = block[2 + j % 16];
    const int nibble = j < 16 ? (byte & 0x0F) : (byte >> 4);
    dst[e] = static_cast<float>(nibble - 8) * half_at(block);
  }
}

// ---- Q4_1: y = nibble * d + m ------------------------------------------------------------------

void dequantize_q4_1(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* block = src + i * 20;
    const float d = half_at(block), m = half_at(block + 2);
    const uint8_t* qs = block + 4;
    float* y = dst + i * QK;
    for (int j = 0; j < QK / 2; ++j) {
      y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
      y[j + QK / 2] = static_cast<float>(qs[j] >> 4) * d + m;
    }
  }
}
void dequantize_q4_1_ref(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t e = 0; e < nb * QK; ++e) {
    const uint8_t* block = src + (e / QK) * 20;
    const int j = static_cast<int>(e % QK);
    const uint8_t byte = block[4 + j % 16];
    const int nibble = j < 16 ? (byte & 0x0F) : (byte >> 4);
    dst[e] = static_cast<float>(nibble) * half_at(block) + half_at(block + 2);
  }
}

// ---- Q5_0 / Q5_1: a nibble plus a 5th bit; bit j of the 32-bit qh is element j's -----------------

void dequantize_q5_0(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* block = src + i * 22;
    const float d = half_at(block);
    const uint32_t qh = le32(block + 2);
    const uint8_t* qs = block + 6;
    float* y = dst + i * QK;
    for (int j = 0; j < QK / 2; ++j) {
      const int xh_0 = static_cast<int>(((qh >> j) << 4) & 0x10);  // bit j      -> 16
      const int xh_1 = static_cast<int>((qh >> (j + 12)) & 0x10);  // bit j + 16 -> 16
      y[j] = static_cast<float>(((qs[j] & 0x0F) | xh_0) - 16) * d;
      y[j + QK / 2] = static_cast<float>(((qs[j] >> 4) | xh_1) - 16) * d;
    }
  }
}
void dequantize_q5_0_ref(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t e = 0; e < nb * QK; ++e) {
    const uint8_t* block = src + (e / QK) * 22;
    const int j = static_cast<int>(e % QK);
    const uint8_t byte = block[6 + j % 16];
    const int low = j < 16 ? (byte & 0x0F) : (byte >> 4);
    const int high = static_cast<int>((le32(block + 2) >> j) & 1);
    dst[e] = static_cast<float>(low + 16 * high - 16) * half_at(block);
  }
}

void dequantize_q5_1(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* block = src + i * 24;
    const float d = half_at(block), m = half_at(block + 2);
    const uint32_t qh = le32(block + 4);
    const uint8_t* qs = block + 8;
    float* y = dst + i * QK;
    for (int j = 0; j < QK / 2; ++j) {
      const int xh_0 = static_cast<int>(((qh >> j) << 4) & 0x10);
      const int xh_1 = static_cast<int>((qh >> (j + 12)) & 0x10);
      y[j] = static_cast<float>((qs[j] & 0x0F) | xh_0) * d + m;
      y[j + QK / 2] = static_cast<float>((qs[j] >> 4) | xh_1) * d + m;
    }
  }
}
void dequantize_q5_1_ref(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t e = 0; e < nb * QK; ++e) {
    const uint8_t* block = src + (e / QK) * 24;
    const int j = static_cast<int>(e % QK);
    const uint8_t byte = block[8 + j % 16];
    const int low = j < 16 ? (byte & 0x0F) : (byte >> 4);
    const int high = static_cast<int>((le32(block + 4) >> j) & 1);
    dst[e] = static_cast<float>(low + 16 * high) * half_at(block) + half_at(block + 2);
  }
}

// ---- Q4_K: 8 sub-blocks of 32, each y = (d * sc) * nibble - (dmin * m) ---------------------------
// Sub-blocks 2p and 2p+1 share the 32 bytes qs[32p .. 32p+31]: low nibbles, then high nibbles.

void dequantize_q4_k(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* block = src + i * 144;
    const float d = half_at(block), dmin = half_at(block + 2);
    const uint8_t* scales = block + 4;
    const uint8_t* q = block + 16;
    float* y = dst + i * QK_K;
    for (int is = 0; is < 8; is += 2, q += 32, y += 64) {
      uint8_t sc, m;
      scale_min_k4(is, scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
      scale_min_k4(is + 1, scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) y[32 + l] = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}
void dequantize_q4_k_ref(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t e = 0; e < nb * QK_K; ++e) {
    const uint8_t* block = src + (e / QK_K) * 144;
    const int j = static_cast<int>(e % QK_K);
    const int sub = j / 32, pair = j / 64, l = j % 32;
    uint8_t sc, m;
    scale_min_k4_ref(sub, block + 4, &sc, &m);
    const uint8_t byte = block[16 + 32 * pair + l];
    const int nibble = sub % 2 == 0 ? (byte & 0xF) : (byte >> 4);
    dst[e] = half_at(block) * static_cast<float>(sc) * static_cast<float>(nibble) -
             half_at(block + 2) * static_cast<float>(m);
  }
}

// ---- Q5_K: Q4_K plus a 5th bit; bit `sub` of qh[l] belongs to element l of sub-block `sub` ------

void dequantize_q5_k(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* block = src + i * 176;
    const float d = half_at(block), dmin = half_at(block + 2);
    const uint8_t* scales = block + 4;
    const uint8_t* qh = block + 16;
    const uint8_t* ql = block + 48;
    float* y = dst + i * QK_K;
    uint8_t u1 = 1, u2 = 2;  // the qh bits of the two sub-blocks in flight
    for (int is = 0; is < 8; is += 2, ql += 32, y += 64, u1 <<= 2, u2 <<= 2) {
      uint8_t sc, m;
      scale_min_k4(is, scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
      scale_min_k4(is + 1, scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) y[32 + l] = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
  }
}
void dequantize_q5_k_ref(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t e = 0; e < nb * QK_K; ++e) {
    const uint8_t* block = src + (e / QK_K) * 176;
    const int j = static_cast<int>(e % QK_K);
    const int sub = j / 32, pair = j / 64, l = j % 32;
    uint8_t sc, m;
    scale_min_k4_ref(sub, block + 4, &sc, &m);
    const uint8_t byte = block[48 + 32 * pair + l];
    const int low = sub % 2 == 0 ? (byte & 0xF) : (byte >> 4);
    const int high = (block[16 + l] >> sub) & 1;
    dst[e] = half_at(block) * static_cast<float>(sc) * static_cast<float>(low + 16 * high) -
             half_at(block + 2) * static_cast<float>(m);
  }
}

// ---- Q6_K: 16 sub-blocks of 16, y = (d * scales[sub]) * (q - 32), q = 4 bits of ql + 2 of qh ----
// Each half of 128 elements uses 64 bytes of ql and 32 of qh. Its four quarters of 32 take
// ql[l] low, ql[l+32] low, ql[l] high, ql[l+32] high nibbles and bits 0-1, 2-3, 4-5, 6-7 of qh[l].

void dequantize_q6_k(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* block = src + i * 210;
    const uint8_t* ql = block;
    const uint8_t* qh = block + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(block + 192);
    const float d = half_at(block + 208);
    float* y = dst + i * QK_K;
    for (int n = 0; n < QK_K; n += 128, ql += 64, qh += 32, sc += 8, y += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}
void dequantize_q6_k_ref(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t e = 0; e < nb * QK_K; ++e) {
    const uint8_t* block = src + (e / QK_K) * 210;
    const int j = static_cast<int>(e % QK_K);
    const int half = j / 128, quarter = (j % 128) / 32, l = j % 32;
    const uint8_t low_byte = block[64 * half + 32 * (quarter % 2) + l];
    const int low = quarter < 2 ? (low_byte & 0xF) : (low_byte >> 4);
    const int high = (block[128 + 32 * half + l] >> (2 * quarter)) & 3;
    const int8_t scale = static_cast<int8_t>(block[192 + j / 16]);
    dst[e] = half_at(block + 208) * static_cast<float>(scale) * static_cast<float>(low + 16 * high - 32);
  }
}

// ---- type table and dispatch -------------------------------------------------------------------

namespace {

using Kernel = void (*)(const uint8_t*, float*, int64_t);

struct TypeRow {
  uint32_t id;
  GgmlTypeInfo info;
  Kernel fast, ref;  // null: no kernel (the file opens, dequantize() refuses the tensor)
};

// Block sizes and bytes per block: ggml/src/ggml.c type_traits (blck_size, type_size), the
// same numbers as gguf-py's GGML_QUANT_SIZES. Q8_1 and Q8_K are ggml's intermediate types for
// matmul activations, never stored in model files; they are still sized here (Q8_1 as
// sizeof(block_q8_1) = 36; gguf-py's table says 40, an older layout with f32 d and s).
const TypeRow kTypes[] = {
    {0, {"F32", 1, 4, true}, dequantize_f32, dequantize_f32_ref},
    {1, {"F16", 1, 2, true}, dequantize_f16, dequantize_f16_ref},
    {2, {"Q4_0", 32, 18, true}, dequantize_q4_0, dequantize_q4_0_ref},
    {3, {"Q4_1", 32, 20, true}, dequantize_q4_1, dequantize_q4_1_ref},
    {6, {"Q5_0", 32, 22, true}, dequantize_q5_0, dequantize_q5_0_ref},
    {7, {"Q5_1", 32, 24, true}, dequantize_q5_1, dequantize_q5_1_ref},
    {8, {"Q8_0", 32, 34, true}, dequantize_q8_0, dequantize_q8_0_ref},
    {9, {"Q8_1", 32, 36, false}, nullptr, nullptr},
    {10, {"Q2_K", 256, 84, false}, nullptr, nullptr},
    {11, {"Q3_K", 256, 110, false}, nullptr, nullptr},
    {12, {"Q4_K", 256, 144, true}, dequantize_q4_k, dequantize_q4_k_ref},
    {13, {"Q5_K", 256, 176, true}, dequantize_q5_k, dequantize_q5_k_ref},
    {14, {"Q6_K", 256, 210, true}, dequantize_q6_k, dequantize_q6_k_ref},
    {15, {"Q8_K", 256, 292, false}, nullptr, nullptr},
    {16, {"IQ2_XXS", 256, 66, false}, nullptr, nullptr},
    {17, {"IQ2_XS", 256, 74, false}, nullptr, nullptr},
    {18, {"IQ3_XXS", 256, 98, false}, nullptr, nullptr},
    {19, {"IQ1_S", 256, 50, false}, nullptr, nullptr},
    {20, {"IQ4_NL", 32, 18, false}, nullptr, nullptr},
    {21, {"IQ3_S", 256, 110, false}, nullptr, nullptr},
    {22, {"IQ2_S", 256, 82, false}, nullptr, nullptr},
    {23, {"IQ4_XS", 256, 136, false}, nullptr, nullptr},
    {24, {"I8", 1, 1, false}, nullptr, nullptr},
    {25, {"I16", 1, 2, false}, nullptr, nullptr},
    {26, {"I32", 1, 4, false}, nullptr, nullptr},
    {27, {"I64", 1, 8, false}, nullptr, nullptr},
    {28, {"F64", 1, 8, false}, nullptr, nullptr},
    {29, {"IQ1_M", 256, 56, false}, nullptr, nullptr},
    {30, {"BF16", 1, 2, true}, dequantize_bf16, dequantize_bf16_ref},
    {34, {"TQ1_0", 256, 54, false}, nullptr, nullptr},
    {35, {"TQ2_0", 256, 66, false}, nullptr, nullptr},
    {39, {"MXFP4", 32, 17, false}, nullptr, nullptr},
    {40, {"NVFP4", 64, 36, false}, nullptr, nullptr},
    {41, {"Q1_0", 128, 18, false}, nullptr, nullptr},
};

const TypeRow* find_row(uint32_t id) {
  for (const TypeRow& row : kTypes)
    if (row.id == id) return &row;
  return nullptr;
}

const TypeRow& kernel_row(GgmlType type) {
  const TypeRow* row = find_row(static_cast<uint32_t>(type));
  SLLM_CHECK(row != nullptr && row->fast != nullptr,
             str("cannot dequantize ggml type ", ggml_type_name(type), ": sllm has no kernel for it"),
             str("sllm reads ", ggml_dequantizable_types(),
                 "; re-quantize the model to one of them (llama.cpp's llama-quantize) or convert it from f16"));
  return *row;
}

int64_t checked_blocks(const TypeRow& row, int64_t n) {
  SLLM_CHECK(n >= 0 && n % row.info.block_size == 0,
             str("cannot dequantize ", n, " elements of ", row.info.name, ": not a multiple of its block size ",
                 row.info.block_size),
             "pass whole blocks (a GGUF row's length is always a multiple of the block size)");
  return n / row.info.block_size;
}

}  // namespace

const GgmlTypeInfo* ggml_type_info(uint32_t id) {
  const TypeRow* row = find_row(id);
  return row ? &row->info : nullptr;
}

const char* ggml_type_name(GgmlType type) {
  const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(type));
  return info ? info->name : "unknown";
}

const char* ggml_dequantizable_types() { return "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K"; }

void dequantize(GgmlType type, const uint8_t* src, float* dst, int64_t n) {
  const TypeRow& row = kernel_row(type);
  const int64_t nb = checked_blocks(row, n);
  // Fixed chunks of blocks, so every element is computed by the same code whatever the thread
  // count (the kernels have no cross-element arithmetic anyway).
  const int64_t chunk = std::max<int64_t>(1, 16384 / row.info.block_size);
  const int64_t nchunks = (nb + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (nchunks > 1)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t first = c * chunk, count = std::min(chunk, nb - first);
    row.fast(src + static_cast<size_t>(first) * row.info.type_size, dst + first * row.info.block_size, count);
  }
}

void dequantize_ref(GgmlType type, const uint8_t* src, float* dst, int64_t n) {
  const TypeRow& row = kernel_row(type);
  row.ref(src, dst, checked_blocks(row, n));
}

}  // namespace sllm::io
