// The code tables of 4-bit and 8-bit blockwise quantization, as bitsandbytes defines them
// (bitsandbytes/functional.py get_4bit_type and create_dynamic_map), so that codes written
// here mean the same numbers there.
//  - NF4 (Dettmers et al. 2023, "QLoRA", section 3 and appendix E): 16 values, the quantiles
//    of N(0, 1) rescaled to [-1, 1], asymmetric so that 0 is exactly representable:
//    8 quantiles for the positive half, 7 for the negative, plus 0.
//  - FP4 (bitsandbytes' 1 sign, 2 exponent, 1 mantissa bits), normalized by its largest value
//    (12): a second 4-bit type, in bitsandbytes' bit order (not sorted).
//  - The signed dynamic map (Dettmers 2015, "8-Bit Approximations for Parallelism in Deep
//    Learning"): 256 values whose exponent bits shrink as the fraction bits grow, used for
//    the double quantization of the NF4 block scales.
#pragma once
#include <array>
#include <string>

namespace sllm::quant {

enum class QuantType { NF4, FP4 };

// "nf4" / "fp4", and back (a sllm::Error with a hint for anything else).
std::string quant_type_name(QuantType type);
QuantType parse_quant_type(const std::string& name);

// The 16 values indexed by a 4-bit code.
const std::array<float, 16>& code4(QuantType type);
// The 256 sorted values of bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7,
// total_bits=8), computed the way it computes them (see codebooks.cpp).
const std::array<float, 256>& dynamic_map_signed();

// The largest gap between neighbouring sorted code values: a value x in a block of absmax
// m is off by at most m·gap/2 after dequantization (tests/quant derive the bound).
float largest_gap(QuantType type);

}  // namespace sllm::quant
