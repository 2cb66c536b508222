// Blockwise 4-bit (NF4 / FP4) and 8-bit quantization, bitsandbytes' layout and rounding
// (kernels.h states the contract; src/quant/README.md walks from the QLoRA paper to here).
// Dimension legend: n elements, blocksize elements per absmax, nb = ceil(n / blocksize)
// blocks; q a code index (0..15 or 0..255); s = x / absmax the scaled value in [-1, 1].
//
// Quantization runs once per weight (at load), so it is plain OpenMP over blocks with a
// binary search over the sorted midpoints. Dequantization is the hot path of QLoRA's
// forward and backward (every step dequantizes every frozen weight twice), so it has
// AVX-512 and AVX2 paths that keep the 16-entry table in registers and look codes up with
// a permute: no memory gather per element.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "kernels/cpu/quantize_internal.h"
#include "kernels/kernels.h"

namespace sllm::kernels {
using quantize_detail::Simd;
namespace {

// The sorted view of a code table: sorted[j] = code[order[j]], and the midpoints between
// neighbours, both rounded once in fp32 as bitsandbytes computes them
// ((code[order[:-1]] + code[order[1:]]) / 2 on float32 tensors).
template <int K>
struct SortedCode {
  std::array<int, K> order;
  std::array<float, K - 1> mid;

  explicit SortedCode(const float* code) {
    for (int j = 0; j < K; ++j) order[j] = j;
    // Stable: FP4's two zeros (codes 0 and 8, both +0.0 in bitsandbytes' table) compare
    // equal and keep their index order, as torch.argsort's stable CPU sort orders them; the
    // midpoint between them is 0, so 0 (and -0) takes code 0, and values just above 0 code 8.
    std::stable_sort(order.begin(), order.end(), [code](int a, int b) { return code[a] < code[b]; });
    for (int j = 0; j + 1 < K; ++j) mid[j] = (code[order[j]] + code[order[j + 1]]) / 2.0f;
  }

  // The code index for s: its sorted position is the count of midpoints strictly below s.
  int nearest(float s) const {
    int lo = 0, hi = K - 1;  // the answer is in [lo, hi]
    while (lo < hi) {
      const int m = (lo + hi) / 2;
      if (mid[m] < s) lo = m + 1;
      else hi = m;
    }
    return order[lo];
  }
  int nearest_ref(float s) const {
    int count = 0;
    for (int j = 0; j < K - 1; ++j) count += mid[j] < s;
    return order[count];
  }
};

// absmax of x[b0, b1), and the factor every element is multiplied by: fp32 1 / absmax with
// absmax floored at 1e-38 (bitsandbytes' clamp(min=1e-38): an all-zero block scales 0 to 0).
inline float block_absmax(const float* x, int64_t b0, int64_t b1) {
  float m = 0.0f;
  for (int64_t i = b0; i < b1; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}
inline float scaled(float x, float inv) { return std::clamp(x * inv, -1.0f, 1.0f); }

template <int K, bool kRef>
void quantize_blocks(const SortedCode<K>& sc, float* absmax, const float* x, int64_t n,
                     int64_t blocksize, auto&& store) {
  const int64_t nb = (n + blocksize - 1) / blocksize;
#pragma omp parallel for schedule(static) if (!kRef && n > 65536)
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t b0 = b * blocksize, b1 = std::min(n, b0 + blocksize);
    const float m = block_absmax(x, b0, b1);
    absmax[b] = m;
    const float inv = 1.0f / std::max(m, 1e-38f);
    for (int64_t i = b0; i < b1; ++i) {
      const float s = scaled(x[i], inv);
      store(i, kRef ? sc.nearest_ref(s) : sc.nearest(s));
    }
  }
}

template <bool kRef>
void quantize_4bit_impl(uint8_t* packed, float* absmax, const float* x, int64_t n, int64_t blocksize,
                        const float* code) {
  const SortedCode<16> sc(code);
  // Blocks hold an even number of elements (blocksize is a power of two >= 2), so each byte
  // belongs to one block and one thread: its high nibble is written first, then its low one.
  quantize_blocks<16, kRef>(sc, absmax, x, n, blocksize, [&](int64_t i, int q) {
    uint8_t& byte = packed[i / 2];
    if (i % 2 == 0) byte = uint8_t(q << 4);
    else byte = uint8_t(byte | q);
  });
  if (n % 2 == 1) {  // bitsandbytes pads the scaled vector with one 0.0 before packing
    packed[n / 2] = uint8_t(packed[n / 2] | (kRef ? sc.nearest_ref(0.0f) : sc.nearest(0.0f)));
  }
}

template <bool kRef>
void quantize_8bit_impl(uint8_t* q, float* absmax, const float* x, int64_t n, int64_t blocksize, const float* code) {
  const SortedCode<256> sc(code);
  quantize_blocks<256, kRef>(sc, absmax, x, n, blocksize, [&](int64_t i, int c) { q[i] = uint8_t(c); });
}

inline int nibble(const uint8_t* packed, int64_t i) { return i % 2 == 0 ? packed[i / 2] >> 4 : packed[i / 2] & 0xF; }

// Dequantizes the even-aligned run [i0, i1) of one block (scale = its absmax): 32 elements
// (16 bytes) per step. The bytes' high and low nibbles are interleaved back into element
// order (unpack), widened to 32-bit lanes and looked up in the table held in one register.
__attribute__((target("avx512f,avx512bw,avx512vl"))) int64_t run_avx512(float* out, const uint8_t* packed,
                                                                         int64_t i0, int64_t i1, float scale,
                                                                         const float* code) {
  const __m512 table = _mm512_loadu_ps(code);
  const __m512 vs = _mm512_set1_ps(scale);
  const __m128i low4 = _mm_set1_epi8(0x0F);
  int64_t i = i0;
  for (; i + 32 <= i1; i += 32) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + i / 2));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low4), lo = _mm_and_si128(bytes, low4);
    const __m128i first = _mm_unpacklo_epi8(hi, lo), second = _mm_unpackhi_epi8(hi, lo);  // element order
    const __m512 v0 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(first), table);
    const __m512 v1 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(second), table);
    _mm512_storeu_ps(out + (i - i0), _mm512_mul_ps(v0, vs));
    _mm512_storeu_ps(out + (i - i0) + 16, _mm512_mul_ps(v1, vs));
  }
  return i;
}

// AVX2 has an 8-entry permute: look up in both halves of the table and pick by bit 3.
__attribute__((target("avx2,fma"))) int64_t run_avx2(float* out, const uint8_t* packed, int64_t i0, int64_t i1,
                                                     float scale, const float* code) {
  const __m256 t_lo = _mm256_loadu_ps(code), t_hi = _mm256_loadu_ps(code + 8);
  const __m256 vs = _mm256_set1_ps(scale);
  const __m128i low4 = _mm_set1_epi8(0x0F);
  const __m256i seven = _mm256_set1_epi32(7);
  auto lookup = [&](__m128i idx8) {  // 8 indices in the low 8 bytes
    const __m256i idx = _mm256_cvtepu8_epi32(idx8);
    const __m256 a = _mm256_permutevar8x32_ps(t_lo, idx), b = _mm256_permutevar8x32_ps(t_hi, idx);
    const __m256 upper = _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, seven));
    return _mm256_mul_ps(_mm256_blendv_ps(a, b, upper), vs);
  };
  int64_t i = i0;
  for (; i + 32 <= i1; i += 32) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + i / 2));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low4), lo = _mm_and_si128(bytes, low4);
    const __m128i first = _mm_unpacklo_epi8(hi, lo), second = _mm_unpackhi_epi8(hi, lo);
    float* o = out + (i - i0);
    _mm256_storeu_ps(o, lookup(first));
    _mm256_storeu_ps(o + 8, lookup(_mm_srli_si128(first, 8)));
    _mm256_storeu_ps(o + 16, lookup(second));
    _mm256_storeu_ps(o + 24, lookup(_mm_srli_si128(second, 8)));
  }
  return i;
}

bool cpu_has(Simd path) {
  if (path == Simd::Avx512)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  if (path == Simd::Avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return true;
}
Simd simd_path() {
  static const Simd path = cpu_has(Simd::Avx512) ? Simd::Avx512 : cpu_has(Simd::Avx2) ? Simd::Avx2 : Simd::Scalar;
  return path;
}

// [i0, i1) within one block: the SIMD body on the even-aligned middle, scalar at the ends.
void dequantize_run(float* out, const uint8_t* packed, int64_t i0, int64_t i1, float scale, const float* code,
                    Simd path) {
  int64_t i = i0;
  if (i % 2 == 1 && i < i1) {
    out[0] = code[nibble(packed, i)] * scale;
    ++i;
  }
  if (path == Simd::Avx512) i = run_avx512(out + (i - i0), packed, i, i1, scale, code);
  else if (path == Simd::Avx2) i = run_avx2(out + (i - i0), packed, i, i1, scale, code);
  for (; i < i1; ++i) out[i - i0] = code[nibble(packed, i)] * scale;
}

}  // namespace

void quantize_4bit(uint8_t* packed, float* absmax, const float* x, int64_t n, int64_t blocksize, const float* code) {
  quantize_4bit_impl<false>(packed, absmax, x, n, blocksize, code);
}
void quantize_4bit_ref(uint8_t* packed, float* absmax, const float* x, int64_t n, int64_t blocksize,
                       const float* code) {
  quantize_4bit_impl<true>(packed, absmax, x, n, blocksize, code);
}
void quantize_8bit(uint8_t* q, float* absmax, const float* x, int64_t n, int64_t blocksize, const float* code) {
  quantize_8bit_impl<false>(q, absmax, x, n, blocksize, code);
}
void quantize_8bit_ref(uint8_t* q, float* absmax, const float* x, int64_t n, int64_t blocksize, const float* code) {
  quantize_8bit_impl<true>(q, absmax, x, n, blocksize, code);
}

namespace quantize_detail {
Simd best_simd() { return simd_path(); }
bool simd_supported(Simd path) { return cpu_has(path); }
const char* simd_name(Simd path) {
  return path == Simd::Avx512 ? "avx512" : path == Simd::Avx2 ? "avx2" : "scalar";
}
}  // namespace quantize_detail

void dequantize_4bit(float* out, const uint8_t* packed, const float* absmax, int64_t begin, int64_t end,
                     int64_t blocksize, const float* code) {
  quantize_detail::dequantize_4bit_with(simd_path(), out, packed, absmax, begin, end, blocksize, code);
}

void quantize_detail::dequantize_4bit_with(Simd path, float* out, const uint8_t* packed, const float* absmax,
                                           int64_t begin, int64_t end, int64_t blocksize, const float* code) {
  if (end <= begin) return;
  const int64_t first = begin / blocksize, last = (end - 1) / blocksize;
  // One block per iteration: a fixed partition, and each output element has one writer.
#pragma omp parallel for schedule(static) if (end - begin > 262144)
  for (int64_t b = first; b <= last; ++b) {
    const int64_t i0 = std::max(begin, b * blocksize), i1 = std::min(end, (b + 1) * blocksize);
    dequantize_run(out + (i0 - begin), packed, i0, i1, absmax[b], code, path);
  }
}

void dequantize_4bit_ref(float* out, const uint8_t* packed, const float* absmax, int64_t begin, int64_t end,
                         int64_t blocksize, const float* code) {
  for (int64_t i = begin; i < end; ++i) out[i - begin] = code[nibble(packed, i)] * absmax[i / blocksize];
}

void dequantize_8bit(float* out, const uint8_t* q, const float* absmax, int64_t begin, int64_t end, int64_t blocksize,
                     const float* code, float offset) {
  for (int64_t i = begin; i < end; ++i) {
    const float v = code[q[i]] * absmax[i / blocksize];  // rounded here: kept apart from the add
    out[i - begin] = v + offset;
  }
}

}  // namespace sllm::kernels
