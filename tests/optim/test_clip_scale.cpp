// clip_scale + AdamW::step(lr, scale): clip_grad_norm's two halves, with the scaling folded
// into the optimizer step. On host tensors the fold must give bit for bit what
// clip_grad_norm followed by step(lr) gives (the CUDA side: tests/cuda/test_cuda_optim_step.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "optim/adamw.h"
#include "optim/grad_clip.h"

namespace sllm::optim {
namespace {

std::vector<ParamRef> make_params() {
  std::vector<ParamRef> refs;
  const std::vector<Shape> shapes{{3, 5}, {7}, {40000}};  // the last spans two clip blocks
  for (size_t i = 0; i < shapes.size(); ++i) {
    std::vector<float> v(size_t(shape_numel(shapes[i])));
    for (size_t j = 0; j < v.size(); ++j) v[j] = std::sin(0.37f * float(j) + float(i));
    Tensor t = Tensor::from_floats(v, shapes[i]);
    t.set_requires_grad(true);
    refs.push_back({str("p", i), t, i != 1});
  }
  return refs;
}

void set_grads(std::vector<ParamRef>& refs, int step) {
  for (auto& p : refs) {
    std::vector<float> g(size_t(p.param.numel()));
    for (size_t j = 0; j < g.size(); ++j) g[j] = 0.5f * std::cos(0.11f * float(j * (step + 1)));
    p.param.set_grad(Tensor::from_floats(g, p.param.shape()));
  }
}

TEST(ClipScale, FoldedIntoTheStepEqualsClipThenStepBitForBit) {
  auto a = make_params(), b = make_params();
  AdamW opt_a(a, AdamWConfig{}), opt_b(b, AdamWConfig{});
  for (int step = 1; step <= 3; ++step) {
    set_grads(a, step);
    set_grads(b, step);
    const double max_norm = step == 2 ? 1e9 : 1.0;  // clips on steps 1 and 3 only
    const double norm = clip_grad_norm(a, max_norm);
    const ClipScale clip = clip_scale(b, max_norm);
    EXPECT_EQ(norm, clip.norm);
    EXPECT_EQ(clip.scale == 1.0f, step == 2);
    opt_a.step(1e-2f);
    opt_b.step(1e-2f, clip.scale);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].param.to_floats(), b[i].param.to_floats()) << a[i].name;
  }
}

TEST(ClipScale, LeavesGradsAloneAndMatchesClipGradNormsFactor) {
  auto refs = make_params();
  set_grads(refs, 1);
  std::vector<std::vector<float>> before;
  for (const auto& p : refs) before.push_back(p.param.grad().to_floats());
  const ClipScale clip = clip_scale(refs, 2.0);
  for (size_t i = 0; i < refs.size(); ++i) EXPECT_EQ(refs[i].param.grad().to_floats(), before[i]);
  EXPECT_EQ(clip.scale, float(2.0 / (clip.norm + 1e-6)));
  scale_grads(refs, clip.scale);
  for (size_t i = 0; i < refs.size(); ++i) {
    std::vector<float> want = before[i];
    for (float& x : want) x *= clip.scale;
    EXPECT_EQ(refs[i].param.grad().to_floats(), want);
  }
  EXPECT_EQ(clip_scale(refs, 0.0).scale, 1.0f) << "max_norm <= 0 never clips";
}

TEST(ClipScale, ANonFiniteNormScalesAsPyTorchDoes) {
  auto refs = make_params();
  set_grads(refs, 1);
  refs[1].param.grad().mutable_f32()[0] = NAN;
  const ClipScale clip = clip_scale(refs, 1.0);
  EXPECT_TRUE(std::isnan(clip.norm));
  EXPECT_TRUE(std::isnan(clip.scale)) << "max_norm / NaN: the step turns the params NaN, visibly";
}

}  // namespace
}  // namespace sllm::optim
