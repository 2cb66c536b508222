// Internals of the blocked SGEMM (kernels/cpu/gemm*.cpp), shared by the driver and the
// per-ISA micro-kernel files. Not part of kernels.h: only the driver and the tests use it.
//
// Dimension legend: M rows of op(A) and C, N columns of op(B) and C, K the reduction.
// MR x NR is the register tile of one micro-kernel call, KC the K slice packed at once,
// MC the rows of op(A) and NC the columns of op(B) a thread packs at once.
//
// The scheme is GotoBLAS / BLIS (Goto & van de Geijn, "Anatomy of High-Performance Matrix
// Multiplication", ACM TOMS 2008; Van Zee & van de Geijn, "BLIS", ACM TOMS 2015). Each
// thread owns a tile of C (gemm.cpp: choose_grid) and runs, on its own packing buffers:
//   for each MC block of its rows, for each KC slice of K:
//     pack op(A)[MC rows, KC] into micro-panels of MR rows      (lives in L2/L3)
//     for each NC block of its columns:
//       pack op(B)[KC, NC] into micro-panels of NR columns      (lives in L2)
//       for each MR micro-panel of A:                           (stays in L1)
//         for each NR micro-panel of B:                         (streams from L2)
//           C[MR, NR] (+)= alpha * Ap . Bp                      (micro-kernel, registers)
// Packed layouts (k-major inside a micro-panel, zero-padded to full MR / NR):
//   Ap: panel p holds rows [p*MR, p*MR+MR): Ap[p*MR*kc + k*MR + r]
//   Bp: panel q holds cols [q*NR, q*NR+NR): Bp[q*NR*kc + k*NR + c]
#pragma once
#include <cstdint>

namespace sllm::kernels::gemm_detail {

// Packs rows [i0, i0+rows) x k-range [p0, p0+kc) of op(X) into ceil(rows / width)
// consecutive micro-panels of `width` rows each (zero-padding the last one):
// dst[(r / width) * width * kc + k * width + r % width] = op(X)[i0 + r][p0 + k].
// op(X)[i][k] is X[i*ld + k] when !trans, X[k*ld + i] when trans. The same routine packs
// op(A) (width MR) and op(B)ᵀ (width NR): op(B)[k][j] = (op(B)ᵀ)[j][k], so B is packed
// as "rows = columns of C" with the opposite trans flag.
using PackFn = void (*)(bool trans, const float* X, int64_t ld, int64_t i0, int64_t rows, int64_t p0,
                        int64_t kc, int width, float* dst);

// The micro-kernel: acc(MR, NR) = sum_k Ap[k*MR + r] * Bp[k*NR + c] over k in [0, kc),
// then C[r][c] = alpha * acc + beta * C[r][c] for r < mr, c < nr (beta == 0: C not read).
using MicroKernelFn = void (*)(int64_t kc, const float* Ap, const float* Bp, float* C, int64_t ldc,
                               int mr, int nr, float alpha, float beta);

// Skinny path for M <= Isa::skinny_max_m (e.g. one token at a time in inference): packing
// op(B) and filling a 14-row tile for 1 row would cost more than the product itself, so
// this computes C[0:M, j0:j1] straight from the unpacked operands, reading B once.
// Same contract as sgemm on the column range [j0, j1).
using SkinnyFn = void (*)(bool trans_a, bool trans_b, int64_t M, int64_t j0, int64_t j1, int64_t K, float alpha,
                          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                          int64_t ldc);

struct Isa {
  const char* name;  // "avx512", "avx2", "scalar"
  int MR, NR;        // register tile
  int64_t KC, MC, NC;
  PackFn pack;
  MicroKernelFn kernel;
  SkinnyFn skinny = nullptr;  // optional
  int skinny_max_m = 0;
  int skinny_cols = 1;  // column-chunk granularity the threads split [0, N) into
};

// Each ISA file defines its table; the avx512/avx2 ones must only run where the CPU has it.
extern const Isa kIsaAvx512;
extern const Isa kIsaAvx2;
extern const Isa kIsaScalar;

// The portable packing routine (gemm_scalar.cpp), also used by the AVX2 path.
void pack_generic(bool trans, const float* X, int64_t ld, int64_t i0, int64_t rows, int64_t p0, int64_t kc,
                  int width, float* dst);

// Whether this CPU (and OS) can run an ISA's code.
bool isa_supported(const Isa& isa);

// The ISA sgemm picks on this CPU (the widest supported).
const Isa& best_isa();

// sgemm with an explicit ISA (tests use it to cover every path this CPU can run).
void sgemm_with_isa(const Isa& isa, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                    float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                    float* C, int64_t ldc);

}  // namespace sllm::kernels::gemm_detail
