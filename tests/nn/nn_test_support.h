// Shared helpers of the model tests: fixture paths, safetensors entries as Tensors,
// scratch directories, small configs, and writing hand-edited weight files.
#pragma once
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "nn/transformer.h"
#include "tensor/tensor.h"

namespace sllm::nn::testing {

namespace fs = std::filesystem;

inline std::string golden_dir(const std::string& family_dir) {
  return std::string(SLLM_SOURCE_DIR) + "/tests/golden/" + family_dir;
}

// An F32 or I32 safetensors entry copied into a Tensor (scalars become shape (1)).
inline Tensor entry_tensor(const io::SafetensorsEntry& e) {
  EXPECT_TRUE(e.dtype == "F32" || e.dtype == "I32") << e.name << " is " << e.dtype;
  const DType dt = e.dtype == "I32" ? DType::I32 : DType::F32;
  Tensor t = Tensor::empty(e.shape.empty() ? Shape{1} : Shape(e.shape.begin(), e.shape.end()), dt);
  SLLM_ASSERT(t.nbytes() == e.nbytes);
  std::memcpy(t.mutable_raw(), e.data, e.nbytes);
  return t;
}

// (rows, cols) f32 → (cols, rows).
inline Tensor transposed(const Tensor& m) {
  const int64_t rows = m.dim(0), cols = m.dim(1);
  Tensor t = Tensor::empty({cols, rows});
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t.mutable_f32()[c * rows + r] = m.f32()[r * cols + c];
  return t;
}

inline double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, std::fabs(static_cast<double>(x)));
  return m;
}

// max |ours − ref| / max |ref|: the error relative to the tensor's own scale. NaN → +inf.
inline double relative_to_max(const Tensor& ours, const Tensor& ref) {
  EXPECT_EQ(ours.shape(), ref.shape());
  if (ours.shape() != ref.shape()) return INFINITY;
  const std::vector<float> a = ours.to_floats(), r = ref.to_floats();
  const double scale = max_abs(r);
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::fabs(static_cast<double>(a[i]) - r[i]);
    if (!(err <= worst)) worst = err;
  }
  return worst / (scale > 0 ? scale : 1.0);
}

// A directory under the system temp dir, removed when the test ends.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("sllm_nn_" + std::to_string(::getpid()) + "_" + (info ? std::string(info->name()) : "") + "_" + tag);
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Small custom configs (not the fixtures' sizes, so nothing passes by coincidence).
inline ModelConfig small_gpt2() {
  ModelConfig c;
  c.family = Family::GPT2;
  c.vocab_size = 50, c.n_ctx = 24, c.n_embd = 24, c.n_layer = 2, c.n_head = 3, c.n_kv_head = 3, c.n_inner = 40;
  return c;
}
inline ModelConfig small_llama() {
  ModelConfig c;
  c.family = Family::Llama;
  c.vocab_size = 50, c.n_ctx = 24, c.n_embd = 24, c.n_layer = 2, c.n_head = 4, c.n_kv_head = 2, c.n_inner = 40;
  c.tie_embeddings = false;
  c.rope_theta = 500.0f;
  return c;
}

inline Tensor random_ids(int64_t B, int64_t T, int64_t V, uint32_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(B * T));
  uint32_t x = seed * 2654435761u + 1;
  for (auto& id : ids) {
    x = x * 1664525u + 1013904223u;  // Numerical Recipes LCG: any spread of ids will do
    id = static_cast<int32_t>((x >> 8) % static_cast<uint32_t>(V));
  }
  return Tensor::from_ints(ids, {B, T});
}

// One tensor of a weight file being composed by a test: raw bytes, dtype and shape.
struct FileTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

// The model's parameters as a file would hold them: HF names, F32, Conv1D as [in, out].
inline std::vector<FileTensor> file_tensors(const Transformer& model) {
  std::vector<FileTensor> out;
  for (const auto& p : model.parameters()) {
    const Tensor v = p.conv1d ? transposed(p.value) : p.value;
    out.push_back({p.name, "F32", std::vector<int64_t>(v.shape().begin(), v.shape().end()),
                   std::string(static_cast<const char*>(v.raw()), v.nbytes())});
  }
  return out;
}

inline void write_tensors(const std::vector<FileTensor>& tensors, const std::string& path) {
  io::SafetensorsWriter w;
  for (const auto& t : tensors) w.add(t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size());
  w.write(path);
}

inline FileTensor* find_tensor(std::vector<FileTensor>& tensors, const std::string& name) {
  for (auto& t : tensors)
    if (t.name == name) return &t;
  ADD_FAILURE() << "no tensor " << name;
  return nullptr;
}

}  // namespace sllm::nn::testing
