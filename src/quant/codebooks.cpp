#include "quant/codebooks.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace sllm::quant {

std::string quant_type_name(QuantType type) { return type == QuantType::NF4 ? "nf4" : "fp4"; }

QuantType parse_quant_type(const std::string& name) {
  if (name == "nf4") return QuantType::NF4;
  if (name == "fp4") return QuantType::FP4;
  fail(str("unknown 4-bit quantization type '", name, "'"), "use nf4 (QLoRA's NormalFloat) or fp4");
}

const std::array<float, 16>& code4(QuantType type) {
  // NF4: the float32 values of the QLoRA paper's appendix E (bitsandbytes' table), sorted,
  // code 7 exactly 0.
  static const std::array<float, 16> nf4 = {
      -1.0f,                 -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
      -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
      0.07958029955625534f,  0.16093020141124725f, 0.24611230194568634f,  0.33791524171829224f,
      0.44070982933044434f,  0.5626170039176941f,  0.7229568362236023f,   1.0f};
  // FP4: sign bit, two exponent bits, one mantissa bit; the values {0, 0.0625, 8, 12, 4, 6,
  // 2, 3} and their negatives in bit order, divided by the largest (12) in float32. Code 8
  // (sign bit set, zero) is +0.0: bitsandbytes' list spells it as the Python integer -0,
  // which is 0, so its table (and the quant_map it saves) holds +0.0 there.
  static const std::array<float, 16> fp4 = [] {
    const float raw[16] = {0, 0.0625f, 8, 12, 4, 6, 2, 3, 0.0f, -0.0625f, -8, -12, -4, -6, -2, -3};
    std::array<float, 16> t{};
    for (int i = 0; i < 16; ++i) t[i] = raw[i] / 12.0f;
    return t;
  }();
  return type == QuantType::NF4 ? nf4 : fp4;
}

const std::array<float, 256>& dynamic_map_signed() {
  static const std::array<float, 256> table = [] {
    // For i = 0..6 (7 exponent bits at most, 7 non-sign bits): 2^i + 1 boundaries evenly
    // spaced on [0.1, 1] and the 2^i means of neighbours, scaled by ±10^(i-6); then 0 and 1.
    // 2·(1 + 2 + ... + 64) + 2 = 256 values, no padding needed. Rounding follows the float32
    // tensors bitsandbytes builds them with: torch.linspace's fp32 step, each point one
    // rounding of start + step·k (from the end for the upper half), the means in fp32, and
    // the scale rounded to fp32 before the fp32 product.
    std::vector<float> data;
    for (int i = 0; i < 7; ++i) {
      const int steps = (1 << i) + 1;
      const float start = 0.1f, end = 1.0f;
      const float step = (end - start) / float(steps - 1);
      std::vector<float> boundary(steps);
      for (int k = 0; k < steps; ++k)
        boundary[k] = k < steps / 2 ? std::fma(step, float(k), start) : std::fma(-step, float(steps - k - 1), end);
      const float scale = float(std::pow(10.0, -6 + i));
      for (int sign = 1; sign >= -1; sign -= 2)
        for (int k = 0; k + 1 < steps; ++k) data.push_back(float(sign) * scale * ((boundary[k] + boundary[k + 1]) / 2.0f));
    }
    data.push_back(0.0f);
    data.push_back(1.0f);
    SLLM_ASSERT(data.size() == 256);
    std::sort(data.begin(), data.end());
    std::array<float, 256> t{};
    std::copy(data.begin(), data.end(), t.begin());
    return t;
  }();
  return table;
}

float largest_gap(QuantType type) {
  std::array<float, 16> sorted = code4(type);
  std::sort(sorted.begin(), sorted.end());
  float gap = 0.0f;
  for (int i = 0; i + 1 < 16; ++i) gap = std::max(gap, sorted[i + 1] - sorted[i]);
  return gap;
}

}  // namespace sllm::quant
