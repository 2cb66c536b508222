// `sllm bench gemm`: our SGEMM (kernels/cpu/gemm.cpp) against OpenBLAS, side by side in one
// run, on the GEMM shapes of GPT-2 small training with 1024 tokens per batch (C = 768):
// qkv (N = 2304), attention proj (768), MLP up (3072) and down (K = 3072), LM head
// (N = 50257), each in the three layouts training uses:
//   NN  C = A . B    (A (M, K), B (K, N))
//   NT  C = A . Bᵀ   (B stored (N, K): forward of a Linear with weight (out, in))
//   TN  C = Aᵀ . B   (A stored (K, M): a weight gradient)
// and the skinny GEMMs of a LoRA (or QLoRA: same adapter shapes) step on those layers, rank
// r in {8, 16, 64} (lora_cases). --shapes transformer|lora|all picks the groups.
// Prints one JSON object per line (--json) or a table; figures are GFLOP/s = 2MNK / median time,
// also as a percentage of this machine's FMA peak (fma_peak.h) at the row's thread count.
//
// OpenBLAS is optional and never linked: libopenblas.so.0 is loaded at run time (dlopen).
// Debian's OpenBLAS 0.3.21 is a DYNAMIC_ARCH build that mis-detects newer Xeons (it picks
// the Prescott kernel, ~4.5x slower), so unless the user set OPENBLAS_CORETYPE we set it to
// the widest kernel family this CPU runs before loading the library.
#include <dlfcn.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "cli/command.h"
#include "cli/fma_peak.h"
#include "core/args.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/kernels.h"

namespace sllm::cli {
namespace {

// The few OpenBLAS entry points we use, resolved with dlsym (enum values from cblas.h).
struct OpenBlas {
  using SgemmFn = void (*)(int order, int trans_a, int trans_b, int M, int N, int K, float alpha, const float* A,
                           int lda, const float* B, int ldb, float beta, float* C, int ldc);
  static constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
  SgemmFn sgemm = nullptr;
  void (*set_num_threads)(int) = nullptr;
  char* (*get_corename)() = nullptr;

  bool loaded() const { return sgemm != nullptr && set_num_threads != nullptr; }
  std::string core() const { return get_corename != nullptr ? get_corename() : "unknown"; }
};

OpenBlas load_openblas() {
  __builtin_cpu_init();
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    if (__builtin_cpu_supports("avx512f")) {
      setenv("OPENBLAS_CORETYPE", "SKYLAKEX", 0);
    } else if (__builtin_cpu_supports("avx2")) {
      setenv("OPENBLAS_CORETYPE", "HASWELL", 0);
    }
  }
  OpenBlas blas;
  void* lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return blas;
  blas.sgemm = reinterpret_cast<OpenBlas::SgemmFn>(dlsym(lib, "cblas_sgemm"));
  blas.set_num_threads = reinterpret_cast<void (*)(int)>(dlsym(lib, "openblas_set_num_threads"));
  blas.get_corename = reinterpret_cast<char* (*)()>(dlsym(lib, "openblas_get_corename"));
  return blas;
}

struct Case {
  std::string name;    // "qkv", "lora r16 dA", ...
  const char* group;   // "transformer" or "lora"
  const char* layout;  // "NN", "NT", "TN"
  int64_t M, K, N;
  int64_t r = 0;       // the LoRA rank; 0 for transformer rows
  bool trans_a() const { return layout[0] == 'T'; }
  bool trans_b() const { return layout[1] == 'T'; }
};

constexpr int64_t kTokens = 1024, kChannels = 768;

// The order and shapes are those of earlier runs (README's GEMM table): keep them so rows
// stay comparable.
std::vector<Case> gpt2_cases() {
  const struct {
    const char* name;
    int64_t M, K, N;
  } shapes[] = {{"attn proj", kTokens, kChannels, kChannels},
                {"qkv", kTokens, kChannels, 3 * kChannels},
                {"mlp up", kTokens, kChannels, 4 * kChannels},
                {"mlp down", kTokens, 4 * kChannels, kChannels},
                {"lm head", kTokens, kChannels, 50257}};
  std::vector<Case> cases;
  for (const auto& s : shapes)
    for (const char* layout : {"NN", "NT", "TN"}) cases.push_back({s.name, "transformer", layout, s.M, s.K, s.N});
  return cases;
}

// A LoRA adapter on a (C, C) layer, x (M, C) the layer input, A (r, C) and B (C, r) stored as
// a Linear stores its weight (out, in). u = x.Aᵀ, y += u.Bᵀ; backward from dY (M, C):
// dU = dY.B, dB = dYᵀ.u, dA = dUᵀ.x, dX += dU.A. Every one is skinny (one side is r): the
// shapes where a blocked kernel tuned for big tiles can fall far below peak.
std::vector<Case> lora_cases() {
  std::vector<Case> cases;
  for (int64_t r : {8, 16, 64}) {
    const std::string p = str("lora r", r, " ");
    cases.push_back({p + "down", "lora", "NT", kTokens, kChannels, r, r});   // u = x.Aᵀ
    cases.push_back({p + "up", "lora", "NT", kTokens, r, kChannels, r});     // y += u.Bᵀ
    cases.push_back({p + "dU", "lora", "NN", kTokens, kChannels, r, r});     // dU = dY.B
    cases.push_back({p + "dX", "lora", "NN", kTokens, r, kChannels, r});     // dX += dU.A
    cases.push_back({p + "dA", "lora", "TN", r, kTokens, kChannels, r});     // dA = dUᵀ.x
    cases.push_back({p + "dB", "lora", "TN", kChannels, kTokens, r, r});     // dB = dYᵀ.u
  }
  return cases;
}

double seconds_of(const std::function<void()>& run) {
  const auto t0 = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median seconds per call of each contender over `reps` rounds. One timed sample is a
// burst of back-to-back calls lasting >= burst_s (0.1 s by default; sized by an untimed
// warm-up call), so a short GEMM is not dominated by waking sleeping worker threads. The
// contenders alternate inside every round, so a change in machine load (other processes on
// shared cores) hits both alike. Both libraries keep their worker threads spinning for a
// while after a call (OpenBLAS for ~2^28 cycles), which would steal cores from the other's
// next burst, so with several threads we pause between them.
std::vector<double> median_seconds(int reps, int threads, double burst_s,
                                   const std::vector<std::function<void()>>& contenders) {
  const auto pause = [&] {
    if (threads > 1 && contenders.size() > 1) std::this_thread::sleep_for(std::chrono::milliseconds(150));
  };
  std::vector<int> calls;
  for (const auto& run : contenders) {
    calls.push_back(int(std::clamp(std::ceil(burst_s / std::max(seconds_of(run), 1e-9)), 1.0, 1000.0)));
    pause();
  }
  std::vector<std::vector<double>> times(contenders.size());
  for (int r = 0; r < reps; ++r) {
    for (size_t c = 0; c < contenders.size(); ++c) {
      const double t = seconds_of([&] {
        for (int i = 0; i < calls[c]; ++i) contenders[c]();
      });
      times[c].push_back(t / calls[c]);
      pause();
    }
  }
  std::vector<double> out;
  for (const auto& t : times) out.push_back(median(t));
  return out;
}

std::vector<Case> cases_for(const std::string& shapes) {
  SLLM_CHECK(shapes == "transformer" || shapes == "lora" || shapes == "all",
             str("sllm bench gemm: unknown --shapes '", shapes, "'"),
             "--shapes transformer (GPT-2 small layers), lora (LoRA adapter GEMMs, r 8/16/64) or all");
  std::vector<Case> cases;
  if (shapes != "lora") cases = gpt2_cases();
  if (shapes != "transformer")
    for (Case& c : lora_cases()) cases.push_back(std::move(c));
  return cases;
}

const char* group_heading(const std::string& group) {
  return group == "lora" ? "LoRA adapters on a (768, 768) layer, 1024 tokens, r = 8, 16, 64"
                         : "GPT-2 small layers (C = 768), 1024 tokens";
}

std::string rounded(double x, double scale) { return str(std::round(x * scale) / scale); }

std::string fixed(double x, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, x);
  return buf;
}

int run_bench_gemm(const std::vector<std::string>& argv) {
  Args args("bench gemm", argv,
            {{"--threads", FlagSpec::List, "thread counts to run, e.g. --threads 1 2 (default: 1 and all cores)"},
             {"--json", FlagSpec::Switch, "print only JSON lines, one per case"},
             {"--reps", FlagSpec::Value, "timed repetitions per case; the median is reported (default 7)"},
             {"--shapes", FlagSpec::Value, "transformer, lora or all (default all)"},
             {"--min-time", FlagSpec::Value,
              "seconds each timed sample lasts at least (default 0.1; small values for a quick smoke run)"}});
  const bool json = args.has("--json");
  const int64_t reps = args.get_int("--reps", 7);
  SLLM_CHECK(reps >= 1 && reps <= 1000, str("sllm bench gemm: --reps must be in [1, 1000], got ", reps),
             "e.g. --reps 7");
  const double burst_s = args.get_double("--min-time", 0.1);
  SLLM_CHECK(burst_s > 0.0 && burst_s <= 10.0,
             str("sllm bench gemm: --min-time must be in (0, 10] seconds, got ", burst_s), "e.g. --min-time 0.1");
  const std::vector<Case> cases = cases_for(args.get("--shapes", "all"));
  std::vector<int> thread_counts;
  for (const std::string& t : args.get_list("--threads")) {
    char* end = nullptr;
    const long v = std::strtol(t.c_str(), &end, 10);
    SLLM_CHECK(end != t.c_str() && *end == '\0' && v >= 1 && v <= 4096,
               str("sllm bench gemm: --threads expects positive integers, got '", t, "'"), args.usage());
    // `make bench` passes 1 and nproc, the same count on a 1-core machine: run it once.
    if (std::find(thread_counts.begin(), thread_counts.end(), int(v)) == thread_counts.end())
      thread_counts.push_back(int(v));
  }
  if (thread_counts.empty()) {
    thread_counts.push_back(1);
    if (omp_get_max_threads() > 1) thread_counts.push_back(omp_get_max_threads());
  }

  // The FMA peak for sgemm's SIMD path, per thread count: the ceiling each row is judged by.
  const std::string isa = kernels::sgemm_isa();
  std::vector<double> peaks;
  for (int threads : thread_counts) peaks.push_back(fma_peak_gflops(isa, threads));
  const double peak_1 = thread_counts[0] == 1 ? peaks[0] : fma_peak_gflops(isa, 1);

  const OpenBlas blas = load_openblas();
  const std::string core = blas.loaded() ? blas.core() : "";
  if (!json) {
    std::printf("sgemm: ours (%s) vs OpenBLAS (%s), GFLOP/s, median of %lld reps\n", isa.c_str(),
                blas.loaded() ? core.c_str() : "not found: libopenblas.so.0", static_cast<long long>(reps));
    std::printf("FMA peak: %.1f GFLOP/s per core (%s)", peak_1, isa.c_str());
    for (size_t i = 0; i < thread_counts.size(); ++i)
      if (thread_counts[i] != 1) std::printf(", %.1f with %d threads", peaks[i], thread_counts[i]);
    std::printf("\n%-16s %-6s %6s %6s %6s %7s %9s %9s %7s %8s %6s\n", "case", "layout", "M", "K", "N", "threads",
                "ours", "openblas", "ratio", "peak", "%peak");
  }

  Rng rng(1234);
  for (size_t ti = 0; ti < thread_counts.size(); ++ti) {
    const int threads = thread_counts[ti];
    const double peak = peaks[ti];
    omp_set_num_threads(threads);
    if (blas.loaded()) blas.set_num_threads(threads);
    std::string group;
    for (const Case& c : cases) {
      if (!json && c.group != group) std::printf("-- %s\n", group_heading(c.group));
      group = c.group;
      const int64_t lda = c.trans_a() ? c.M : c.K, ldb = c.trans_b() ? c.K : c.N, ldc = c.N;
      std::vector<float> A(size_t(c.M * c.K)), B(size_t(c.K * c.N)), C(size_t(c.M * c.N));  // as stored
      for (auto& x : A) x = rng.uniform() - 0.5f;
      for (auto& x : B) x = rng.uniform() - 0.5f;
      const double flops = 2.0 * double(c.M) * double(c.N) * double(c.K);

      std::vector<float> C_blas(blas.loaded() ? C.size() : 0);  // (M, N)
      std::vector<std::function<void()>> contenders = {[&] {
        kernels::sgemm(c.trans_a(), c.trans_b(), c.M, c.N, c.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(),
                       ldc);
      }};
      if (blas.loaded()) {
        contenders.push_back([&] {
          blas.sgemm(OpenBlas::kRowMajor, c.trans_a() ? OpenBlas::kTrans : OpenBlas::kNoTrans,
                     c.trans_b() ? OpenBlas::kTrans : OpenBlas::kNoTrans, int(c.M), int(c.N), int(c.K), 1.0f,
                     A.data(), int(lda), B.data(), int(ldb), 0.0f, C_blas.data(), int(ldc));
        });
      }
      const std::vector<double> seconds = median_seconds(int(reps), threads, burst_s, contenders);
      const double ours = flops / seconds[0] / 1e9;
      double theirs = NAN;
      if (blas.loaded()) {
        theirs = flops / seconds[1] / 1e9;
        // A speed comparison is only meaningful if both computed the same product.
        double max_diff = 0.0, max_abs = 0.0;
        for (size_t i = 0; i < C.size(); ++i) {
          max_diff = std::max(max_diff, double(std::fabs(C[i] - C_blas[i])));
          max_abs = std::max(max_abs, double(std::fabs(C_blas[i])));
        }
        SLLM_CHECK(max_diff <= 1e-4 * std::max(max_abs, 1.0),
                   str("sllm bench gemm: ", c.layout, " M=", c.M, " K=", c.K, " N=", c.N,
                       ": results differ from OpenBLAS by ", max_diff),
                   "this is a bug in sgemm; run test_kernels --gtest_filter='Gemm*'");
      }
      const double ratio = ours / theirs;
      const double pct_peak = 100.0 * ours / peak;
      if (json) {
        std::printf(
            "{\"op\":\"sgemm\",\"group\":\"%s\",\"name\":\"%s\",%s\"layout\":\"%s\",\"M\":%lld,\"K\":%lld,\"N\":%lld,"
            "\"threads\":%d,\"gflops\":%.1f,\"openblas_gflops\":%s,\"ratio\":%s,\"isa\":\"%s\",\"openblas_core\":%s,"
            "\"peak_gflops\":%.1f,\"ours_pct_peak\":%.1f}\n",
            c.group, c.name.c_str(), c.r > 0 ? str("\"r\":", c.r, ",").c_str() : "", c.layout,
            static_cast<long long>(c.M), static_cast<long long>(c.K), static_cast<long long>(c.N), threads, ours,
            blas.loaded() ? rounded(theirs, 10).c_str() : "null", blas.loaded() ? rounded(ratio, 1000).c_str() : "null",
            isa.c_str(), blas.loaded() ? ("\"" + core + "\"").c_str() : "null", peak, pct_peak);
      } else {
        std::printf("%-16s %-6s %6lld %6lld %6lld %7d %9.1f %9s %7s %8.1f %6.1f\n", c.name.c_str(), c.layout,
                    static_cast<long long>(c.M), static_cast<long long>(c.K), static_cast<long long>(c.N), threads,
                    ours, blas.loaded() ? fixed(theirs, 1).c_str() : "-", blas.loaded() ? fixed(ratio, 2).c_str() : "-",
                    peak, pct_peak);
      }
      std::fflush(stdout);
    }
  }
  return 0;
}

CommandRegistrar registrar("bench gemm",
                           "our SGEMM vs OpenBLAS (if installed) and the FMA peak, on GPT-2 and LoRA training shapes",
                           run_bench_gemm);

}  // namespace
}  // namespace sllm::cli
