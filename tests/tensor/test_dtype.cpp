// bf16 / f16 conversions (src/tensor/dtype.h): round-to-nearest-even (IEEE 754-2008 §4.3.1)
// on known bit patterns worked out by hand, then against independent oracles:
//  - f16: the compiler's _Float16 conversion (hardware F16C or libgcc soft-fp, both RNE);
//  - bf16: "pick the nearer of the two neighbouring bf16 values, ties to the even one",
//    decided by distances in double, not by the bit trick the code under test uses.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "tensor/dtype.h"

namespace sllm {
namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint32_t to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
bool f16_is_nan(uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x03FFu) != 0; }
bool bf16_is_nan(uint16_t h) { return (h & 0x7F80u) == 0x7F80u && (h & 0x007Fu) != 0; }

struct Case {
  float value;
  uint16_t bits;
  const char* why;
};

TEST(Bf16, KnownBitPatterns) {
  const Case cases[] = {
      {1.0f, 0x3F80, "1.0 = 0x3F800000, low half zero: exact"},
      {-2.5f, 0xC020, "-2.5 = 0xC0200000: exact"},
      {0.0f, 0x0000, "+0"},
      {-0.0f, 0x8000, "-0 keeps its sign"},
      {from_bits(0x3F808000), 0x3F80, "1 + 2^-8: halfway between 1 and 1 + 2^-7, ties to even (0x3F80)"},
      {from_bits(0x3F818000), 0x3F82, "1 + 3*2^-8: halfway between 0x3F81 and 0x3F82, ties to even (0x3F82)"},
      {from_bits(0x3F808001), 0x3F81, "just above the halfway point rounds up"},
      {from_bits(0x3F807FFF), 0x3F80, "just below the halfway point rounds down"},
      {from_bits(0xBF818000), 0xBF82, "negative tie rounds to even magnitude"},
      {3.14159265f, 0x4049, "pi = 0x40490FDB: low half 0x0FDB < 0x8000, rounds down"},
      {std::numeric_limits<float>::infinity(), 0x7F80, "+inf"},
      {-std::numeric_limits<float>::infinity(), 0xFF80, "-inf"},
      {from_bits(0x7F7FFFFF), 0x7F80, "FLT_MAX is past the last bf16 (0x7F7F) by more than half an ulp: inf"},
      {from_bits(0x7F7F7FFF), 0x7F7F, "just below the overflow tie stays finite"},
      {from_bits(0x00000001), 0x0000, "smallest f32 subnormal rounds to +0"},
      {from_bits(0x00008000), 0x0000, "subnormal tie rounds to even (0)"},
      {from_bits(0x00018000), 0x0002, "subnormal tie between 1 and 2 rounds to 2"},
      {from_bits(0x00010000), 0x0001, "smallest bf16 subnormal is exact"},
  };
  for (const Case& c : cases) EXPECT_EQ(f32_to_bf16(c.value), c.bits) << c.why;
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xC020), -2.5f);
  EXPECT_EQ(bf16_to_f32(0x3F81), 1.0f + 0x1.0p-7f);
  EXPECT_EQ(to_bits(bf16_to_f32(0x8000)), 0x80000000u);
}

TEST(Bf16, NanStaysNan) {
  // A signalling NaN whose payload lives only in the low 16 bits would truncate to inf.
  const uint32_t nans[] = {0x7FC00000u, 0x7F800001u, 0xFF800001u, 0x7FFFFFFFu, 0x7F80FFFFu};
  for (uint32_t u : nans) {
    const uint16_t h = f32_to_bf16(from_bits(u));
    EXPECT_TRUE(bf16_is_nan(h)) << std::hex << u << " -> " << h;
    EXPECT_EQ(h & 0x8000u, (u >> 16) & 0x8000u) << "sign kept";
    EXPECT_TRUE(std::isnan(bf16_to_f32(h)));
  }
}

TEST(Bf16, EveryPatternRoundTrips) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    EXPECT_EQ(to_bits(f), h << 16);
    const uint16_t back = f32_to_bf16(f);
    if (bf16_is_nan(static_cast<uint16_t>(h))) {
      ASSERT_TRUE(bf16_is_nan(back)) << std::hex << h;
    } else {
      ASSERT_EQ(back, h) << std::hex << h;
    }
  }
}

// Nearest bf16 by distance: the candidates are the truncation and the next value away from 0.
uint16_t bf16_oracle(float x) {
  const uint32_t u = to_bits(x);
  const uint32_t lo = u & 0xFFFF0000u;
  const uint32_t hi = lo + 0x10000u;  // next magnitude up (carries into the exponent: fine)
  const double dlo = std::fabs(static_cast<double>(x) - static_cast<double>(from_bits(lo)));
  // from_bits(hi) may be inf; the distance to the overflow threshold (2^128) decides then.
  const double hi_value = (hi & 0x7FFFFFFFu) == 0x7F800000u ? std::ldexp(x < 0 ? -1.0 : 1.0, 128)
                                                              : static_cast<double>(from_bits(hi));
  const double dhi = std::fabs(hi_value - static_cast<double>(x));
  if (dlo < dhi) return static_cast<uint16_t>(lo >> 16);
  if (dhi < dlo) return static_cast<uint16_t>(hi >> 16);
  return static_cast<uint16_t>(((lo >> 16) & 1u) ? hi >> 16 : lo >> 16);
}

TEST(Bf16, MatchesNearestEvenOracle) {
  // Every high half with the rounding-critical low halves (0, just below/at/above the tie,
  // all ones), plus a stride through all 2^32 patterns.
  const uint32_t lows[] = {0x0000u, 0x0001u, 0x7FFFu, 0x8000u, 0x8001u, 0xFFFFu};
  int64_t checked = 0;
  for (uint32_t high = 0; high <= 0xFFFF; ++high) {
    for (uint32_t low : lows) {
      const uint32_t u = (high << 16) | low;
      if ((u & 0x7F800000u) == 0x7F800000u) continue;  // inf/NaN: covered above
      ASSERT_EQ(f32_to_bf16(from_bits(u)), bf16_oracle(from_bits(u))) << std::hex << u;
      ++checked;
    }
  }
  for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += 4099) {
    if ((u & 0x7F800000u) == 0x7F800000u) continue;
    ASSERT_EQ(f32_to_bf16(from_bits(static_cast<uint32_t>(u))), bf16_oracle(from_bits(static_cast<uint32_t>(u))))
        << std::hex << u;
    ++checked;
  }
  EXPECT_GT(checked, 1000000);
}

TEST(F16, KnownBitPatterns) {
  const Case cases[] = {
      {1.0f, 0x3C00, "1.0: exponent 15, mantissa 0"},
      {-2.5f, 0xC100, "-2.5 = -1.25 * 2^1: exponent 16, mantissa 0x100"},
      {0.1f, 0x2E66, "0.1f = 0x3DCCCCCD: kept mantissa 0x266, dropped bits 0xCCD < 0x1000 round down"},
      {65504.0f, 0x7BFF, "largest finite f16"},
      {65519.99f, 0x7BFF, "below the overflow tie: stays 65504"},
      {65520.0f, 0x7C00, "tie between 65504 (odd mantissa) and 2^16 (even): rounds up to inf"},
      {1e10f, 0x7C00, "overflow"},
      {-1e10f, 0xFC00, "negative overflow"},
      {std::numeric_limits<float>::infinity(), 0x7C00, "+inf"},
      {-std::numeric_limits<float>::infinity(), 0xFC00, "-inf"},
      {0.0f, 0x0000, "+0"},
      {-0.0f, 0x8000, "-0"},
      {0x1.0p-14f, 0x0400, "smallest normal"},
      {0x1.0p-24f, 0x0001, "smallest subnormal"},
      {-0x1.0p-24f, 0x8001, "negative smallest subnormal"},
      {0x1.0p-25f, 0x0000, "half the smallest subnormal: tie between 0 and 1, to even (0)"},
      {0x1.000002p-25f, 0x0001, "just above half the smallest subnormal rounds up"},
      {0x1.8p-24f, 0x0002, "1.5 * 2^-24: tie between 1 and 2, to even (2)"},
      {0x1.4p-23f, 0x0002, "2.5 * 2^-24: tie between 2 and 3, to even (2)"},
      {1023.0f * 0x1.0p-24f, 0x03FF, "largest subnormal"},
      {1023.5f * 0x1.0p-24f, 0x0400, "tie between the largest subnormal (odd) and the smallest normal"},
      {1.0f + 0x1.0p-11f, 0x3C00, "1 + 2^-11: tie between 1 and 1 + 2^-10, to even"},
      {1.0f + 3 * 0x1.0p-11f, 0x3C02, "1 + 3*2^-11: tie between 0x3C01 and 0x3C02, to even"},
      {1.0f + 0x1.0p-11f + 0x1.0p-23f, 0x3C01, "just above the tie rounds up"},
      {2047.0f, 0x67FF, "2047 = 1.9990234375 * 2^10: exact"},
      {2049.0f, 0x6800, "2049: tie between 2048 (even) and 2050, to 2048"},
      {2051.0f, 0x6802, "2051: tie between 2050 (odd) and 2052, to 2052"},
  };
  for (const Case& c : cases) EXPECT_EQ(f32_to_f16(c.value), c.bits) << c.why;
}

TEST(F16, NanStaysNan) {
  const uint32_t nans[] = {0x7FC00000u, 0x7F800001u, 0xFF800001u, 0x7F801000u, 0x7FFFFFFFu};
  for (uint32_t u : nans) {
    const uint16_t h = f32_to_f16(from_bits(u));
    EXPECT_TRUE(f16_is_nan(h)) << std::hex << u << " -> " << h;
    EXPECT_EQ(h & 0x8000u, (u >> 16) & 0x8000u) << "sign kept";
  }
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7E00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7C01)));
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7C00)));
}

// Value of an f16 pattern computed from the definition, in double.
double f16_value(uint16_t h) {
  const int sign = (h & 0x8000) ? -1 : 1;
  const int exp = (h >> 10) & 0x1F;
  const int mant = h & 0x3FF;
  if (exp == 0) return sign * std::ldexp(mant, -24);                 // subnormal: m * 2^-24
  return sign * std::ldexp(1024 + mant, exp - 25);                   // (1 + m/1024) * 2^(e-15)
}

TEST(F16, EveryPatternRoundTrips) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float f = f16_to_f32(bits);
    if (f16_is_nan(bits)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      ASSERT_TRUE(f16_is_nan(f32_to_f16(f))) << std::hex << h;
      continue;
    }
    if (((h >> 10) & 0x1F) == 0x1F) {
      ASSERT_TRUE(std::isinf(f));
    } else {
      ASSERT_EQ(static_cast<double>(f), f16_value(bits)) << std::hex << h;
    }
    ASSERT_EQ(to_bits(f) >> 31, h >> 15) << "sign of " << std::hex << h;
    ASSERT_EQ(f32_to_f16(f), bits) << std::hex << h;
  }
}

#if defined(__FLT16_MAX__)
uint16_t f16_oracle(float x) {
  const _Float16 h = static_cast<_Float16>(x);  // RNE under the default rounding mode
  uint16_t u;
  std::memcpy(&u, &h, 2);
  return u;
}

TEST(F16, MatchesCompilerConversion) {
  // Every f32 pattern with rounding-critical low 13 bits (the bits f16 drops for normals),
  // the neighbourhood of every subnormal tie, and a stride through all 2^32 patterns.
  const uint32_t lows[] = {0x0000u, 0x0001u, 0x0FFFu, 0x1000u, 0x1001u, 0x1FFFu};
  int64_t checked = 0;
  for (uint32_t high = 0; high < (1u << 19); ++high) {
    for (uint32_t low : lows) {
      const uint32_t u = (high << 13) | low;
      if ((u & 0x7F800000u) == 0x7F800000u) continue;
      ASSERT_EQ(f32_to_f16(from_bits(u)), f16_oracle(from_bits(u))) << std::hex << u;
      ++checked;
    }
  }
  for (int m = 0; m < 1024; ++m) {
    const float tie = (static_cast<float>(m) + 0.5f) * 0x1.0p-24f;  // exact in f32
    for (float x : {tie, std::nextafter(tie, 0.0f), std::nextafter(tie, 1.0f), -tie}) {
      ASSERT_EQ(f32_to_f16(x), f16_oracle(x)) << x;
      ++checked;
    }
  }
  for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += 4099) {
    const uint32_t v = static_cast<uint32_t>(u);
    if ((v & 0x7F800000u) == 0x7F800000u) continue;
    ASSERT_EQ(f32_to_f16(from_bits(v)), f16_oracle(from_bits(v))) << std::hex << v;
    ++checked;
  }
  EXPECT_GT(checked, 3000000);
}
#endif

}  // namespace
}  // namespace sllm
