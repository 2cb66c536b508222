// Internals of kernels/cpu/quantize.cpp that the tests reach, as gemm_internal.h is for the
// GEMM: the SIMD path of the 4-bit dequantization is picked once at run time, so a test
// forces each path this CPU supports and compares it with dequantize_4bit_ref
// (tests/quant/test_quant_math.cpp). Not part of kernels.h.
#pragma once
#include <cstdint>

namespace sllm::kernels::quantize_detail {

enum class Simd { Avx512, Avx2, Scalar };

Simd best_simd();                 // the path dequantize_4bit takes on this CPU
bool simd_supported(Simd path);   // whether this CPU can run `path`
const char* simd_name(Simd path); // "avx512", "avx2", "scalar"

// dequantize_4bit (kernels.h) on the given path; `path` must be supported.
void dequantize_4bit_with(Simd path, float* out, const uint8_t* packed, const float* absmax, int64_t begin,
                          int64_t end, int64_t blocksize, const float* code);

}  // namespace sllm::kernels::quantize_detail
