// The mathematics of blockwise 4-bit quantization, on random tensors (no golden needed):
// the dequantization error bound, idempotence, short and odd sizes, all-zero blocks, and
// every fast kernel against its naive reference (test_quant_golden.cpp holds both to
// bitsandbytes' bits).
//
// The error bound. A block of absmax m > 0 stores, for each x in it, the code c nearest
// s = fl(x · fl(1/m)) (clamped to [-1, 1]), and dequantizes to fl(c · m). Let h be the
// largest distance from a point of [-1, 1] to its nearest code: half the largest gap between
// neighbouring sorted codes, or the distance from ±1 to the outermost code if that is larger
// (NF4 and FP4 both end at ±1, so for them h = largest_gap / 2; the 8-bit dynamic map ends at
// -0.99297, so there the end counts). With u = 2^-24 (float32 unit roundoff):
//   |x/m - s| <= 2u            (two roundings of a product of magnitude <= 1; clamping to ±1
//                               only moves s towards x/m, since |x| <= m)
//   |s - c|   <= h + u         (the midpoints are rounded once to float32)
//   |c·m - fl(c·m)| <= u·m     (|c| <= 1)
// so |x - deq| <= m·(h + 4u): the codebook's largest gap × absmax / 2, plus rounding. The
// test uses m·h + 8u·m.
// With double quantization the block's scale is itself approximated: m' = fl(fl(code8·M) +
// offset), where M is the nested absmax of the block's group of 256 (the largest
// |m_b - offset| there) and code8 the dynamic-map code nearest (m - offset)/M. The same
// argument with the map's h8 gives |m - m'| <= M·(h8 + 4u) + u·m' (one more rounding:
// the centring m - offset, of magnitude <= M, and the add). The 4-bit codes were chosen with
// the exact m, so deq = fl(c·m') and
//   |x - deq| <= |x - c·m| + |c|·|m - m'| + u·m' <= m·(h + 4u) + M·(h8 + 4u) + 2u·m'.
// The test uses m·h + M·h8 + 8u·(m + M + m').
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/cpu/quantize_internal.h"
#include "kernels/kernels.h"
#include "quant/codebooks.h"
#include "quant/quantized_tensor.h"

namespace sllm::quant {
namespace {

constexpr double kU = 0x1.0p-24;  // float32 unit roundoff

// Weight-like values whose scale changes every 96 elements over six orders of magnitude,
// so blocks (and the centred absmax values of double quantization) span a wide range.
std::vector<float> weights(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[size_t(i)] = float(rng.normal() * std::pow(10.0, double((i / 96) % 7) - 4.0));
  return x;
}

Tensor tensor_of(const std::vector<float>& x) { return Tensor::from_floats(x, {int64_t(x.size())}); }

template <size_t K>
double half_gap(const std::array<float, K>& table) {  // h of the header, computed from the table
  std::array<float, K> s = table;
  std::sort(s.begin(), s.end());
  double h = std::max(1.0 - s.back(), double(s.front()) + 1.0);
  for (size_t j = 0; j + 1 < K; ++j) h = std::max(h, (double(s[j + 1]) - s[j]) / 2);
  return h;
}

std::vector<float> fp32_absmax(const QuantizedTensor& q) {
  std::vector<float> a(size_t(q.blocks()));
  block_absmax(q, 0, q.blocks(), a.data());
  return a;
}
std::vector<uint32_t> bits(const std::vector<float>& v) {
  std::vector<uint32_t> b(v.size());
  std::memcpy(b.data(), v.data(), v.size() * sizeof(float));
  return b;
}
int code_at(const QuantizedTensor& q, int64_t i) {
  const uint8_t byte = q.packed.data<uint8_t>()[i / 2];
  return i % 2 == 0 ? byte >> 4 : byte & 0xF;
}

struct Config {
  QuantType type;
  int64_t blocksize;
  bool double_quant;
};
std::string config_name(const ::testing::TestParamInfo<Config>& info) {
  return quant_type_name(info.param.type) + "_bs" + std::to_string(info.param.blocksize) +
         (info.param.double_quant ? "_dq" : "");
}
std::vector<Config> configs() {
  std::vector<Config> out;
  for (QuantType t : {QuantType::NF4, QuantType::FP4})
    for (int64_t bs : {32, 64, 256, 4096})
      for (bool dq : {false, true}) out.push_back({t, bs, dq});
  return out;
}

class QuantMath : public ::testing::TestWithParam<Config> {
 protected:
  QuantOptions options() const {
    QuantOptions o;
    o.type = GetParam().type;
    o.blocksize = GetParam().blocksize;
    o.double_quant = GetParam().double_quant;
    return o;
  }
};
INSTANTIATE_TEST_SUITE_P(Types, QuantMath, ::testing::ValuesIn(configs()), config_name);

// 300 blocks of 32 + 17 elements (odd, and not a multiple of any blocksize here): the last
// block is short and the last byte holds one code.
constexpr int64_t kN = 32 * 300 + 17;

TEST_P(QuantMath, DequantizationErrorIsBoundedPerBlockByHalfTheLargestGapTimesAbsmax) {
  const std::vector<float> x = weights(kN, 11);
  const QuantizedTensor q = quantize(tensor_of(x), options());
  const std::vector<float> deq = dequantize(q).to_floats();
  QuantOptions plain = options();
  plain.double_quant = false;
  const std::vector<float> m = quantize(tensor_of(x), plain).absmax.to_floats();  // exact absmax
  const std::vector<float> m_deq = fp32_absmax(q);                                 // what deq uses
  const double h4 = half_gap(code4(q.type)), h8 = half_gap(dynamic_map_signed());
  const int64_t bs = q.blocksize;
  for (int64_t b = 0; b < q.blocks(); ++b) {
    double bound = m[size_t(b)] * (h4 + 8 * kU);
    if (q.nested) {
      const double M = q.nested_absmax.f32()[b / q.nested_blocksize], mp = std::fabs(m_deq[size_t(b)]);
      EXPECT_LE(std::fabs(double(m[size_t(b)]) - m_deq[size_t(b)]), M * h8 + 8 * kU * (M + mp))
          << "block " << b << ": the double-quantized absmax";
      bound += M * h8 + 8 * kU * (M + mp);
    }
    double worst = 0;
    for (int64_t i = b * bs; i < std::min(kN, (b + 1) * bs); ++i)
      worst = std::max(worst, std::fabs(double(x[size_t(i)]) - deq[size_t(i)]));
    EXPECT_LE(worst, bound) << "block " << b << " absmax " << m[size_t(b)];
  }
}

// Stronger than the bound, without double quantization: every element dequantizes to the
// nearest of the 16 values code·m (up to the roundings of the header), so a code one
// bucket off anywhere fails here even where the gap is small.
TEST(QuantMathNearest, EveryElementDequantizesToTheNearestValueOfItsBlock) {
  const std::vector<float> x = weights(kN, 12);
  for (QuantType t : {QuantType::NF4, QuantType::FP4})
    for (int64_t bs : {32, 64, 256, 4096}) {
      const QuantizedTensor q = quantize(tensor_of(x), {t, bs, false});
      const std::vector<float> deq = dequantize(q).to_floats(), m = q.absmax.to_floats();
      for (int64_t i = 0; i < kN; ++i) {
        const double mb = m[size_t(i / bs)];
        double nearest = 1e300;
        for (float c : code4(t)) nearest = std::min(nearest, std::fabs(double(x[size_t(i)]) - c * mb));
        ASSERT_LE(std::fabs(double(x[size_t(i)]) - deq[size_t(i)]), nearest + 8 * kU * mb)
            << quant_type_name(t) << " bs " << bs << " element " << i;
      }
    }
}

// The bound is attained, so it is not loose by a wrong largest_gap: values spread over
// [-1, 1] in blocks of absmax exactly 1 reach within 1% of h (the middle of NF4's largest
// gap, between -1 and -0.6962, or FP4's, between 0.6667 and 1).
TEST(QuantMathBound, IsAttainedAndLargestGapIsTheCodebooks) {
  for (QuantType t : {QuantType::NF4, QuantType::FP4}) {
    std::vector<float> x(64 * 512);
    Rng rng(5);
    for (size_t i = 0; i < x.size(); ++i) x[i] = i % 64 == 0 ? 1.0f : 2.0f * rng.uniform() - 1.0f;
    QuantOptions o;
    o.type = t;
    o.double_quant = false;
    const std::vector<float> deq = dequantize(quantize(tensor_of(x), o)).to_floats();
    double worst = 0;
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::fabs(double(x[i]) - deq[i]));
    const double h = half_gap(code4(t));
    EXPECT_GE(worst, 0.99 * h) << quant_type_name(t);
    EXPECT_LE(worst, h + 8 * kU) << quant_type_name(t);
    EXPECT_DOUBLE_EQ(largest_gap(t) / 2.0, h) << quant_type_name(t);
  }
  // NF4's largest gap is its bottom one, -0.6961928009986877 - (-1) (bitsandbytes' table;
  // QLoRA appendix E: 7 negative quantiles against 8 positive ones); FP4's is between 8/12
  // and 12/12.
  EXPECT_FLOAT_EQ(largest_gap(QuantType::NF4), 1.0f - 0.6961928009986877f);
  EXPECT_FLOAT_EQ(largest_gap(QuantType::FP4), 4.0f / 12.0f);
}

// Quantize → dequantize → quantize is a fixed point of the 4-bit layer: the element at
// ±absmax gets the code ±1, so the dequantized block has the same absmax, and every other
// value lands back on a code, far from any midpoint. So the second round gives the same
// codes and the same absmax, and dequantizes to the same values bit for bit. One exception
// in the codes, not in the values: FP4 has two codes of 0.0 (0b0000 and 0b1000, bitsandbytes'
// "-0", +0.0 in its table), and values just above 0 take 0b1000 (the upper bucket of the
// tie) while an exact 0 takes 0b0000, so a 0b1000 comes back as 0b0000.
// With double quantization the scales themselves are approximated (m' instead of m), so
// the second round's fp32 absmax is the first round's m', bit for bit, and its 4-bit codes
// are the same; its nested state is not a fixed point: the offset is the mean of the m',
// which moves it in the fifth digit, and with it the nested absmax (and now and then a
// nested code). Weight-like values here (one scale, as a Linear's): with scales six orders
// apart in one group of 256, a small block's m' may even be negative (the bound test allows
// it: |m - m'| <= M·h8 exceeds m), which flips the block's signs in the second round.
TEST_P(QuantMath, QuantizeDequantizeQuantizeIsIdempotent) {
  Rng rng(13);
  std::vector<float> x(kN);
  for (float& v : x) v = float(rng.normal() * 0.02);
  const int64_t bs = GetParam().blocksize, zero_begin = 2 * bs, zero_end = 3 * bs;
  std::fill(x.begin() + zero_begin, x.begin() + std::min(kN, zero_end), 0.0f);  // an all-zero block
  const QuantizedTensor q1 = quantize(tensor_of(x), options());
  const Tensor d1 = dequantize(q1);
  const QuantizedTensor q2 = quantize(d1, options());
  for (int64_t i = 0; i < kN; ++i) {
    const int c1 = code_at(q1, i), c2 = code_at(q2, i);
    if (q1.type == QuantType::FP4 && c1 == 0b1000) ASSERT_EQ(c2, 0) << "element " << i;
    else ASSERT_EQ(c2, c1) << "element " << i;
  }
  QuantOptions plain = options();
  plain.double_quant = false;
  const std::vector<float> m2 = quantize(d1, plain).absmax.to_floats(), m1 = fp32_absmax(q1);
  for (int64_t b = 0; b < q1.blocks(); ++b) {
    const bool zero_block = b * bs >= zero_begin && b * bs < zero_end;
    EXPECT_EQ(m2[size_t(b)], zero_block ? 0.0f : m1[size_t(b)]) << "fp32 absmax of block " << b;
  }
  if (!q1.nested) {
    EXPECT_EQ(bits(q2.absmax.to_floats()), bits(q1.absmax.to_floats()));
    EXPECT_EQ(bits(dequantize(q2).to_floats()), bits(d1.to_floats())) << "second dequantization";
  }
}

// Sizes that are not a multiple of the blocksize are not padded: the last block is short,
// its absmax the largest |x| of its own elements, and the arrays hold exactly
// ceil(n / blocksize) scales and (n + 1) / 2 bytes. For an odd n the unused low nibble of
// the last byte holds the code of 0 (bitsandbytes pads the scaled values with one 0.0).
TEST_P(QuantMath, ShortLastBlockAndOddSize) {
  const int64_t bs = GetParam().blocksize;
  for (int64_t n : {int64_t(1), bs - 1, bs + 1, 3 * bs + 7}) {
    std::vector<float> x = weights(n, 14);
    x[size_t(n - 1)] = 1e3f;  // in the short last block only: it must not leak into another block
    const QuantizedTensor q = quantize(tensor_of(x), options());
    ASSERT_EQ(q.blocks(), (n + bs - 1) / bs) << n;
    EXPECT_EQ(q.packed.numel(), (n + 1) / 2) << n;
    const std::vector<float> m = fp32_absmax(quantize(tensor_of(x), {GetParam().type, bs, false}));
    float tail = 0, prev = 0;
    for (int64_t i = (q.blocks() - 1) * bs; i < n; ++i) tail = std::max(tail, std::fabs(x[size_t(i)]));
    for (int64_t i = std::max<int64_t>(0, (q.blocks() - 2) * bs); i < (q.blocks() - 1) * bs; ++i)
      prev = std::max(prev, std::fabs(x[size_t(i)]));
    EXPECT_EQ(m.back(), tail) << n;
    if (q.blocks() > 1) {
      EXPECT_EQ(m[m.size() - 2], prev) << n;
    }
    EXPECT_EQ(dequantize(q).numel(), n);
    if (n % 2 == 1) {
      const auto& code = code4(q.type);
      EXPECT_EQ(code[size_t(code_at(q, n))], 0.0f) << n << ": the padding nibble";
    }
  }
}

TEST_P(QuantMath, AllZeroBlocksDequantizeToExactlyZero) {
  const int64_t bs = GetParam().blocksize;
  std::vector<float> x = weights(5 * bs + 3, 15);
  std::fill(x.begin() + bs, x.begin() + 2 * bs, 0.0f);  // a full block
  std::fill(x.begin() + 5 * bs, x.end(), 0.0f);         // the short last one
  const std::vector<float> deq = dequantize(quantize(tensor_of(x), options())).to_floats();
  for (int64_t i = bs; i < 2 * bs; ++i) ASSERT_EQ(deq[size_t(i)], 0.0f) << i;
  for (int64_t i = 5 * bs; i < int64_t(x.size()); ++i) ASSERT_EQ(deq[size_t(i)], 0.0f) << i;
  // A tensor all zero: absmax 0 everywhere, and with double quantization a nested absmax of 0.
  const std::vector<float> zeros(size_t(2 * bs + 1), 0.0f);
  for (float v : dequantize(quantize(tensor_of(zeros), options())).to_floats()) ASSERT_EQ(v, 0.0f);
}

TEST(QuantMathErrors, BlocksizeMustBeAPowerOfTwoIn32To4096) {
  for (int64_t bs : {int64_t(0), int64_t(-64), int64_t(16), int64_t(48), int64_t(100), int64_t(8192)}) {
    try {
      check_blocksize(bs, "test");
      ADD_FAILURE() << "blocksize " << bs << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("not a power of two in [32, 4096]"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos) << e.what();
    }
    EXPECT_THROW(quantize(tensor_of({1.0f, 2.0f}), {QuantType::NF4, bs, true}), Error) << bs;
  }
  for (int64_t bs = 32; bs <= 4096; bs *= 2) EXPECT_NO_THROW(check_blocksize(bs, "test"));
  EXPECT_THROW(quantize(Tensor::empty({0})), Error);
  EXPECT_THROW(quantize(tensor_of({1.0f}).to(DType::BF16)), Error);
}

// The bytes a quantized tensor holds, as the header of quantized_tensor.h lays them out;
// at blocksize 64 with double quantization, 4 + 8/64 + 32/(64·256) bits per parameter plus
// the two code tables and the offset.
TEST(QuantMathSize, BytesAndBitsPerParameter) {
  const int64_t n = 64 * 256 * 8;
  const QuantizedTensor q = quantize(tensor_of(weights(n, 16)));
  const int64_t nb = n / 64, nb2 = nb / 256;
  EXPECT_EQ(q.nbytes(), n / 2 + nb + 4 * nb2 + 16 * 4 + 256 * 4 + 4);
  EXPECT_NEAR(q.bits_per_param(), 4.0 + 8.0 / 64 + 32.0 / (64 * 256) + 8.0 * (16 * 4 + 256 * 4 + 4) / n, 1e-12);
  const QuantizedTensor plain = quantize(tensor_of(weights(n, 16)), {QuantType::NF4, 64, false});
  EXPECT_EQ(plain.nbytes(), n / 2 + 4 * nb + 16 * 4);
}

// ---- each fast kernel against its naive reference, bit for bit ---------------------------

using kernels::quantize_detail::Simd;

std::vector<Simd> all_paths() { return {Simd::Avx512, Simd::Avx2, Simd::Scalar}; }

class DequantizePath : public ::testing::TestWithParam<Simd> {};
INSTANTIATE_TEST_SUITE_P(Simd, DequantizePath, ::testing::ValuesIn(all_paths()),
                         [](const auto& info) { return std::string(kernels::quantize_detail::simd_name(info.param)); });

// Ranges [begin, end) of every alignment: odd and even ends, inside one block, across
// blocks, shorter and longer than a SIMD step (32 elements), and one large enough (> 262144)
// for the OpenMP split; blocksizes 32, 64 and 4096; both code tables.
TEST_P(DequantizePath, EqualsTheReferenceBitForBitOnEveryRange) {
  const Simd path = GetParam();
  if (!kernels::quantize_detail::simd_supported(path))
    GTEST_SKIP() << kernels::quantize_detail::simd_name(path) << " is not supported by this CPU";
  const int64_t n = 300001;
  Rng rng(17);
  std::vector<uint8_t> packed(size_t((n + 1) / 2));
  for (auto& b : packed) b = uint8_t(rng.below(256));
  for (int64_t bs : {32, 64, 4096}) {
    std::vector<float> absmax(size_t((n + bs - 1) / bs));
    for (auto& a : absmax) a = float(rng.uniform() * 3.0);
    for (QuantType t : {QuantType::NF4, QuantType::FP4}) {
      const float* code = code4(t).data();
      const std::vector<std::pair<int64_t, int64_t>> ranges = {
          {0, n}, {1, n - 1}, {7, 8}, {0, 1}, {bs - 1, bs + 1}, {3, 35}, {5, 2 * bs + 3}, {bs, 2 * bs},
          {bs + 1, 5 * bs - 1}, {2, 66}, {n - 37, n}, {n - 1, n}, {12345, 12345 + 97}, {31, 31 + 33}};
      for (auto [begin, end] : ranges) {
        std::vector<float> fast(size_t(end - begin), -7.0f), ref(size_t(end - begin), 7.0f);
        kernels::quantize_detail::dequantize_4bit_with(path, fast.data(), packed.data(), absmax.data(), begin, end,
                                                       bs, code);
        kernels::dequantize_4bit_ref(ref.data(), packed.data(), absmax.data(), begin, end, bs, code);
        ASSERT_EQ(bits(fast), bits(ref)) << quant_type_name(t) << " bs " << bs << " [" << begin << ", " << end << ")";
      }
    }
  }
}

TEST(DequantizeDispatch, TakesTheBestPathThisCpuSupports) {
  const Simd best = kernels::quantize_detail::best_simd();
  EXPECT_TRUE(kernels::quantize_detail::simd_supported(best));
  EXPECT_TRUE(kernels::quantize_detail::simd_supported(Simd::Scalar));
  for (Simd p : all_paths()) {
    if (p == best) break;  // the list goes from the widest down: nothing wider is supported
    EXPECT_FALSE(kernels::quantize_detail::simd_supported(p)) << kernels::quantize_detail::simd_name(p);
  }
  std::cout << "dequantize_4bit runs on " << kernels::quantize_detail::simd_name(best) << "\n";
}

// The fast quantizers (binary search, OpenMP above 65536 elements) against the naive ones
// (a count of the midpoints below): random values, values exactly on every midpoint and one
// float either side (the tie rule), zeros, ±absmax, subnormals.
TEST(QuantizeKernels, FastEqualsReferenceBitForBit) {
  const int64_t n = 70001;
  std::vector<float> x = weights(n, 18);
  Rng rng(19);
  for (QuantType t : {QuantType::NF4, QuantType::FP4}) {
    std::array<float, 16> sorted = code4(t);
    std::sort(sorted.begin(), sorted.end());
    for (int j = 0; j + 1 < 16; ++j) {  // block 1 (of 64) has absmax 1: its values are the scaled values
      const float mid = (sorted[j] + sorted[j + 1]) / 2.0f;
      x[64 + 3 * j] = mid;
      x[64 + 3 * j + 1] = std::nextafter(mid, 2.0f);
      x[64 + 3 * j + 2] = std::nextafter(mid, -2.0f);
    }
    x[127] = 1.0f;
    std::fill(x.begin() + 128, x.begin() + 192, 0.0f);
    for (int64_t i = 192; i < 256; ++i) x[size_t(i)] = float(rng.normal() * 1e-40);
    for (int64_t bs : {32, 64, 4096}) {
      const int64_t nb = (n + bs - 1) / bs;
      std::vector<uint8_t> p1(size_t((n + 1) / 2), 0xAA), p2(size_t((n + 1) / 2), 0x55);
      std::vector<float> a1(static_cast<size_t>(nb)), a2(static_cast<size_t>(nb));
      kernels::quantize_4bit(p1.data(), a1.data(), x.data(), n, bs, code4(t).data());
      kernels::quantize_4bit_ref(p2.data(), a2.data(), x.data(), n, bs, code4(t).data());
      EXPECT_EQ(p1, p2) << quant_type_name(t) << " bs " << bs;
      EXPECT_EQ(bits(a1), bits(a2)) << quant_type_name(t) << " bs " << bs;
    }
  }
  // 8 bits: centred values of both signs, and the dynamic map's midpoints.
  const auto& map = dynamic_map_signed();
  x[1024] = 1.0f;  // the block [1024, 1280) of 256 has absmax 1: its values are the scaled values
  for (size_t j = 0; j + 1 < 256; ++j) x[1025 + j] = (map[j] + map[j + 1]) / 2.0f;
  for (int64_t bs : {256, 4096}) {
    const int64_t nb = (n + bs - 1) / bs;
    std::vector<uint8_t> q1(size_t(n), 1), q2(size_t(n), 2);
    std::vector<float> a1(static_cast<size_t>(nb)), a2(static_cast<size_t>(nb));
    kernels::quantize_8bit(q1.data(), a1.data(), x.data(), n, bs, map.data());
    kernels::quantize_8bit_ref(q2.data(), a2.data(), x.data(), n, bs, map.data());
    EXPECT_EQ(q1, q2) << "8-bit bs " << bs;
    EXPECT_EQ(bits(a1), bits(a2)) << "8-bit bs " << bs;
  }
}

}  // namespace
}  // namespace sllm::quant
