// Blockwise 4-bit (NF4 / FP4) and 8-bit dequantization on the GPU (QLoRA, Dettmers et al.
// 2023): the frozen base weight is turned back into numbers in a bf16 (or fp32) workspace
// right before its cuBLAS GEMM, twice per Linear per step, so the 4-bit kernel is a hot path.
// kernels/cpu/quantize.cpp is the CPU twin; kernels/kernels.h states the contract.
// Legend: i a global element index in [begin, end); blocksize elements per absmax (a power
// of two; shift = log2 blocksize); q a code index (0..15 or 0..255); P elements per 16-byte
// store (4 fp32 or 8 bf16), read from P / 2 packed bytes.
//
// Formula lines (the CPU's): value = code[q(i)] * absmax[i / blocksize], one fp32 product;
// for 8 bits out = (code[q[i]] * absmax[i / blocksize]) + offset, the product rounded before
// the add (mul_rn / add_rn below: nvcc would contract the pair into an FMA by default, and so
// would GCC in the simulator). bf16 outputs round that same fp32 product once, to nearest
// even, bit for bit f32_to_bf16.
//
// The 4-bit kernel is a pure stream (n / 2 bytes in, 2n or 4n bytes out): each thread turns
// P / 2 bytes (one 2- or 4-byte load) into P outputs written with one 16-byte store, so a
// warp writes 512 contiguous bytes per instruction. The 16 code values sit in shared memory
// (16 floats in 16 different banks: any mix of indices across a warp is one conflict-free
// access); a run of P elements lies in one quantization block whenever blocksize >= P, so
// its absmax is one load (an L1 hit for the other threads of the block). The run [i0, i1)
// of whole P-element packs has its destination 16-byte aligned; the few elements outside it
// (an odd begin or end, a range shorter than P, or a destination whose alignment cannot
// match the packs at all) are done one by one by the same launch.
#include <bit>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "kernels/cuda/element.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pack.cuh"
#include "kernels/cuda_kernels.h"

namespace sllm::kernels::cuda {
namespace {

// ---- one-rounding arithmetic and stores ---------------------------------------------------

// One rounding per operation: the 8-bit path's product is kept apart from its add.
#if SLLM_CUDA_SIM
__device__ inline float mul_rn(float a, float b) {
  volatile float product = a * b;  // stored as a float: nothing can fuse it into the add
  return product;
}
__device__ inline float add_rn(float a, float b) { return a + b; }
#else
__device__ inline float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ inline float add_rn(float a, float b) { return __fadd_rn(a, b); }
#endif

// The code index of element i: byte i / 2, the high nibble for an even i.
__device__ inline int nibble(const uint8_t* packed, int64_t i) {
  return (packed[i >> 1] >> ((i & 1) ? 0 : 4)) & 0xF;
}

// Two fp32 values rounded to nearest even as one bf16x2 word, a in the low half (the lower
// address). On a GPU one cvt.rn.bf16x2.f32, which gives f32_to_bf16's bits for every input
// but NaN; a NaN takes element.cuh's integer rounding, which keeps its payload as the CPU does.
__device__ inline uint32_t bf16x2_bits(float a, float b) {
#if !SLLM_CUDA_SIM
  if (!isnan(a) && !isnan(b)) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    uint32_t u;
    memcpy(&u, &h, sizeof(u));
    return u;
  }
#endif
  const __nv_bfloat16 lo = from_float<__nv_bfloat16>(a), hi = from_float<__nv_bfloat16>(b);
  uint16_t l, h;
  memcpy(&l, &lo, sizeof(l));
  memcpy(&h, &hi, sizeof(h));
  return uint32_t(l) | (uint32_t(h) << 16);
}

// One 16-byte store of P outputs at a 16-byte aligned dst.
__device__ inline void store16(float* dst, const float (&v)[4]) {
  Pack<float, 4> p;
#pragma unroll
  for (int k = 0; k < 4; ++k) p.v[k] = v[k];
  store_pack<4>(dst, 0, p);
}
__device__ inline void store16(__nv_bfloat16* dst, const float (&v)[8]) {
  Pack<uint32_t, 4> p;
#pragma unroll
  for (int k = 0; k < 4; ++k) p.v[k] = bf16x2_bits(v[2 * k], v[2 * k + 1]);
  store_pack<4>(reinterpret_cast<uint32_t*>(dst), 0, p);
}

// ---- kernels ------------------------------------------------------------------------------

// out (end - begin) = code[q(i)] * absmax[i >> shift], i in [begin, end). Packs: elements
// [i0 + k P, i0 + k P + P) for k < packs (whole bytes, one 16-byte store each) go to
// out_packs (P) = out + (i0 - begin), 16-byte aligned; edges: the `head` elements
// [begin, i0), then [i0 + packs P, end). Grid-stride over both. (out_packs is its own
// argument because nvcc 13 split the store into four 4-byte ones when it was addressed as
// out + (i - begin): only a pointer offset by k P from a parameter kept the 16-byte store.)
template <class T>
__global__ void dequantize_4bit_kernel(T* out, T* out_packs, const uint8_t* packed, const float* absmax,
                                       int64_t begin, int64_t i0, int64_t packs, int64_t head, int64_t edges,
                                       int shift, const float* code) {
  constexpr int P = 16 / int(sizeof(T));
  using Bytes = std::conditional_t<P == 8, uint32_t, uint16_t>;  // the P / 2 bytes of a pack
  __shared__ float code_s[16];
  if (threadIdx.x < 16) code_s[threadIdx.x] = code[threadIdx.x];
  __syncthreads();

  const int64_t first = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  const bool one_scale = (int64_t(1) << shift) >= P;  // a pack never straddles two blocks then
  for (int64_t k = first; k < packs; k += stride) {
    const int64_t i = i0 + k * P;
    const Bytes bytes = __ldg(reinterpret_cast<const Bytes*>(packed + (i >> 1)));
    float v[P];
    if (one_scale) {
      const float scale = __ldg(absmax + (i >> shift));
#pragma unroll
      for (int j = 0; j < P / 2; ++j) {
        const unsigned b = unsigned(bytes >> (8 * j)) & 0xFFu;  // little-endian: byte j of the pack
        v[2 * j] = code_s[b >> 4] * scale;
        v[2 * j + 1] = code_s[b & 0xFu] * scale;
      }
    } else {  // blocksize 2 or 4: a scale per byte (both nibbles of a byte share a block)
#pragma unroll
      for (int j = 0; j < P / 2; ++j) {
        const unsigned b = unsigned(bytes >> (8 * j)) & 0xFFu;
        const float scale = __ldg(absmax + ((i + 2 * j) >> shift));
        v[2 * j] = code_s[b >> 4] * scale;
        v[2 * j + 1] = code_s[b & 0xFu] * scale;
      }
    }
    store16(out_packs + k * P, v);
  }

  const int64_t tail = i0 + packs * P;  // edges past the head start here
  for (int64_t e = first; e < edges; e += stride) {
    const int64_t i = e < head ? begin + e : tail + (e - head);
    out[i - begin] = from_float<T>(code_s[nibble(packed, i)] * absmax[i >> shift]);
  }
}

// out (end - begin) = code[q[i]] * absmax[i >> shift] + offset, i in [begin, end): two
// roundings. Not a hot path (it undoes the double quantization of the 4-bit scales: n / 64
// elements), so one element per thread, the 256 code values in shared memory.
__global__ void dequantize_8bit_kernel(float* out, const uint8_t* q, const float* absmax, int64_t begin, int64_t n,
                                       int shift, const float* code, float offset) {
  __shared__ float code_s[256];
  for (int k = threadIdx.x; k < 256; k += blockDim.x) code_s[k] = code[k];
  __syncthreads();
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = begin + e;
    const float v = mul_rn(code_s[q[i]], absmax[i >> shift]);  // rounded here: kept apart from the add
    out[e] = add_rn(v, offset);
  }
}

// ---- launchers ----------------------------------------------------------------------------

// The range, the blocksize (a power of two >= min_blocksize, so i / blocksize is a shift) and
// the pointers of a non-empty range; returns log2 blocksize.
int check_args(const char* op, int64_t begin, int64_t end, int64_t blocksize, int64_t min_blocksize,
               std::initializer_list<const void*> ptrs) {
  SLLM_CHECK(begin >= 0 && end >= begin, str(op, ": bad element range [", begin, ", ", end, ")"),
             "the range needs 0 <= begin <= end (elements of the quantized tensor)");
  SLLM_CHECK(blocksize >= min_blocksize && std::has_single_bit(uint64_t(blocksize)),
             str(op, ": blocksize ", blocksize, " is not a power of two >= ", min_blocksize),
             "quantization blocks are powers of two (bitsandbytes: 32 ... 4096 for 4 bits, 256 for the nested scales)");
  if (end > begin)
    for (const void* p : ptrs) SLLM_CHECK(p != nullptr, str(op, ": null buffer"), "pass device buffers for a non-empty range");
  return std::countr_zero(uint64_t(blocksize));
}

template <class T>
void launch_4bit(T* out, const uint8_t* packed, const float* absmax, int64_t begin, int64_t end, int64_t blocksize,
                 const float* code) {
  const int shift = check_args("dequantize_4bit", begin, end, blocksize, 2, {out, packed, absmax, code});
  if (end == begin) return;
  constexpr int64_t P = 16 / int64_t(sizeof(T));
  // The packs start at the first multiple of P in [begin, end) (whole bytes, within one block
  // when blocksize >= P) if the destination is 16-byte aligned there and the source bytes are
  // aligned for their 2- or 4-byte load; otherwise every element is an edge.
  int64_t i0 = end, packs = 0;
  const int64_t p0 = (begin + P - 1) / P * P;
  const bool aligned = reinterpret_cast<uintptr_t>(out + (p0 - begin)) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(packed) % uintptr_t(P / 2) == 0;
  if (p0 < end && aligned) {
    i0 = p0;
    packs = (end - p0) / P;
  }
  const int64_t head = i0 - begin, edges = head + (end - (i0 + packs * P));
  SLLM_LAUNCH(grid_for(packs + edges), kThreads, 0, dequantize_4bit_kernel<T>)(
      out, out + (i0 - begin), packed, absmax, begin, i0, packs, head, edges, shift, code);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

// ---- validated entries --------------------------------------------------------------------

void dequantize_4bit(float* out, const uint8_t* packed, const float* absmax, int64_t begin, int64_t end,
                     int64_t blocksize, const float* code) {
  launch_4bit(out, packed, absmax, begin, end, blocksize, code);
}

void dequantize_4bit(bf16* out, const uint8_t* packed, const float* absmax, int64_t begin, int64_t end,
                     int64_t blocksize, const float* code) {
  launch_4bit(device_ptr(out), packed, absmax, begin, end, blocksize, code);
}

void dequantize_8bit(float* out, const uint8_t* q, const float* absmax, int64_t begin, int64_t end,
                     int64_t blocksize, const float* code, float offset) {
  const int shift = check_args("dequantize_8bit", begin, end, blocksize, 1, {out, q, absmax, code});
  if (end == begin) return;
  SLLM_LAUNCH(grid_for(end - begin), kThreads, 0, dequantize_8bit_kernel)(out, q, absmax, begin, end - begin, shift,
                                                                          code, offset);
  SLLM_CUDA_CHECK_LAUNCH();
}

}  // namespace sllm::kernels::cuda
