// ggml tensor types and their dequantization to f32, for the GGUF reader (io/gguf.h).
// Depends only on core, so the tokenizer layer can read GGUF files too.
//
// A ggml tensor of a quantized type is a sequence of blocks; each block packs `block_size`
// consecutive elements of a row (ne[0] is always a multiple of block_size) into
// `type_size` bytes. The block layouts are ggml's, from ggml/src/ggml-common.h (the
// block_q4_0, block_q4_1, block_q5_0, block_q5_1, block_q8_0, block_q4_K, block_q5_K and
// block_q6_K structs) and the dequantization formulas from ggml/src/ggml-quants.c
// (dequantize_row_q4_0, ..., dequantize_row_q6_K), both in github.com/ggml-org/ggml.
// All multi-byte fields are little endian; ggml_half is IEEE binary16.
//
// Every type has two kernels with the same result, bit for bit:
//   dequantize_<type>      the fast one: the loop structure of ggml-quants.c (a block's
//                          scales decoded once, two nibbles per byte), OpenMP over blocks
//                          in dequantize() below;
//   dequantize_<type>_ref  the spec-literal one: element i of a block is decoded on its
//                          own, straight from the struct's field definitions, with no
//                          shared state between elements.
// The two do the same float operations in the same order (a scale times a small integer,
// then minus/plus an offset), so tests compare them bit for bit on random blocks. The
// file is compiled with -ffp-contract=off (CMakeLists.txt) so `d * q + m` is never fused
// into one FMA: fused, it would differ from ggml's and NumPy's rounding (gguf-py's
// quants.py, our golden) in the last bit.
#pragma once
#include <cstddef>
#include <cstdint>

namespace sllm::io {

// ggml_type ids as stored in GGUF tensor infos (ggml/include/ggml.h, enum ggml_type;
// the same numbers as gguf-py's GGMLQuantizationType). Gaps are ids ggml retired.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40, Q1_0 = 41,
};

struct GgmlTypeInfo {
  const char* name;    // "Q4_K", as ggml_type_name() spells it
  int64_t block_size;  // elements per block (1 for plain types)
  size_t type_size;    // bytes per block
  bool dequantizable;  // sllm has a kernel for it
};

// nullptr when `id` is no ggml type we know (the file is newer than us, or corrupt).
const GgmlTypeInfo* ggml_type_info(uint32_t id);
// "Q4_K", or "type 123" for an id we do not know.
const char* ggml_type_name(GgmlType type);
// The types dequantize() supports, comma-separated, for error hints.
const char* ggml_dequantizable_types();

// Dequantize `n` elements (a multiple of the type's block size) at `src` into `dst` (n floats).
// sllm::Error for a type without a kernel. Parallel over blocks (OpenMP); the result does
// not depend on the thread count.
void dequantize(GgmlType type, const uint8_t* src, float* dst, int64_t n);
// The same through the spec-literal reference kernels, single-threaded (tests).
void dequantize_ref(GgmlType type, const uint8_t* src, float* dst, int64_t n);

// IEEE binary16 / bfloat16 bits -> f32 (exact). Our own here: io must not depend on tensor.
float gguf_f16_to_f32(uint16_t h);
float gguf_bf16_to_f32(uint16_t h);

// Per-type kernels over `nb` whole blocks: `src` holds nb * type_size bytes, `dst` receives
// nb * block_size floats. Exposed so tests can pair each fast kernel with its reference.
void dequantize_f32(const uint8_t* src, float* dst, int64_t nb);
void dequantize_f32_ref(const uint8_t* src, float* dst, int64_t nb);
void dequantize_f16(const uint8_t* src, float* dst, int64_t nb);
void dequantize_f16_ref(const uint8_t* src, float* dst, int64_t nb);
void dequantize_bf16(const uint8_t* src, float* dst, int64_t nb);
void dequantize_bf16_ref(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q8_0(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q8_0_ref(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q4_0(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q4_0_ref(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q4_1(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q4_1_ref(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q5_0(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q5_0_ref(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q5_1(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q5_1_ref(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q4_k(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q4_k_ref(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q5_k(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q5_k_ref(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q6_k(const uint8_t* src, float* dst, int64_t nb);
void dequantize_q6_k_ref(const uint8_t* src, float* dst, int64_t nb);

}  // namespace sllm::io
