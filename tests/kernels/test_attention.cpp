// Tests of the fused causal GQA attention kernel (kernels/cpu/attention.cpp): fast vs naive
// reference on a table of shapes (training and KV-cache decoding), accumulate / nullptr /
// determinism contracts, a finite-difference check of the reference backward, and checks
// that do not rely on the reference (single key, causality, prefix + suffix = whole).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/kernels.h"

namespace sllm::kernels {
namespace {

// Tolerances, written once.
// kFast: fast kernel vs the double reference (rounded to float). The fast kernel sums in
// float, in tile order, over at most a few hundred keys x HD terms of size ~1, so errors
// are a few float ulps of the largest term (observed ~3e-6); the bound leaves ~10x margin.
constexpr float kFastAbs = 2e-5f, kFastRel = 1e-4f;
// kFd: central finite differences of the float reference forward (step 1e-2; the exact
// float step taken is used): truncation error O(step^2) plus the float rounding of out
// divided by the step. Observed worst |error| 3.4e-5 on this problem; smaller steps are
// worse (rounding dominates).
constexpr double kFdStep = 1e-2, kFdAbs = 2e-4, kFdRel = 1e-3;

std::vector<float> randn(int64_t n, Rng& rng) {
  std::vector<float> x(n);
  for (auto& e : x) e = static_cast<float>(rng.normal());
  return x;
}

// Reports the number of elements outside |got - want| <= abs + rel * |want| and the worst one.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, float abs, float rel,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int64_t bad = 0, worst = -1;
  double worst_excess = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double(got[i]) - double(want[i]));
    const double bound = abs + rel * std::fabs(double(want[i]));
    if (!(err <= bound)) {  // also catches NaN
      ++bad;
      if (worst < 0 || err - bound > worst_excess) worst = int64_t(i), worst_excess = err - bound;
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.size() << " elements off; worst at " << worst
                    << ": got " << (worst >= 0 ? got[worst] : 0.f) << " want " << (worst >= 0 ? want[worst] : 0.f);
}

// One attention problem: sizes, inputs and the gradient flowing into out.
struct Problem {
  int64_t B, T, Tk, NH, NKV, HD, q_offset;
  float scale;
  std::vector<float> q, k, v, dout;  // (B,T,NH,HD), (B,Tk,NKV,HD) x2, (B,T,NH,HD)

  Problem(int64_t B_, int64_t T_, int64_t Tk_, int64_t NH_, int64_t NKV_, int64_t HD_, int64_t q_offset_,
          float sharpness, uint64_t seed)
      : B(B_), T(T_), Tk(Tk_), NH(NH_), NKV(NKV_), HD(HD_), q_offset(q_offset_),
        scale(sharpness / std::sqrt(float(HD_))) {
    Rng rng(seed);
    q = randn(B * T * NH * HD, rng);
    k = randn(B * Tk * NKV * HD, rng);
    v = randn(B * Tk * NKV * HD, rng);
    dout = randn(B * T * NH * HD, rng);
  }
  int64_t n_q() const { return B * T * NH * HD; }
  int64_t n_kv() const { return B * Tk * NKV * HD; }
};

using ForwardFn = decltype(&attention_forward);
using BackwardFn = decltype(&attention_backward);

struct Forward {
  std::vector<float> out, lse;
};
struct Grads {
  std::vector<float> dq, dk, dv;
};

Forward run_forward(ForwardFn fn, const Problem& p) {
  Forward f{std::vector<float>(p.n_q(), NAN), std::vector<float>(p.B * p.NH * p.T, NAN)};
  fn(f.out.data(), f.lse.data(), p.q.data(), p.k.data(), p.v.data(), p.B, p.T, p.Tk, p.NH, p.NKV, p.HD,
     p.q_offset, p.scale);
  return f;
}

// Backward from zeroed gradient buffers (or from `start` when given: accumulate semantics).
Grads run_backward(BackwardFn fn, const Problem& p, const Forward& f, const Grads* start = nullptr) {
  Grads g = start ? *start
                  : Grads{std::vector<float>(p.n_q(), 0.f), std::vector<float>(p.n_kv(), 0.f),
                          std::vector<float>(p.n_kv(), 0.f)};
  fn(g.dq.data(), g.dk.data(), g.dv.data(), p.dout.data(), p.q.data(), p.k.data(), p.v.data(), f.out.data(),
     f.lse.data(), p.B, p.T, p.Tk, p.NH, p.NKV, p.HD, p.q_offset, p.scale);
  return g;
}

// ---- fast vs reference over a table of shapes ---------------------------------------------

struct Case {
  int64_t B, T, Tk, NH, NKV, HD, q_offset;
  float sharpness;  // scale = sharpness / sqrt(HD); > 1 makes the softmax peaky
};

std::string case_name(const Case& c) {
  return str("B", c.B, "_T", c.T, "_Tk", c.Tk, "_NH", c.NH, "_NKV", c.NKV, "_HD", c.HD, "_off", c.q_offset,
             c.sharpness != 1.0f ? "_sharp" : "");
}

void PrintTo(const Case& c, std::ostream* os) { *os << case_name(c); }

class AttentionVsRef : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionVsRef, ForwardAndBackwardMatchReference) {
  const Case& c = GetParam();
  const Problem p(c.B, c.T, c.Tk, c.NH, c.NKV, c.HD, c.q_offset, c.sharpness, 1234);
  const Forward want = run_forward(attention_forward_ref, p);
  const Forward got = run_forward(attention_forward, p);
  expect_close(got.out, want.out, kFastAbs, kFastRel, "out");
  expect_close(got.lse, want.lse, kFastAbs, kFastRel, "lse");

  // Each backward is fed its own forward's out and lse, as in training.
  const Grads gw = run_backward(attention_backward_ref, p, want);
  const Grads gg = run_backward(attention_backward, p, got);
  expect_close(gg.dq, gw.dq, kFastAbs, kFastRel, "dq");
  expect_close(gg.dk, gw.dk, kFastAbs, kFastRel, "dk");
  expect_close(gg.dv, gw.dv, kFastAbs, kFastRel, "dv");
}

// Training (Tk = T, q_offset = 0) and KV-cache (q_offset = Tk - T) shapes. T = 33 and 130
// cut query and key tiles partway; HD 16/32/64/128 take the compiled-width paths, 7 and 8
// the generic one; the GQA ratios cover 1, 2, 3 and 4 query heads per kv head. Forward
// scores come from transposed keys when G*T >= 16 and from dot products below (decoding):
// both paths appear.
const Case kCases[] = {
    {1, 1, 1, 4, 4, 16, 0, 1.f},     {2, 1, 1, 4, 2, 7, 0, 1.f},      {1, 7, 7, 4, 4, 7, 0, 1.f},
    {3, 7, 7, 6, 2, 16, 0, 1.f},     {2, 7, 7, 4, 2, 8, 0, 1.f},      {2, 33, 33, 4, 2, 64, 0, 1.f},
    {1, 33, 33, 4, 1, 7, 0, 1.f},    {3, 33, 33, 4, 4, 64, 0, 1.f},   {1, 33, 33, 4, 2, 128, 0, 1.f},
    {2, 130, 130, 6, 2, 64, 0, 1.f}, {1, 130, 130, 4, 4, 16, 0, 1.f}, {1, 130, 130, 4, 1, 7, 0, 1.f},
    {1, 130, 130, 4, 2, 64, 0, 4.f},  // peaky softmax: running max changes, rescaling matters
    // KV cache: decoding one token, then chunks of several.
    {2, 1, 40, 4, 2, 64, 39, 1.f},   {3, 1, 131, 6, 2, 16, 130, 1.f}, {1, 1, 7, 4, 1, 7, 6, 1.f},
    {2, 7, 40, 4, 4, 16, 33, 1.f},   {1, 33, 130, 6, 2, 64, 97, 1.f}, {1, 33, 45, 4, 2, 32, 12, 1.f},
    {2, 130, 200, 4, 1, 64, 70, 1.f},
    // Keys past the last query (q_offset + T < Tk) are never seen and get zero gradient.
    {2, 7, 20, 4, 2, 16, 5, 1.f},
};

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionVsRef, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) { return case_name(info.param); });

// ---- contracts: accumulate, nullptr, determinism, shape errors -----------------------------

struct Impl {
  const char* name;
  ForwardFn forward;
  BackwardFn backward;
};
const Impl kImpls[] = {{"fast", attention_forward, attention_backward},
                       {"ref", attention_forward_ref, attention_backward_ref}};

TEST(Attention, BackwardAccumulatesIntoGradients) {
  const Problem p(2, 33, 33, 6, 2, 16, 0, 1.f, 7);
  for (const Impl& impl : kImpls) {
    SCOPED_TRACE(impl.name);
    const Forward f = run_forward(impl.forward, p);
    const Grads fresh = run_backward(impl.backward, p, f);
    Rng rng(99);
    const Grads start{randn(p.n_q(), rng), randn(p.n_kv(), rng), randn(p.n_kv(), rng)};
    const Grads acc = run_backward(impl.backward, p, f, &start);
    Grads want = start;
    for (size_t i = 0; i < want.dq.size(); ++i) want.dq[i] += fresh.dq[i];
    for (size_t i = 0; i < want.dk.size(); ++i) want.dk[i] += fresh.dk[i], want.dv[i] += fresh.dv[i];
    // dq may be accumulated tile by tile, so the sum can round differently from start + fresh.
    expect_close(acc.dq, want.dq, kFastAbs, kFastRel, "dq");
    expect_close(acc.dk, want.dk, kFastAbs, kFastRel, "dk");
    expect_close(acc.dv, want.dv, kFastAbs, kFastRel, "dv");
  }
}

TEST(Attention, NullGradientsAreSkipped) {
  const Problem p(2, 33, 40, 4, 2, 64, 7, 1.f, 8);
  for (const Impl& impl : kImpls) {
    SCOPED_TRACE(impl.name);
    const Forward f = run_forward(impl.forward, p);
    const Grads all = run_backward(impl.backward, p, f);
    // Each gradient alone must equal the one computed alongside the others.
    for (int which = 0; which < 3; ++which) {
      Grads g{std::vector<float>(p.n_q(), 0.f), std::vector<float>(p.n_kv(), 0.f),
              std::vector<float>(p.n_kv(), 0.f)};
      impl.backward(which == 0 ? g.dq.data() : nullptr, which == 1 ? g.dk.data() : nullptr,
                    which == 2 ? g.dv.data() : nullptr, p.dout.data(), p.q.data(), p.k.data(), p.v.data(),
                    f.out.data(), f.lse.data(), p.B, p.T, p.Tk, p.NH, p.NKV, p.HD, p.q_offset, p.scale);
      EXPECT_EQ(g.dq, which == 0 ? all.dq : std::vector<float>(p.n_q(), 0.f)) << "only grad " << which;
      EXPECT_EQ(g.dk, which == 1 ? all.dk : std::vector<float>(p.n_kv(), 0.f)) << "only grad " << which;
      EXPECT_EQ(g.dv, which == 2 ? all.dv : std::vector<float>(p.n_kv(), 0.f)) << "only grad " << which;
    }
    // No gradient wanted at all: nothing is read or written.
    impl.backward(nullptr, nullptr, nullptr, p.dout.data(), p.q.data(), p.k.data(), p.v.data(), f.out.data(),
                  f.lse.data(), p.B, p.T, p.Tk, p.NH, p.NKV, p.HD, p.q_offset, p.scale);
  }
}

// Bitwise reproducible for a given thread count (the contract); the kernel's partition gives
// every output element one writer with a fixed order, so it is even the same across counts.
TEST(Attention, FastKernelIsDeterministic) {
  const Problem p(3, 130, 130, 6, 2, 64, 0, 1.f, 9);
  const int threads_before = omp_get_max_threads();
  omp_set_num_threads(2);
  const Forward f1 = run_forward(attention_forward, p), f2 = run_forward(attention_forward, p);
  const Grads g1 = run_backward(attention_backward, p, f1), g2 = run_backward(attention_backward, p, f1);
  omp_set_num_threads(1);
  const Forward f3 = run_forward(attention_forward, p);
  const Grads g3 = run_backward(attention_backward, p, f1);
  omp_set_num_threads(threads_before);
  EXPECT_EQ(f1.out, f2.out);
  EXPECT_EQ(f1.lse, f2.lse);
  EXPECT_EQ(g1.dq, g2.dq);
  EXPECT_EQ(g1.dk, g2.dk);
  EXPECT_EQ(g1.dv, g2.dv);
  EXPECT_EQ(f1.out, f3.out);
  EXPECT_EQ(f1.lse, f3.lse);
  EXPECT_EQ(g1.dq, g3.dq);
  EXPECT_EQ(g1.dk, g3.dk);
  EXPECT_EQ(g1.dv, g3.dv);
}

TEST(Attention, BadShapesThrow) {
  std::vector<float> buf(4096, 0.f);
  float* x = buf.data();
  for (const Impl& impl : kImpls) {
    SCOPED_TRACE(impl.name);
    // NH not a multiple of NKV.
    EXPECT_THROW(impl.forward(x, x, x, x, x, 1, 2, 2, 4, 3, 8, 0, 1.f), Error);
    EXPECT_THROW(impl.backward(x, x, x, x, x, x, x, x, x, 1, 2, 2, 4, 3, 8, 0, 1.f), Error);
    // Queries past the end of the key cache.
    EXPECT_THROW(impl.forward(x, x, x, x, x, 1, 2, 5, 4, 2, 8, 4, 1.f), Error);
    EXPECT_THROW(impl.backward(x, x, x, x, x, x, x, x, x, 1, 2, 5, 4, 2, 8, 4, 1.f), Error);
    EXPECT_THROW(impl.forward(x, x, x, x, x, 1, 2, 5, 4, 2, 8, -1, 1.f), Error);
  }
}

// ---- the reference against calculus ------------------------------------------------------

// loss = Σ out ∘ W; its gradient by the reference backward (dout = W) against central
// differences of the reference forward, for every element of q, k and v. Uses a KV-cache
// shape with GQA so every index path of the backward is exercised.
TEST(Attention, ReferenceBackwardMatchesFiniteDifferences) {
  Problem p(2, 4, 6, 4, 2, 3, 2, 1.f, 11);  // dout plays W
  const auto loss = [&]() {
    const Forward f = run_forward(attention_forward_ref, p);
    double sum = 0.0;
    for (size_t i = 0; i < f.out.size(); ++i) sum += double(f.out[i]) * double(p.dout[i]);
    return sum;
  };
  const Grads g = run_backward(attention_backward_ref, p, run_forward(attention_forward_ref, p));
  const std::pair<std::vector<float>*, const std::vector<float>*> inputs[] = {
      {&p.q, &g.dq}, {&p.k, &g.dk}, {&p.v, &g.dv}};
  const char* names[] = {"dq", "dk", "dv"};
  for (int which = 0; which < 3; ++which) {
    std::vector<float>& x = *inputs[which].first;
    const std::vector<float>& grad = *inputs[which].second;
    for (size_t i = 0; i < x.size(); ++i) {
      const float x0 = x[i];
      x[i] = x0 + float(kFdStep);
      const double up = loss(), step_up = double(x[i]) - x0;
      x[i] = x0 - float(kFdStep);
      const double down = loss(), step_down = x0 - double(x[i]);
      x[i] = x0;
      const double fd = (up - down) / (step_up + step_down);
      EXPECT_NEAR(grad[i], fd, kFdAbs + kFdRel * std::fabs(fd)) << names[which] << "[" << i << "]";
    }
  }
}

// ---- checks that need no reference -------------------------------------------------------

// One query at position 0 sees only key 0: the softmax is exactly 1, so out is v[key 0] and
// lse is the single logit.
TEST(Attention, SingleKeyOutputIsItsValue) {
  const Problem p(2, 1, 1, 4, 2, 64, 0, 1.f, 12);
  for (const Impl& impl : kImpls) {
    SCOPED_TRACE(impl.name);
    const Forward f = run_forward(impl.forward, p);
    for (int64_t b = 0; b < p.B; ++b)
      for (int64_t h = 0; h < p.NH; ++h) {
        const int64_t kvh = h / (p.NH / p.NKV);
        const float* v0 = p.v.data() + (b * p.NKV + kvh) * p.HD;
        const float* out = f.out.data() + (b * p.NH + h) * p.HD;
        EXPECT_EQ(std::vector<float>(out, out + p.HD), std::vector<float>(v0, v0 + p.HD)) << b << "," << h;
        double logit = 0.0;
        for (int64_t d = 0; d < p.HD; ++d)
          logit += double(p.q[(b * p.NH + h) * p.HD + d]) * p.k[(b * p.NKV + kvh) * p.HD + d];
        EXPECT_NEAR(f.lse[b * p.NH + h], p.scale * logit, kFastAbs + kFastRel * std::fabs(p.scale * logit));
      }
  }
}

// Changing keys and values at positions > s leaves out and lse of every query at absolute
// position <= s unchanged (bitwise: masked keys must contribute exactly nothing), and does
// change the later ones.
TEST(Attention, FutureKeysDoNotChangeEarlierRows) {
  for (const int64_t q_offset : {0, 20}) {
    const int64_t T = 33, Tk = T + q_offset, s = q_offset + 17;
    const Problem p(2, T, Tk, 4, 2, 16, q_offset, 1.f, 13);
    Problem changed = p;
    Rng rng(14);
    for (int64_t b = 0; b < p.B; ++b)
      for (int64_t j = s + 1; j < Tk; ++j)
        for (int64_t e = 0; e < p.NKV * p.HD; ++e) {
          const int64_t at = (b * Tk + j) * p.NKV * p.HD + e;
          changed.k[at] = float(rng.normal());
          changed.v[at] = float(rng.normal());
        }
    for (const Impl& impl : kImpls) {
      SCOPED_TRACE(str(impl.name, " q_offset=", q_offset));
      const Forward f = run_forward(impl.forward, p), fc = run_forward(impl.forward, changed);
      for (int64_t b = 0; b < p.B; ++b)
        for (int64_t t = 0; t < T; ++t) {
          const bool sees_change = q_offset + t > s;
          for (int64_t h = 0; h < p.NH; ++h) {
            const int64_t row = ((b * T + t) * p.NH + h) * p.HD;
            const std::vector<float> a(f.out.begin() + row, f.out.begin() + row + p.HD),
                c(fc.out.begin() + row, fc.out.begin() + row + p.HD);
            const float la = f.lse[(b * p.NH + h) * T + t], lc = fc.lse[(b * p.NH + h) * T + t];
            if (sees_change) {
              EXPECT_NE(a, c) << "b=" << b << " t=" << t << " h=" << h;
            } else {
              EXPECT_EQ(a, c) << "b=" << b << " t=" << t << " h=" << h;
              EXPECT_EQ(la, lc) << "b=" << b << " t=" << t << " h=" << h;
            }
          }
        }
    }
  }
}

// KV cache: the forward over a whole sequence equals a forward over its prefix followed by
// a forward of the suffix queries against all keys with q_offset = prefix length.
TEST(Attention, PrefixThenSuffixEqualsWholeSequence) {
  const int64_t B = 2, T = 70, NH = 6, NKV = 2, HD = 64;
  const Problem whole(B, T, T, NH, NKV, HD, 0, 1.f, 15);
  for (const int64_t T1 : {1, 37, 69}) {
    const int64_t T2 = T - T1;
    // Slice queries along time: (B, T, NH, HD) -> (B, T1 | T2, NH, HD).
    const auto slice_q = [&](int64_t t0, int64_t n) {
      std::vector<float> part;
      for (int64_t b = 0; b < B; ++b) {
        const auto first = whole.q.begin() + (b * T + t0) * NH * HD;
        part.insert(part.end(), first, first + n * NH * HD);
      }
      return part;
    };
    Problem prefix = whole, suffix = whole;
    prefix.T = prefix.Tk = T1;
    prefix.q = slice_q(0, T1);
    prefix.k.clear(), prefix.v.clear();
    for (int64_t b = 0; b < B; ++b) {
      const int64_t first = b * T * NKV * HD, n = T1 * NKV * HD;
      prefix.k.insert(prefix.k.end(), whole.k.begin() + first, whole.k.begin() + first + n);
      prefix.v.insert(prefix.v.end(), whole.v.begin() + first, whole.v.begin() + first + n);
    }
    suffix.T = T2;
    suffix.q_offset = T1;
    suffix.q = slice_q(T1, T2);
    for (const Impl& impl : kImpls) {
      SCOPED_TRACE(str(impl.name, " T1=", T1));
      const Forward fw = run_forward(impl.forward, whole), fp = run_forward(impl.forward, prefix),
                    fs = run_forward(impl.forward, suffix);
      std::vector<float> out, lse;
      for (int64_t b = 0; b < B; ++b) {
        out.insert(out.end(), fp.out.begin() + b * T1 * NH * HD, fp.out.begin() + (b + 1) * T1 * NH * HD);
        out.insert(out.end(), fs.out.begin() + b * T2 * NH * HD, fs.out.begin() + (b + 1) * T2 * NH * HD);
        for (int64_t h = 0; h < NH; ++h) {
          lse.insert(lse.end(), fp.lse.begin() + (b * NH + h) * T1, fp.lse.begin() + (b * NH + h + 1) * T1);
          lse.insert(lse.end(), fs.lse.begin() + (b * NH + h) * T2, fs.lse.begin() + (b * NH + h + 1) * T2);
        }
      }
      // Each query row's arithmetic does not depend on which call computed it.
      expect_close(out, fw.out, kFastAbs, kFastRel, "out");
      expect_close(lse, fw.lse, kFastAbs, kFastRel, "lse");
    }
  }
}

}  // namespace
}  // namespace sllm::kernels
