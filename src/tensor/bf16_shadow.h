// The bf16 shadow of an f32 weight: the bf16 copy a mixed-precision matmul reads, cached
// with the weight instead of cast again on every forward. The optimizer keeps it current:
// the CUDA AdamW writes each updated element's bf16 value into it in the same pass
// (kernels::cuda::adamw_update_multi) and then marks it current, so in steady training no
// separate cast runs at all (the cast of every weight every step was ~1.3 ms of a GPT-2
// 124M bf16 step on an H200).
//
// Never stale: the shadow records the weight's storage version (Storage::version(), bumped
// by every mutable access: an optimizer step, copy_from, a checkpoint load, a test poking
// values) and its own; bf16_shadow() re-casts whenever either moved since the shadow was
// last known to equal the weight rounded. A writer that updates the shadow itself (AdamW)
// calls mark_bf16_shadow_current() after writing both.
//
// Where: held by the weight's Storage (one slot), so it is freed with the weight and shared
// by every handle and view of it (detach(), reshape()). It shadows one view of the storage
// (offset, element count, trailing dims); a request for another view replaces it.
#pragma once
#include <cstdint>

#include "tensor/tensor.h"

namespace sllm {

struct Bf16Shadow {
  Tensor data;             // (rows, ...) bf16 on the weight's device; rows past the weight's are zero
  int64_t offset = 0;      // the shadowed view: its offset in elements in the weight's storage,
  Shape shape;             // and its shape
  uint64_t weight_version = 0;  // the weight storage's version when data last equaled it rounded
  uint64_t data_version = 0;    // data's own storage version then (a write into the shadow voids it)
};

// The bf16 copy of w (f32, CPU or CUDA, ndim >= 1), every element rounded to nearest even
// (f32_to_bf16, bit for bit kernels::cuda::cast_forward). With padded_rows > w.dim(0), the
// result has padded_rows rows (w's shape with dim 0 replaced) and the rows past w.dim(0) are
// zero (e.g. an LM head padded to a multiple of 128 rows for the GEMM tiles); 0 or w.dim(0)
// means no padding. The result is a handle on the cached buffer: valid (equal to w rounded)
// until w is next modified; ask again after that, never keep it across an optimizer step
// and expect old values (the step rewrites it in place, bumping its version, so autograd
// flags a graph that saved it). Casting on CUDA needs register_bf16_cast (ops::init_device).
Tensor bf16_shadow(const Tensor& w, int64_t padded_rows = 0);

// For writers that keep the shadow current themselves (the CUDA AdamW). The cached shadow
// of exactly w's view (valid or not, any padding) or an undefined Tensor when w has none:
// its first w.numel() elements correspond to w's.
Tensor existing_bf16_shadow(const Tensor& w);
// Records that w's shadow now equals w rounded (the caller rewrote every one of its first
// w.numel() elements after its last write to w): valid until either changes again.
void mark_bf16_shadow_current(const Tensor& w);

// The f32 -> bf16 cast of a device (n elements, device pointers), registered by the layer
// that owns the device's kernels (ops::init_device registers kernels::cuda::cast_forward):
// the tensor layer sits below the kernels.
using Bf16CastFn = void (*)(bf16* out, const float* inp, int64_t n);
void register_bf16_cast(Device device, Bf16CastFn fn);

}  // namespace sllm
