#include "quant/quantized_tensor.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/kernels.h"

namespace sllm::quant {

void check_blocksize(int64_t blocksize, const std::string& what) {
  SLLM_CHECK(blocksize >= 32 && blocksize <= 4096 && (blocksize & (blocksize - 1)) == 0,
             str(what, ": blocksize ", blocksize, " is not a power of two in [32, 4096]"),
             "use 64 (QLoRA's default), or 32, 128, 256, ... 4096");
}

int64_t QuantizedTensor::nbytes() const {
  int64_t total = int64_t(packed.nbytes() + quant_map.nbytes() + absmax.nbytes());
  if (nested) total += int64_t(nested_absmax.nbytes() + nested_quant_map.nbytes()) + int64_t(sizeof(float));
  return total;
}

QuantizedTensor QuantizedTensor::to(Device device) const {
  QuantizedTensor q = *this;
  for (Tensor* t : {&q.packed, &q.quant_map, &q.absmax, &q.nested_absmax, &q.nested_quant_map})
    if (t->defined()) *t = t->to(device);
  return q;
}

namespace {

// The float32 sum of x[0, n) in the order torch's CPU sum kernel takes for a contiguous
// tensor on one thread (aten/src/ATen/native/cpu/SumKernel.cpp, cascade_sum →
// vectorized_inner_sum → row_sum → multi_row_sum), with 8-lane vectors as in its AVX2 and
// default builds; bitsandbytes' offset is this sum's mean, so the offset matches bit for bit
// (tests/golden/quant: inputs where a correctly rounded sum would not). Torch on AVX-512
// uses 16 lanes and, from 32768 elements on several threads, splits the sum per thread:
// there its last bit may differ, and tools/make_golden_quant.py pins one thread and AVX2.
float torch_cpu_sum(const float* x, int64_t n) {
  constexpr int64_t kLanes = 8, kIlp = 4, kLevels = 4;
  using Vec = std::array<float, kLanes>;
  auto add = [](Vec& a, const Vec& b) {
    for (int64_t l = 0; l < kLanes; ++l) a[l] += b[l];
  };
  // multi_row_sum + row_sum over `rows` items of `width` floats each (a vector, or one float
  // when width is 1): 4 interleaved accumulators, each a cascade of 4 levels that the lower
  // level empties into every 2^level_power rows.
  auto row_sum = [&](int64_t rows, int64_t width) {
    const int64_t size = rows / kIlp;
    const int64_t ceil_log2 = size <= 2 ? 1 : 64 - __builtin_clzll(uint64_t(size - 1));
    const int64_t level_power = std::max<int64_t>(4, ceil_log2 / kLevels);
    const int64_t level_step = int64_t(1) << level_power, level_mask = level_step - 1;
    Vec acc[kLevels][kIlp] = {};
    auto load = [&](int64_t item) {
      Vec v{};
      for (int64_t l = 0; l < width; ++l) v[l] = x[item * width + l];
      return v;
    };
    int64_t i = 0;
    while (i + level_step <= size) {
      for (int64_t j = 0; j < level_step; ++j, ++i)
        for (int64_t k = 0; k < kIlp; ++k) add(acc[0][k], load(i * kIlp + k));
      for (int64_t j = 1; j < kLevels; ++j) {
        for (int64_t k = 0; k < kIlp; ++k) {
          add(acc[j][k], acc[j - 1][k]);
          acc[j - 1][k] = Vec{};
        }
        if ((i & (level_mask << (j * level_power))) != 0) break;
      }
    }
    for (; i < size; ++i)
      for (int64_t k = 0; k < kIlp; ++k) add(acc[0][k], load(i * kIlp + k));
    for (int64_t j = 1; j < kLevels; ++j)
      for (int64_t k = 0; k < kIlp; ++k) add(acc[0][k], acc[j][k]);
    for (int64_t item = size * kIlp; item < rows; ++item) add(acc[0][0], load(item));
    for (int64_t k = 1; k < kIlp; ++k) add(acc[0][0], acc[0][k]);
    return acc[0][0];
  };
  if (n < kLanes) return row_sum(n, 1)[0];  // scalar_inner_sum
  // vectorized_inner_sum: the vectors, then the scalar tail, then the lanes in order.
  const int64_t vectors = n / kLanes;
  const Vec lanes = row_sum(vectors, kLanes);
  float total = 0.0f;
  for (int64_t i = vectors * kLanes; i < n; ++i) total += x[i];
  for (int64_t l = 0; l < kLanes; ++l) total += lanes[l];
  return total;
}

}  // namespace

QuantizedTensor quantize(const Tensor& x, const QuantOptions& options) {
  SLLM_CHECK(x.defined() && x.dtype() == DType::F32 && x.device() == Device::CPU,
             "quantize: expects an f32 tensor on the CPU", "convert with .to(DType::F32) and .to(Device::CPU) first");
  SLLM_CHECK(x.numel() > 0, str("quantize: empty tensor ", x.name()), "only non-empty weights are quantized");
  check_blocksize(options.blocksize, "quantize");
  const int64_t n = x.numel();
  QuantizedTensor q;
  q.shape = x.shape();
  q.type = options.type;
  q.blocksize = options.blocksize;
  const int64_t nb = q.blocks();
  q.packed = Tensor::empty({(n + 1) / 2}, DType::U8);
  const auto& code = code4(options.type);
  q.quant_map = Tensor::from_floats(std::vector<float>(code.begin(), code.end()), {16});
  Tensor absmax = Tensor::empty({nb});
  kernels::quantize_4bit(q.packed.mutable_data<uint8_t>(), absmax.mutable_f32(), x.f32(), n, q.blocksize, code.data());
  if (!options.double_quant) {
    q.absmax = absmax;
    return q;
  }
  // Double quantization (QLoRA section 3): the absmax values are all positive, so they are
  // centred on their mean first to use the signed 8-bit map's whole range, then quantized
  // blockwise like any tensor. The mean is the float32 tensor mean bitsandbytes takes.
  q.nested = true;
  q.nested_blocksize = options.nested_blocksize;
  // torch's float32 mean (ATen mean_out on the CPU): the float32 sum, then one float32
  // division by n. The sum's last bit depends on its order, so it is torch's (below).
  q.offset = torch_cpu_sum(absmax.f32(), nb) / float(nb);
  Tensor centred = Tensor::empty({nb});
  for (int64_t b = 0; b < nb; ++b) centred.mutable_f32()[b] = absmax.f32()[b] - q.offset;
  const auto& map = dynamic_map_signed();
  q.nested_quant_map = Tensor::from_floats(std::vector<float>(map.begin(), map.end()), {256});
  const int64_t nb2 = (nb + q.nested_blocksize - 1) / q.nested_blocksize;
  q.absmax = Tensor::empty({nb}, DType::U8);
  q.nested_absmax = Tensor::empty({nb2});
  kernels::quantize_8bit(q.absmax.mutable_data<uint8_t>(), q.nested_absmax.mutable_f32(), centred.f32(), nb,
                         q.nested_blocksize, map.data());
  return q;
}

void block_absmax(const QuantizedTensor& q, int64_t b0, int64_t b1, float* out) {
  if (!q.nested) {
    std::memcpy(out, q.absmax.f32() + b0, size_t(b1 - b0) * sizeof(float));
    return;
  }
  kernels::dequantize_8bit(out, q.absmax.data<uint8_t>(), q.nested_absmax.f32(), b0, b1, q.nested_blocksize,
                           q.nested_quant_map.f32(), q.offset);
}

Tensor dequantize(const QuantizedTensor& q) {
  const QuantizedTensor h = q.device() == Device::CPU ? q : q.to(Device::CPU);
  std::vector<float> absmax(size_t(h.blocks()));
  block_absmax(h, 0, h.blocks(), absmax.data());
  Tensor out = Tensor::empty(h.shape);
  kernels::dequantize_4bit(out.mutable_f32(), h.packed.data<uint8_t>(), absmax.data(), 0, h.numel(), h.blocksize,
                           h.quant_map.f32());
  return out;
}

namespace {

void check_array(const Tensor& t, DType dtype, int64_t numel, const std::string& name, const std::string& what) {
  SLLM_CHECK(t.defined(), str(name, ": the quant state has no ", what), "the file is incomplete: re-export it");
  SLLM_CHECK(t.dtype() == dtype && t.numel() == numel,
             str(name, ": ", what, " is ", dtype_name(t.dtype()), " ", shape_str(t.shape()), ", expected ",
                 dtype_name(dtype), " of ", numel, " elements"),
             "the quant state does not match the tensor's shape and blocksize: the file is corrupted or inconsistent");
}

}  // namespace

void validate(const QuantizedTensor& q, const std::string& name) {
  SLLM_CHECK(!q.shape.empty() && q.numel() > 0, str(name, ": the quant state has an empty shape"),
             "the file's quant_state JSON is corrupted");
  check_blocksize(q.blocksize, name);
  const int64_t n = q.numel(), nb = q.blocks();
  check_array(q.packed, DType::U8, (n + 1) / 2, name, "packed weight");
  check_array(q.quant_map, DType::F32, 16, name, "quant_map");
  const QuantizedTensor h = q.device() == Device::CPU ? q : q.to(Device::CPU);
  const auto& expected = code4(q.type);
  for (int i = 0; i < 16; ++i)
    SLLM_CHECK(h.quant_map.f32()[i] == expected[i],
               str(name, ": quant_map[", i, "] = ", h.quant_map.f32()[i], " is not ", quant_type_name(q.type), "'s ",
                   expected[i]),
               "only bitsandbytes' NF4 and FP4 code tables are supported");
  std::vector<float> scales(static_cast<size_t>(nb));
  if (q.nested) {
    check_array(q.absmax, DType::U8, nb, name, "absmax (8-bit codes)");
    SLLM_CHECK(q.nested_blocksize >= 2 && (q.nested_blocksize & (q.nested_blocksize - 1)) == 0,
               str(name, ": nested blocksize ", q.nested_blocksize, " is not a power of two"),
               "the file's quant_state JSON is corrupted (bitsandbytes writes 256)");
    check_array(q.nested_absmax, DType::F32, (nb + q.nested_blocksize - 1) / q.nested_blocksize, name,
                "nested_absmax");
    check_array(q.nested_quant_map, DType::F32, 256, name, "nested_quant_map");
    SLLM_CHECK(std::isfinite(q.offset), str(name, ": nested_offset is not finite"), "the file is corrupted");
    for (int64_t b = 0; b < h.nested_absmax.numel(); ++b)
      SLLM_CHECK(std::isfinite(h.nested_absmax.f32()[b]) && h.nested_absmax.f32()[b] >= 0,
                 str(name, ": nested_absmax[", b, "] = ", h.nested_absmax.f32()[b]), "the file is corrupted");
  } else {
    check_array(q.absmax, DType::F32, nb, name, "absmax");
  }
  block_absmax(h, 0, nb, scales.data());
  for (int64_t b = 0; b < nb; ++b)
    SLLM_CHECK(std::isfinite(scales[size_t(b)]),
               str(name, ": block ", b, " has scale ", scales[size_t(b)]), "the file is corrupted");
}

}  // namespace sllm::quant
