// The bf16 tensor-core attention (kernels/cuda/attention_bf16.cu) against the CPU reference
// (kernels::attention_*_ref, double inside) fed the same bf16-rounded q, k, v, dout and
// bf16 initial gradients. Each element is checked against an error bound derived from the
// kernel's roundings (ErrorScales below), not a tolerance picked to pass. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/kernels.h"
#include "tensor/dtype.h"
#include "tests/cuda/cuda_test_support.h"

namespace sllm::kernels::cuda::testing {
namespace {

class CudaAttentionBf16 : public CudaTest {};

using Vec = std::vector<float>;
using Bits = std::vector<bf16>;
namespace cpu = sllm::kernels;

// bf16's unit roundoff: 8 significant bits, round to nearest even, |bf16(x) - x| <= 2^-8 |x|.
constexpr double kU = 1.0 / 256.0;
// fp32 accumulation (tensor cores align addends by truncation), expf within 2 ulp, our fp32
// lse against the double one: as kBf16FromRoundedInputs, 1e-4 of the largest value.
constexpr double kFp32Slack = 1e-4;

struct Case {
  int64_t B, T, Tk, NH, NKV, HD, q_offset;
  // Key row j is scaled by 1 + key_growth * j: later keys score ever higher, so the online
  // softmax's running max rises tile after tile and O is rescaled (alpha < 1) each time.
  float key_growth = 0.0f;
  // Extra elements per row (a multiple of 8): q, dq, out, dout rows are NH*HD + pad apart,
  // k, dk NKV*HD + 2 pad, v, dv NKV*HD + 3 pad, as slices of a packed qkv are.
  int64_t pad = 0;
  bool accumulate = true;
  int64_t ldq() const { return NH * HD + pad; }
  int64_t ldk() const { return NKV * HD + 2 * pad; }
  int64_t ldv() const { return NKV * HD + 3 * pad; }
};

std::string name(const Case& c) {
  return "B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " Tk=" + std::to_string(c.Tk) +
         " NH=" + std::to_string(c.NH) + " NKV=" + std::to_string(c.NKV) + " HD=" + std::to_string(c.HD) +
         " q_offset=" + std::to_string(c.q_offset) + " pad=" + std::to_string(c.pad) +
         (c.accumulate ? " +=" : " =");
}

// x rounded to bf16: the bits for the device and the value for the reference.
struct Rounded {
  Bits bits;
  Vec value;
};
Rounded round_bf16(const Vec& x) {
  Rounded r{Bits(x.size()), Vec(x.size())};
  for (size_t i = 0; i < x.size(); ++i) {
    r.bits[i].bits = f32_to_bf16(x[i]);
    r.value[i] = bf16_to_f32(r.bits[i].bits);
  }
  return r;
}
Vec widen(const Bits& x) {
  Vec out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = bf16_to_f32(x[i].bits);
  return out;
}

// Magnitudes M of the sums each output is made of, with absolute values, so that the
// kernel's error is at most kU * M (plus its final rounding). Exact P in double.
//  out (t, d) = sum_j P_tj v_jd: P is rounded to bf16 before P V, so |err| <= kU sum_j P_tj |v_jd|.
//  D_t = sum_d dout_td out_td uses the bf16 out, off by at most kU (M_out + |out|) per
//      element: |dD_t| <= kU * Dabs_t, Dabs_t = sum_d |dout_td| (M_out,td + |out_td|).
//  dS_tj = scale P_tj (dP_tj - D_t) is rounded to bf16 before dS K and dSᵀ Q, and carries
//      scale P_tj |dD_t|: |err dS_tj| <= kU (|dS_tj| + scale P_tj Dabs_t) =: kU E_tj.
//  dq (t, d) = sum_j dS_tj k_jd: M = sum_j E_tj |k_jd|; dk (j, d) = sum over the group's
//      heads and t of dS_tj q_td: M = sum E_tj |q_td|; dv (j, d) = sum P_tj dout_td with P
//      rounded: M = sum P_tj |dout_td|.
struct ErrorScales {
  Vec out, dq, dk, dv;
};

ErrorScales error_scales(const Case& c, const Vec& q, const Vec& k, const Vec& v, const Vec& dout, float scale) {
  const int64_t HD = c.HD, G = c.NH / c.NKV;
  ErrorScales m{Vec(q.size()), Vec(q.size()), Vec(k.size()), Vec(k.size())};
  std::vector<double> P(c.Tk), dP(c.Tk), o(HD), mo(HD);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.NH; ++h)
      for (int64_t t = 0; t < c.T; ++t) {
        const int64_t g = h / G, n = c.q_offset + t + 1;  // keys [0, n) visible
        const int64_t qrow = ((b * c.T + t) * c.NH + h) * HD;
        auto kv_row = [&](int64_t j) { return ((b * c.Tk + j) * c.NKV + g) * HD; };
        double mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < n; ++j) {
          double s = 0.0;
          for (int64_t d = 0; d < HD; ++d) s += double(q[qrow + d]) * double(k[kv_row(j) + d]);
          P[j] = scale * s;
          mx = std::max(mx, P[j]);
        }
        for (int64_t j = 0; j < n; ++j) sum += (P[j] = std::exp(P[j] - mx));
        for (int64_t j = 0; j < n; ++j) P[j] /= sum;
        double D = 0.0, Dabs = 0.0;
        for (int64_t d = 0; d < HD; ++d) {
          o[d] = mo[d] = 0.0;
          for (int64_t j = 0; j < n; ++j) {
            o[d] += P[j] * v[kv_row(j) + d];
            mo[d] += P[j] * std::fabs(v[kv_row(j) + d]);
          }
          m.out[qrow + d] = float(mo[d]);
          D += dout[qrow + d] * o[d];
          Dabs += std::fabs(dout[qrow + d]) * (mo[d] + std::fabs(o[d]));
        }
        for (int64_t j = 0; j < n; ++j) {
          dP[j] = 0.0;
          for (int64_t d = 0; d < HD; ++d) dP[j] += double(dout[qrow + d]) * v[kv_row(j) + d];
          const double E = scale * P[j] * (std::fabs(dP[j] - D) + Dabs);
          for (int64_t d = 0; d < HD; ++d) {
            m.dq[qrow + d] += float(E * std::fabs(k[kv_row(j) + d]));
            m.dk[kv_row(j) + d] += float(E * std::fabs(q[qrow + d]));
            m.dv[kv_row(j) + d] += float(P[j] * std::fabs(dout[qrow + d]));
          }
        }
      }
  return m;
}

// |got - want| <= kU (M + |want|) + kFp32Slack * max|want|: the bound above plus the final
// rounding of the stored bf16 (relative kU) and fp32 accumulation.
void expect_within_bound(const Vec& got, const Vec& want, const Vec& M, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 1.0;
  for (float w : want) scale = std::max(scale, double(std::fabs(w)));
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double(got[i]) - want[i]);
    const double bound = kU * (M[i] + std::fabs(want[i])) + kFp32Slack * scale;
    if (!(err <= bound) && ++bad <= 5)
      ADD_FAILURE() << what << ": element " << i << " got " << got[i] << " want " << want[i] << " bound " << bound;
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.size() << " elements out of bound";
}

const Case kCases[] = {
    {2, 37, 37, 4, 2, 64, 0},    // training, GQA G=2, rows not a multiple of 16 or of a tile
    {1, 70, 70, 2, 1, 128, 0},   // multi-query, HD 128: two forward blocks, three 32-row tiles
    {1, 77, 77, 4, 2, 64, 0},    // HD 64: two 64-row blocks in the backward, a partial second
    {1, 150, 150, 2, 2, 64, 0},  // HD 64: two 128-row forward blocks, three 64-key tiles per row
    {1, 21, 80, 4, 2, 64, 59},   // KV cache: 21 new rows after 59 cached, Tk > T
    {1, 19, 40, 2, 1, 80, 13},   // HD 80 (odd number of 16-column tiles); keys [32, 40) unseen
    {2, 1, 33, 4, 4, 32, 32},    // one new token
    // Strided rows (slices of packed buffers) and fresh gradients (written, not added).
    {2, 37, 37, 4, 2, 64, 0, 0.0f, 8, false},
    {1, 70, 70, 2, 1, 128, 0, 0.0f, 16, false},
    {1, 19, 100, 2, 1, 64, 13, 0.0f, 0, false},  // keys [32, 100) unseen: written as 0
    {1, 45, 45, 6, 2, 64, 0, 0.0f, 24, true},    // G=3, strided, +=
};

// rows x width packed values laid out with row stride ld; the padding holds `fill`.
Bits spread(const Bits& packed, int64_t width, int64_t ld, float fill) {
  const int64_t rows = int64_t(packed.size()) / width;
  Bits out(size_t(rows * ld), bf16{f32_to_bf16(fill)});
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < width; ++c) out[size_t(r * ld + c)] = packed[size_t(r * width + c)];
  return out;
}
// The packed values back, and a failure if the padding is not `fill` any more.
Bits unspread(const Bits& strided, int64_t width, int64_t ld, float fill, const std::string& what) {
  const int64_t rows = int64_t(strided.size()) / ld;
  Bits out(size_t(rows * width));
  int64_t touched = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < ld; ++c) {
      if (c < width)
        out[size_t(r * width + c)] = strided[size_t(r * ld + c)];
      else
        touched += strided[size_t(r * ld + c)].bits != f32_to_bf16(fill);
    }
  EXPECT_EQ(touched, 0) << what << ": elements between the rows were written";
  return out;
}

// Runs forward and backward on the device from the given (rounded) inputs and initial
// gradients, with the case's row strides (the padding between rows holds a sentinel that
// must survive); returns out, lse, dq, dk, dv packed.
struct Result {
  Bits out;
  Vec lse;
  Bits dq, dk, dv;
};
Result run_device(const Case& c, const Rounded& q, const Rounded& k, const Rounded& v, const Rounded& dout,
                  const Rounded& dq0, const Rounded& dk0, const Rounded& dv0, float scale, bool with_dq = true) {
  constexpr float kFill = -7.0f;
  const int64_t wq = c.NH * c.HD, wkv = c.NKV * c.HD, ldq = c.ldq(), ldk = c.ldk(), ldv = c.ldv();
  DeviceArray<bf16> q_d(spread(q.bits, wq, ldq, kFill)), k_d(spread(k.bits, wkv, ldk, kFill)),
      v_d(spread(v.bits, wkv, ldv, kFill)), dout_d(spread(dout.bits, wq, ldq, kFill)),
      out_d(spread(Bits(q.bits.size()), wq, ldq, kFill));
  DeviceArray<float> lse_d{size_t(c.B * c.NH * c.T)};
  attention_forward(out_d.get(), lse_d.get(), q_d.get(), k_d.get(), v_d.get(), c.B, c.T, c.Tk, c.NH, c.NKV, c.HD,
                    c.q_offset, scale, ldq, ldk, ldv, ldq);
  // Fresh gradients start as NaN bits: an element the kernel fails to write shows.
  const bf16 nan{0x7fc1};
  auto initial = [&](const Rounded& r) { return c.accumulate ? r.bits : Bits(r.bits.size(), nan); };
  DeviceArray<bf16> dq_d(spread(initial(dq0), wq, ldq, kFill)), dk_d(spread(initial(dk0), wkv, ldk, kFill)),
      dv_d(spread(initial(dv0), wkv, ldv, kFill));
  attention_backward(with_dq ? dq_d.get() : nullptr, dk_d.get(), dv_d.get(), dout_d.get(), q_d.get(), k_d.get(),
                     v_d.get(), out_d.get(), lse_d.get(), c.B, c.T, c.Tk, c.NH, c.NKV, c.HD, c.q_offset, scale, ldq,
                     ldk, ldv, ldq, c.accumulate);
  return {unspread(out_d.host(), wq, ldq, kFill, "out"), lse_d.host(), unspread(dq_d.host(), wq, ldq, kFill, "dq"),
          unspread(dk_d.host(), wkv, ldk, kFill, "dk"), unspread(dv_d.host(), wkv, ldv, kFill, "dv")};
}

// Forward and backward of one case on the device against the reference, every output
// within its rounding bound.
void check_case(const Case& c, uint32_t seed) {
  const std::string what = name(c);
  const int64_t nq = c.B * c.T * c.NH * c.HD, nkv = c.B * c.Tk * c.NKV * c.HD, nl = c.B * c.NH * c.T;
  const float scale = 1.0f / std::sqrt(float(c.HD));
  // q, k in [-2, 2] so that the softmax is far from uniform.
  Vec k_raw = uniform(nkv, seed + 1, -2.0f, 2.0f);
  for (int64_t i = 0; i < nkv; ++i) k_raw[i] *= 1.0f + c.key_growth * float(i / (c.NKV * c.HD) % c.Tk);
  const Rounded q = round_bf16(uniform(nq, seed, -2.0f, 2.0f)), k = round_bf16(k_raw);
  const Rounded v = round_bf16(uniform(nkv, seed + 2)), dout = round_bf16(uniform(nq, seed + 3));
  const Rounded dq0 = round_bf16(uniform(nq, seed + 4)), dk0 = round_bf16(uniform(nkv, seed + 5)),
                dv0 = round_bf16(uniform(nkv, seed + 6));

  // accumulate: the gradients start non-zero and are added to; else they are written.
  Vec out_ref(nq), lse_ref(nl), dq_ref = dq0.value, dk_ref = dk0.value, dv_ref = dv0.value;
  if (!c.accumulate) dq_ref = Vec(nq), dk_ref = Vec(nkv), dv_ref = Vec(nkv);
  cpu::attention_forward_ref(out_ref.data(), lse_ref.data(), q.value.data(), k.value.data(), v.value.data(), c.B, c.T,
                             c.Tk, c.NH, c.NKV, c.HD, c.q_offset, scale);
  cpu::attention_backward_ref(dq_ref.data(), dk_ref.data(), dv_ref.data(), dout.value.data(), q.value.data(),
                              k.value.data(), v.value.data(), out_ref.data(), lse_ref.data(), c.B, c.T, c.Tk, c.NH,
                              c.NKV, c.HD, c.q_offset, scale);
  const ErrorScales M = error_scales(c, q.value, k.value, v.value, dout.value, scale);

  const Result got = run_device(c, q, k, v, dout, dq0, dk0, dv0, scale);
  expect_within_bound(widen(got.out), out_ref, M.out, what + " out");
  // lse: fp32 scores of exact bf16 products, no bf16 rounding on the way.
  expect_close(got.lse, lse_ref, kBf16FromRoundedInputs, what + " lse");
  expect_within_bound(widen(got.dq), dq_ref, M.dq, what + " dq");
  expect_within_bound(widen(got.dk), dk_ref, M.dk, what + " dk");
  expect_within_bound(widen(got.dv), dv_ref, M.dv, what + " dv");
}

TEST_F(CudaAttentionBf16, ForwardBackwardWithinTheRoundingBound) {
  uint32_t seed = 900;
  for (const Case& c : kCases) check_case(c, seed += 10);
}

// Every supported head dim (16 to 128 in steps of 16), with rising scores so that the
// online softmax rescales O on most tiles.
TEST_F(CudaAttentionBf16, EveryHeadDimAndRisingScores) {
  uint32_t seed = 1900;
  for (int64_t HD = 16; HD <= 128; HD += 16) check_case({1, 23, 75, 2, 1, HD, 52, 1.0f / 16}, seed += 10);
}

// The bound is tight enough to see a wrong result: one key too many in the causal mask (the
// first row also seeing key 1) moves out well beyond it.
TEST_F(CudaAttentionBf16, BoundCatchesAnOffByOneMask) {
  const Case c{1, 37, 38, 2, 1, 64, 1};  // the kernel at q_offset 1 vs the reference at 0
  const int64_t nq = c.B * c.T * c.NH * c.HD, nkv = c.B * c.Tk * c.NKV * c.HD;
  const float scale = 1.0f / std::sqrt(float(c.HD));
  const Rounded q = round_bf16(uniform(nq, 31, -2.0f, 2.0f)), k = round_bf16(uniform(nkv, 32, -2.0f, 2.0f));
  const Rounded v = round_bf16(uniform(nkv, 33));
  const Case shifted{1, 37, 38, 2, 1, 64, 0};
  Vec out_ref(nq), lse_ref(c.NH * c.T);
  cpu::attention_forward_ref(out_ref.data(), lse_ref.data(), q.value.data(), k.value.data(), v.value.data(), 1, c.T,
                             c.Tk, c.NH, c.NKV, c.HD, shifted.q_offset, scale);
  const ErrorScales M = error_scales(shifted, q.value, k.value, v.value, q.value, scale);
  DeviceArray<bf16> q_d(q.bits), k_d(k.bits), v_d(v.bits), out_d{size_t(nq)};
  DeviceArray<float> lse_d{size_t(c.NH * c.T)};
  attention_forward(out_d.get(), lse_d.get(), q_d.get(), k_d.get(), v_d.get(), 1, c.T, c.Tk, c.NH, c.NKV, c.HD,
                    c.q_offset, scale, c.NH * c.HD, c.NKV * c.HD, c.NKV * c.HD, c.NH * c.HD);
  const Vec got = widen(out_d.host());
  int64_t beyond = 0;
  double scale_want = 1.0;
  for (float w : out_ref) scale_want = std::max(scale_want, double(std::fabs(w)));
  for (int64_t i = 0; i < nq; ++i)
    beyond += std::fabs(got[i] - out_ref[i]) > kU * (M.out[i] + std::fabs(out_ref[i])) + kFp32Slack * scale_want;
  EXPECT_GT(beyond, nq / 4) << "an off-by-one causal mask should break the bound on most elements";
}

// Every gradient element has one writer and a fixed summation order: two runs give the same
// bits; a nullptr dq is skipped and leaves dk and dv exactly as with it.
void check_deterministic(const Case& c) {
  const int64_t nq = c.B * c.T * c.NH * c.HD, nkv = c.B * c.Tk * c.NKV * c.HD;
  const float scale = 1.0f / std::sqrt(float(c.HD));
  const Rounded q = round_bf16(uniform(nq, 41, -2.0f, 2.0f)), k = round_bf16(uniform(nkv, 42, -2.0f, 2.0f));
  const Rounded v = round_bf16(uniform(nkv, 43)), dout = round_bf16(uniform(nq, 44));
  const Rounded dq0 = round_bf16(uniform(nq, 45)), dk0 = round_bf16(uniform(nkv, 46)), dv0 = round_bf16(uniform(nkv, 47));
  const Result a = run_device(c, q, k, v, dout, dq0, dk0, dv0, scale);
  const Result b = run_device(c, q, k, v, dout, dq0, dk0, dv0, scale);
  expect_bitwise(a.out, b.out, "out twice");
  expect_bitwise(a.lse, b.lse, "lse twice");
  expect_bitwise(a.dq, b.dq, "dq twice");
  expect_bitwise(a.dk, b.dk, "dk twice");
  expect_bitwise(a.dv, b.dv, "dv twice");
  const Result no_dq = run_device(c, q, k, v, dout, dq0, dk0, dv0, scale, /*with_dq=*/false);
  if (c.accumulate) expect_bitwise(no_dq.dq, dq0.bits, "dq untouched when nullptr");
  expect_bitwise(no_dq.dk, a.dk, "dk without dq");
  expect_bitwise(no_dq.dv, a.dv, "dv without dq");
}

TEST_F(CudaAttentionBf16, DeterministicAndNullptrSkipped) {
  check_deterministic({1, 45, 50, 4, 2, 128, 5});
  check_deterministic({1, 130, 130, 4, 2, 64, 0, 0.0f, 8, false});
}

TEST_F(CudaAttentionBf16, UnsupportedHeadDimIsAnError) {
  for (const int64_t HD : {int64_t(72), int64_t(8), int64_t(144)}) {
    DeviceArray<bf16> buf{size_t(2 * 4 * 2 * HD)};
    DeviceArray<float> lse{size_t(2 * 2 * 4)};
    try {
      attention_forward(buf.get(), lse.get(), buf.get(), buf.get(), buf.get(), 2, 4, 4, 2, 2, HD, 0, 1.0f, 2 * HD,
                        2 * HD, 2 * HD, 2 * HD);
      ADD_FAILURE() << "HD " << HD << " accepted";
    } catch (const sllm::Error& e) {
      EXPECT_NE(e.hint().find("multiples of 16"), std::string::npos) << e.what();
    }
    EXPECT_THROW(attention_backward(buf.get(), buf.get(), buf.get(), buf.get(), buf.get(), buf.get(), buf.get(),
                                    buf.get(), lse.get(), 2, 4, 4, 2, 2, HD, 0, 1.0f, 2 * HD, 2 * HD, 2 * HD, 2 * HD,
                                    true),
                 sllm::Error);
  }
}

// A row stride that leaves rows unaligned (not a multiple of 8) or narrower than the heads is
// an error with a hint, never a misaligned vector load.
TEST_F(CudaAttentionBf16, BadRowStridesAreErrors) {
  DeviceArray<bf16> buf{size_t(2 * 4 * 200)};
  DeviceArray<float> lse{size_t(2 * 2 * 4)};
  for (const int64_t ld : {int64_t(132), int64_t(64)}) {  // unaligned; narrower than NH*HD = 128
    try {
      attention_forward(buf.get(), lse.get(), buf.get(), buf.get(), buf.get(), 2, 4, 4, 2, 2, 64, 0, 1.0f, ld, 128,
                        128, 128);
      ADD_FAILURE() << "ldq " << ld << " accepted";
    } catch (const sllm::Error& e) {
      EXPECT_NE(e.hint().find("row stride"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace sllm::kernels::cuda::testing
