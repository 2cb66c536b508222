// The GPU's 4-bit and 8-bit dequantization (kernels/cuda/quantize.cu, QLoRA: issue 10)
// against the CPU kernels of kernels/cpu/quantize.cpp on the same random codes and scales.
// Every comparison is bitwise: each output is one fp32 product (for 8 bits, a product then a
// separate add), so the GPU must give the CPU's bits, the sign of zero included (FP4 has a
// -0 code; absmax-0 blocks turn every negative code into -0); the bf16 output is that same
// product rounded once (tensor/dtype.h's f32_to_bf16). The ranges cover the kernel's paths:
// 16-byte packs with and without head and tail elements, odd begin and end, ranges shorter
// than a pack, destinations and sources whose alignment rules the packs out, blocksizes
// smaller than a pack (a scale per byte) up to 4096, and the empty range.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "kernels/kernels.h"
#include "tensor/dtype.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

namespace cpu = sllm::kernels;

// bitsandbytes' NF4 and FP4 tables, as src/quant/codebooks.cpp builds them (test_cuda does
// not link the quant layer; the kernels take any 16 floats). NF4 is sorted with code 7
// exactly 0; FP4 is in bit order, with +0 and -0.
const std::array<float, 16> kNf4 = {
    -1.0f,                 -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f,  0.16093020141124725f, 0.24611230194568634f,  0.33791524171829224f,
    0.44070982933044434f,  0.5626170039176941f,  0.7229568362236023f,   1.0f};
std::array<float, 16> fp4_table() {
  const float raw[16] = {0, 0.0625f, 8, 12, 4, 6, 2, 3, -0.0f, -0.0625f, -8, -12, -4, -6, -2, -3};
  std::array<float, 16> t{};
  for (int i = 0; i < 16; ++i) t[i] = raw[i] / 12.0f;
  return t;
}

std::vector<uint8_t> random_bytes(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(static_cast<size_t>(n));
  for (auto& b : v) b = uint8_t(rng() & 0xFF);
  return v;
}

// nb block scales in (0, 3), every fifth block 0 (an all-zero block's absmax) and one large.
std::vector<float> random_absmax(int64_t nb, uint32_t seed) {
  std::vector<float> a = uniform(nb, seed, 0.0f, 3.0f);
  for (int64_t b = 0; b < nb; b += 5) a[size_t(b)] = 0.0f;
  if (nb > 3) a[3] = 6.5e4f;
  return a;
}

std::vector<bf16> to_bf16(const std::vector<float>& v) {
  std::vector<bf16> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = bf16{f32_to_bf16(v[i])};
  return out;
}

class CudaQuantize : public CudaTest {};

// One quantized tensor of n elements on both sides, and the checks of a range [begin, end)
// written `out_shift` elements past a 256-byte aligned allocation, read from the packed
// bytes `src_shift` bytes past theirs (the tensor then starts at that byte).
struct Case4 {
  int64_t n, blocksize;
  std::array<float, 16> code;
  std::vector<uint8_t> packed;
  std::vector<float> absmax;

  Case4(int64_t n_, int64_t blocksize_, const std::array<float, 16>& code_, uint32_t seed)
      : n(n_), blocksize(blocksize_), code(code_), packed(random_bytes((n_ + 1) / 2 + 1, seed)),
        absmax(random_absmax((n_ + blocksize_ - 1) / blocksize_, seed + 1)) {}

  void check(int64_t begin, int64_t end, int64_t out_shift, int64_t src_shift, const std::string& what) const {
    const int64_t len = end - begin;
    const uint8_t* host_packed = packed.data() + src_shift;
    std::vector<float> want(static_cast<size_t>(len));
    cpu::dequantize_4bit_ref(want.data(), host_packed, absmax.data(), begin, end, blocksize, code.data());
    std::vector<float> fast(static_cast<size_t>(len));
    cpu::dequantize_4bit(fast.data(), host_packed, absmax.data(), begin, end, blocksize, code.data());
    expect_bitwise(fast, want, what + " (CPU fast vs ref)");

    DeviceArray<uint8_t> packed_d(packed);
    DeviceArray<float> absmax_d(absmax), code_d(std::vector<float>(code.begin(), code.end()));
    DeviceArray<float> out_f32{size_t(len + out_shift)};
    dequantize_4bit(out_f32.get() + out_shift, packed_d.get() + src_shift, absmax_d.get(), begin, end, blocksize,
                    code_d.get());
    const std::vector<float> got = out_f32.host();
    expect_bitwise(std::vector<float>(got.begin() + out_shift, got.end()), want, what + " f32");

    DeviceArray<bf16> out_bf16{size_t(len + out_shift)};
    dequantize_4bit(out_bf16.get() + out_shift, packed_d.get() + src_shift, absmax_d.get(), begin, end, blocksize,
                    code_d.get());
    const std::vector<bf16> got16 = out_bf16.host();
    expect_bitwise(std::vector<bf16>(got16.begin() + out_shift, got16.end()), to_bf16(want), what + " bf16");
  }
};

TEST_F(CudaQuantize, Dequantize4bitMatchesTheCpuBitForBit) {
  const std::array<float, 16> fp4 = fp4_table();
  uint32_t seed = 100;
  for (const auto& [name, code] : {std::pair{"nf4", kNf4}, std::pair{"fp4", fp4}})
    for (const int64_t blocksize : {int64_t(2), int64_t(4), int64_t(32), int64_t(64), int64_t(256), int64_t(4096)})
      for (const int64_t n : {int64_t(1), int64_t(7), int64_t(64), 3 * blocksize + 5, 2 * blocksize + 37, int64_t(9001)}) {
        const Case4 c(n, blocksize, code, seed++);
        const std::string what = std::string(name) + " blocksize " + std::to_string(blocksize) + " n " + std::to_string(n);
        c.check(0, n, 0, 0, what + " [0, n)");  // the whole tensor: QLoRA's call
        if (n > 1) c.check(1, n, 0, 0, what + " [1, n)");
        if (n > 20) {
          c.check(3, n - 2, 0, 0, what + " odd begin, odd end");
          c.check(n / 2 - 3, n / 2 + 2, 0, 0, what + " 5 in the middle");
          // Destination element k + 5 holds element 5 + k: a multiple of 8 lands on a 16-byte
          // boundary again, so packs run, after a 3-element head.
          c.check(5, n - 1, 5, 0, what + " begin 5 into a 5-element shifted destination");
          c.check(0, n, 1, 0, what + " destination off by one element (no packs)");
          c.check(2, n - 3, 0, 1, what + " source one byte in (no packs)");
        }
        c.check(n - 1, n, 0, 0, what + " last element");
        c.check(n / 2, n / 2, 0, 0, what + " empty");
      }
}

TEST_F(CudaQuantize, Dequantize8bitMatchesTheCpuBitForBit) {
  // A sorted table of 256 values like the signed dynamic map: 0, +-1 and values of every
  // magnitude from 1e-6 up (the kernel only looks values up).
  std::vector<float> code = uniform(256, 31, -1.0f, 1.0f);
  for (int k = 0; k < 256; k += 3) code[size_t(k)] *= 1e-4f;
  code[0] = 0.0f, code[1] = 1.0f, code[2] = -1.0f, code[3] = 1e-6f;
  std::sort(code.begin(), code.end());
  uint32_t seed = 300;
  for (const int64_t blocksize : {int64_t(1), int64_t(64), int64_t(256)})
    for (const int64_t n : {int64_t(1), int64_t(255), int64_t(3 * 256 + 7)})
      for (const float offset : {0.0f, 0.0123456f, -0.3757f}) {
        const std::vector<uint8_t> q = random_bytes(n, seed++);
        const std::vector<float> absmax = random_absmax((n + blocksize - 1) / blocksize, seed++);
        DeviceArray<uint8_t> q_d(q);
        DeviceArray<float> absmax_d(absmax), code_d(code);
        const std::string what = "blocksize " + std::to_string(blocksize) + " n " + std::to_string(n) + " offset " +
                                 std::to_string(offset);
        for (const auto& [begin, end] : {std::pair{int64_t(0), n}, std::pair{n / 3, n - n / 5}, std::pair{n, n}}) {
          std::vector<float> want(static_cast<size_t>(end - begin));
          cpu::dequantize_8bit(want.data(), q.data(), absmax.data(), begin, end, blocksize, code.data(), offset);
          DeviceArray<float> out_d{size_t(end - begin)};
          dequantize_8bit(out_d.get(), q_d.get(), absmax_d.get(), begin, end, blocksize, code_d.get(), offset);
          expect_bitwise(out_d.host(), want, what + " [" + std::to_string(begin) + ", " + std::to_string(end) + ")");
        }
      }
}

// ---- argument checks: raised on the host before anything reaches a GPU, so these run
// without one -----------------------------------------------------------------------------

TEST(CudaQuantizeArgs, BadArgumentsRaiseErrors) {
  float* f = nullptr;
  bf16* h = nullptr;
  const uint8_t* b = nullptr;
  EXPECT_THROW(dequantize_4bit(f, b, f, -1, 4, 64, f), Error);         // negative begin
  EXPECT_THROW(dequantize_4bit(h, b, f, 8, 4, 64, f), Error);          // end < begin
  EXPECT_THROW(dequantize_4bit(f, b, f, 0, 4, 48, f), Error);          // not a power of two
  EXPECT_THROW(dequantize_4bit(f, b, f, 0, 4, 1, f), Error);           // a byte would straddle two blocks
  EXPECT_THROW(dequantize_4bit(f, b, f, 0, 4, 64, f), Error);          // null buffers, non-empty range
  EXPECT_THROW(dequantize_8bit(f, b, f, 0, 4, 0, f, 0.0f), Error);     // blocksize 0
  EXPECT_THROW(dequantize_8bit(f, b, f, 3, 2, 256, f, 0.0f), Error);   // end < begin
  EXPECT_NO_THROW(dequantize_4bit(f, b, f, 4, 4, 64, f));              // empty: nothing touched
  EXPECT_NO_THROW(dequantize_8bit(f, b, f, 0, 0, 256, f, 0.0f));
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
