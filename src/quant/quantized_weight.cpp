#include "quant/quantized_weight.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "kernels/kernels.h"
#if SLLM_HAVE_CUDA
#include "kernels/cuda_kernels.h"
#endif

namespace sllm::quant {

namespace {

int64_t rows_of(const Tensor& t) { return t.numel() / t.dim(-1); }

// The CPU workspace every QuantizedWeight shares: one tile at a time is alive (products run
// one after another), so one buffer of at most kTileElements floats bounds the cost of
// holding the base in 4 bits. The f32 scales of a tile's blocks sit beside it.
struct CpuWorkspace {
  std::vector<float> tile, scales;
};
CpuWorkspace& cpu_workspace() {
  static CpuWorkspace ws;
  return ws;
}

// Rows [r0, r1) of W dequantized into ws.tile ((r1 - r0), in): the scales of the blocks the
// rows touch first (double quantization undone), then the codes.
const float* dequantize_rows(const QuantizedTensor& q, int64_t r0, int64_t r1, CpuWorkspace& ws) {
  const int64_t in = q.shape[1], begin = r0 * in, end = r1 * in;
  const int64_t b0 = begin / q.blocksize, b1 = (end + q.blocksize - 1) / q.blocksize;
  ws.scales.resize(size_t(b1 - b0));
  ws.tile.resize(size_t(end - begin));
  block_absmax(q, b0, b1, ws.scales.data());
  // The kernel indexes scales by global block; give it the tile as a tensor of its own:
  // elements [begin, end) of the whole are elements [begin - b0·blocksize, ...) of the slice
  // that starts at block b0.
  const int64_t shift = b0 * q.blocksize;
  kernels::dequantize_4bit(ws.tile.data(), q.packed.data<uint8_t>() + shift / 2, ws.scales.data(), begin - shift,
                           end - shift, q.blocksize, q.quant_map.f32());
  return ws.tile.data();
}

int64_t tile_rows(const QuantizedTensor& q) {
  return std::max<int64_t>(1, QuantizedWeight::kTileElements / q.shape[1]);
}

#if SLLM_HAVE_CUDA
namespace cu = kernels::cuda;

// The whole W dequantized on the GPU, in `dtype` (f32 or bf16), from a caching-allocator
// workspace: the f32 scales first (double quantization undone), then the codes.
Tensor dequantize_on_gpu(const QuantizedTensor& q, DType dtype) {
  const int64_t n = q.numel(), nb = q.blocks();
  Tensor scales = q.absmax;
  if (q.nested) {
    scales = Tensor::empty({nb}, DType::F32, Device::CUDA);
    cu::dequantize_8bit(scales.mutable_f32(), q.absmax.data<uint8_t>(), q.nested_absmax.f32(), 0, nb,
                        q.nested_blocksize, q.nested_quant_map.f32(), q.offset);
  }
  Tensor w = Tensor::empty(q.shape, dtype, Device::CUDA);
  if (dtype == DType::BF16)
    cu::dequantize_4bit(w.mutable_data<bf16>(), q.packed.data<uint8_t>(), scales.f32(), 0, n, q.blocksize,
                        q.quant_map.f32());
  else
    cu::dequantize_4bit(w.mutable_f32(), q.packed.data<uint8_t>(), scales.f32(), 0, n, q.blocksize, q.quant_map.f32());
  return w;
}
#endif

}  // namespace

QuantizedWeight::QuantizedWeight(QuantizedTensor q) : q_(std::move(q)) {
  SLLM_CHECK(q_.shape.size() == 2, str("a quantized Linear weight must be 2-D, got ", shape_str(q_.shape)),
             "only Linear weights (out, in) are quantized");
}

void QuantizedWeight::forward(const Tensor& x, Tensor& y, float beta) const {
  const int64_t N = rows_of(x), in = in_features(), out = out_features();
  if (N == 0) return;
  if (device() == Device::CPU) {
    CpuWorkspace& ws = cpu_workspace();
    const int64_t step = tile_rows(q_);
    for (int64_t r0 = 0; r0 < out; r0 += step) {  // y[:, r0:r1] = x · W[r0:r1]ᵀ + beta·y[:, r0:r1]
      const int64_t r1 = std::min(out, r0 + step);
      const float* tile = dequantize_rows(q_, r0, r1, ws);  // (r1 - r0, in)
      kernels::sgemm(false, true, N, r1 - r0, in, 1.0f, x.f32(), in, tile, in, beta, y.mutable_f32() + r0, out);
    }
    return;
  }
#if SLLM_HAVE_CUDA
  const Tensor w = dequantize_on_gpu(q_, x.dtype());  // (out, in)
  if (x.dtype() == DType::BF16)
    cu::gemm(false, true, N, out, in, 1.0f, x.data<bf16>(), in, w.data<bf16>(), in, beta, y.mutable_data<bf16>(), out);
  else
    cu::sgemm(false, true, N, out, in, 1.0f, x.f32(), in, w.f32(), in, beta, y.mutable_f32(), out);
#endif
}

void QuantizedWeight::backward_dx(const Tensor& g, Tensor& dx, float beta) const {
  const int64_t N = rows_of(g), in = in_features(), out = out_features();
  if (N == 0) return;
  if (device() == Device::CPU) {
    CpuWorkspace& ws = cpu_workspace();
    const int64_t step = tile_rows(q_);
    for (int64_t r0 = 0; r0 < out; r0 += step) {  // dx += g[:, r0:r1] · W[r0:r1]; the first tile applies beta
      const int64_t r1 = std::min(out, r0 + step);
      const float* tile = dequantize_rows(q_, r0, r1, ws);  // (r1 - r0, in)
      kernels::sgemm(false, false, N, in, r1 - r0, 1.0f, g.f32() + r0, out, tile, in, r0 == 0 ? beta : 1.0f,
                     dx.mutable_f32(), in);
    }
    return;
  }
#if SLLM_HAVE_CUDA
  const Tensor w = dequantize_on_gpu(q_, g.dtype());  // (out, in)
  if (g.dtype() == DType::BF16)
    cu::gemm(false, false, N, in, out, 1.0f, g.data<bf16>(), out, w.data<bf16>(), in, beta, dx.mutable_data<bf16>(), in);
  else
    cu::sgemm(false, false, N, in, out, 1.0f, g.f32(), out, w.f32(), in, beta, dx.mutable_f32(), in);
#endif
}

Tensor QuantizedWeight::dequantize() const {
  Tensor w = quant::dequantize(q_);
  return device() == Device::CPU ? w : w.to(device());
}

std::shared_ptr<const ops::PackedWeight> QuantizedWeight::to(Device device) const {
  return std::make_shared<QuantizedWeight>(q_.to(device));
}

}  // namespace sllm::quant
