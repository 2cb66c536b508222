// train/memory_estimate.h against reality: one training step (forward, backward, clip,
// AdamW, zero_grad: train_loop.cpp's order) of tiny and small GPT-2 and Llama models, full
// and LoRA, under a counting CPU allocator. The prediction's weights, optimizer state,
// tensors kept for backward, activations and peak must each come within 15% of what the
// allocator saw (the bar), so a forgotten saved tensor or a wrong LoRA rule fails.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "autograd/autograd.h"
#include "core/error.h"
#include "lora/lora_model.h"
#include "nn/transformer.h"
#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "tensor/storage.h"
#include "tensor/tensor.h"
#include "train/memory_estimate.h"

using namespace sllm;

namespace {

// Wraps the host allocator and counts the bytes of live blocks and their peak.
class CountingAllocator final : public Allocator {
 public:
  explicit CountingAllocator(Allocator& inner) : inner_(inner) {}
  void* allocate(size_t n) override {
    void* p = inner_.allocate(n);
    std::lock_guard<std::mutex> lock(mutex_);
    live_ += int64_t(n);
    peak_ = std::max(peak_, live_);
    return p;
  }
  void deallocate(void* p, size_t n) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_ -= int64_t(n);
    }
    inner_.deallocate(p, n);
  }
  void copy_to_host(void* d, const void* s, size_t n) override { inner_.copy_to_host(d, s, n); }
  void copy_from_host(void* d, const void* s, size_t n) override { inner_.copy_from_host(d, s, n); }
  void fill_zero(void* p, size_t n) override { inner_.fill_zero(p, n); }
  int64_t live() {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_;
  }
  int64_t peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    return peak_;
  }

 private:
  Allocator& inner_;
  std::mutex mutex_;
  int64_t live_ = 0, peak_ = 0;
};

// Installs a CountingAllocator for the CPU while alive.
struct CountingScope {
  Allocator& host = allocator_for(Device::CPU);
  CountingAllocator counting{host};
  CountingScope() { register_allocator(Device::CPU, &counting); }
  ~CountingScope() { register_allocator(Device::CPU, &host); }
};

struct Measured {
  int64_t weights, optimizer, saved, activations, peak;
};

// One step of train_loop.cpp on random ids, counted from an empty allocator.
Measured measure_step(const train::MemoryRequest& r) {
  CountingScope scope;
  CountingAllocator& c = scope.counting;
  Measured m{};
  {
    nn::Transformer model(r.config);
    model.init(1);
    std::unique_ptr<lora::LoraModel> lora;
    std::vector<optim::ParamRef> refs;
    if (r.method == train::TrainMethod::Full) {
      for (auto& p : model.parameters()) refs.push_back({p.name, p.value, optim::default_decay(p.name, p.value)});
    } else {
      lora = std::make_unique<lora::LoraModel>(model);
      lora::LoraConfig lc;
      lc.r = r.lora_r;
      lc.lora_alpha = float(r.lora_alpha);
      lc.lora_dropout = float(r.lora_dropout);
      lc.target_modules = r.lora_targets;
      lora->add_adapter("default", lc);
      lora->set_training(true);
      for (auto& p : lora->parameters()) refs.push_back({p.name, p.value, optim::default_decay(p.name, p.value)});
    }
    m.weights = c.live();
    optim::AdamW opt(refs, {});
    m.optimizer = c.live() - m.weights;
    const int64_t before_batch = c.live();
    const int64_t N = r.batch * r.seq;
    Tensor ids = Tensor::empty({r.batch, r.seq}, DType::I32), targets = Tensor::empty({r.batch, r.seq}, DType::I32);
    for (int64_t i = 0; i < N; ++i) {
      ids.mutable_i32()[i] = int32_t((i * 7 + 3) % r.config.vocab_size);
      targets.mutable_i32()[i] = int32_t((i * 13 + 1) % r.config.vocab_size);
    }
    Tensor loss = model.loss(ids, targets);
    m.saved = c.live() - before_batch;
    autograd::backward(loss);
    const optim::ClipScale clip = optim::clip_scale(refs, 1.0);
    opt.step(1e-3f, clip.scale);
    opt.zero_grad();
    m.peak = c.peak();
    m.activations = m.peak - before_batch;
  }
  EXPECT_EQ(c.live(), 0) << "everything the step made was freed";
  return m;
}

train::MemoryRequest request(const nn::ModelConfig& config, train::TrainMethod method, int64_t B, int64_t T) {
  train::MemoryRequest r;
  r.config = config;
  r.method = method;
  r.batch = B;
  r.seq = T;
  return r;
}

nn::ModelConfig tiny_llama() {  // the tiny preset's sizes as a Llama with grouped-query attention
  nn::ModelConfig c = nn::preset("tiny");
  c.family = nn::Family::Llama;
  c.n_kv_head = 2;
  c.tie_embeddings = false;
  c.validate();
  return c;
}

void expect_within(int64_t predicted, int64_t measured, double tolerance, const std::string& what) {
  EXPECT_LE(std::abs(double(predicted) - double(measured)), tolerance * double(measured))
      << what << ": predicted " << predicted << " bytes, measured " << measured;
}

// Predicted gradients are not measured on their own: they live inside the peak (full) or
// are the small A/B tensors (LoRA); the gradients' bytes equal the optimizer's m (or v).
void check(const train::MemoryRequest& r, const std::string& name) {
  SCOPED_TRACE(name);
  const train::MemoryEstimate e = train::estimate_memory(r);
  const Measured m = measure_step(r);
  std::printf("%-40s kept %.3f  activations %.3f  peak %.3f (predicted / measured)\n", name.c_str(),
              double(e.saved_for_backward) / double(m.saved), double(e.peak_live - e.weights - e.optimizer) / double(m.activations),
              double(e.peak_live) / double(m.peak));
  constexpr double kBar = 0.15;  // the bar
  expect_within(e.weights, m.weights, kBar, "weights");
  expect_within(e.optimizer, m.optimizer, kBar, "optimizer state");
  EXPECT_EQ(e.optimizer, 2 * e.gradients);
  expect_within(e.saved_for_backward, m.saved, kBar, "kept for backward");
  expect_within(e.peak_live - e.weights - e.optimizer, m.activations, kBar, "step peak above weights and optimizer");
  expect_within(e.peak_live, m.peak, kBar, "peak");
}

}  // namespace

TEST(MemoryEstimate, FullTrainingOfTinyAndSmall) {
  check(request(nn::preset("tiny"), train::TrainMethod::Full, 4, 64), "tiny gpt2 full");
  check(request(tiny_llama(), train::TrainMethod::Full, 4, 64), "tiny llama full");
  check(request(nn::preset("small"), train::TrainMethod::Full, 8, 128), "small gpt2 full");
  check(request(nn::preset("small-llama"), train::TrainMethod::Full, 8, 128), "small-llama full");
}

TEST(MemoryEstimate, LoraOfTinyAndSmall) {
  train::MemoryRequest r = request(nn::preset("tiny"), train::TrainMethod::Lora, 4, 64);
  check(r, "tiny gpt2 lora all-linear r16 dropout");
  r.lora_targets = {"c_fc"};  // the attention of the frozen layer 0 records nothing
  r.lora_dropout = 0;
  check(r, "tiny gpt2 lora c_fc");
  r = request(tiny_llama(), train::TrainMethod::Lora, 4, 64);
  r.lora_targets = {"q_proj", "v_proj"};
  r.lora_r = 4;
  r.lora_alpha = 4;  // s = 1: B is used as is
  check(r, "tiny llama lora q,v");
  r = request(nn::preset("small"), train::TrainMethod::Lora, 8, 128);
  check(r, "small gpt2 lora");
  r = request(nn::preset("small-llama"), train::TrainMethod::Lora, 8, 128);
  r.lora_r = 8;
  check(r, "small-llama lora");
}

// The breakdown is exact bookkeeping where it can be: parameter counts match the model's.
TEST(MemoryEstimate, ParameterCountsAndRows) {
  for (const std::string& name : nn::preset_names()) {
    const nn::ModelConfig c = nn::preset(name);
    const train::MemoryEstimate e = train::estimate_memory(request(c, train::TrainMethod::Full, 1, 16));
    EXPECT_EQ(e.trainable_params, c.num_parameters()) << name;
    EXPECT_EQ(e.frozen_params, 0) << name;
    EXPECT_EQ(e.gradients, 4 * c.num_parameters()) << name;
  }
  const nn::ModelConfig c = nn::preset("small");
  train::MemoryRequest r = request(c, train::TrainMethod::Lora, 8, 128);
  r.lora_r = 8;
  const train::MemoryEstimate lora = train::estimate_memory(r);
  EXPECT_EQ(lora.frozen_params, c.num_parameters());
  // all-linear: A (r, in) and B (out, r) on c_attn, attn c_proj, c_fc, mlp c_proj per block
  const int64_t C = c.n_embd, H = c.n_inner, R = 8;
  EXPECT_EQ(lora.trainable_params, c.n_layer * R * ((C + 3 * C) + (C + C) + (C + H) + (H + C)));
  EXPECT_EQ((std::vector<std::string>{"c_attn", "c_proj", "c_fc"}), lora.lora_modules);
  // QLoRA: the trunk's Linear weights at ~4.127 bits (Dettmers et al. 2023, section 2).
  r.method = train::TrainMethod::QLora;
  const train::MemoryEstimate q = train::estimate_memory(r);
  const int64_t linear_weights = c.n_layer * (3 * C * C + C * C + 2 * C * H);
  EXPECT_NEAR(double(lora.weights - q.weights), linear_weights * (4.0 - 4.127 / 8.0), 0.001 * linear_weights);
}

TEST(MemoryEstimate, BadRequestsAreErrorsWithHints) {
  const auto error_of = [](train::MemoryRequest r) -> std::string {
    try {
      train::estimate_memory(r);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  train::MemoryRequest r = request(nn::preset("tiny"), train::TrainMethod::Lora, 2, 16);
  r.lora_targets = {"q_proj"};
  const std::string target = error_of(r);
  EXPECT_NE(target.find("matches no Linear"), std::string::npos) << target;
  EXPECT_NE(target.find("c_attn, c_proj, c_fc"), std::string::npos) << target;
  r.lora_targets = {"all-linear"};
  r.lora_r = 0;
  EXPECT_NE(error_of(r).find("rank"), std::string::npos);
  r.lora_r = 8;
  r.batch = 0;
  EXPECT_NE(error_of(r).find("batch"), std::string::npos);
  r.batch = 1;
  r.seq = 65;  // tiny's context is 64
  EXPECT_NE(error_of(r).find("seq"), std::string::npos);
  r.seq = 8;
  r.precision = ops::Precision::BF16;  // on the CPU
  EXPECT_NE(error_of(r).find("cuda"), std::string::npos);
  EXPECT_THROW(train::parse_train_method("prefix"), Error);
}
