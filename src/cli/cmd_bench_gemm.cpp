// `sllm bench gemm`: our SGEMM (kernels/cpu/gemm.cpp) against OpenBLAS, side by side in one
// run, on the GEMM shapes of GPT-2 small training with 1024 tokens per batch (C = 768):
// qkv (N = 2304), attention proj (768), MLP up (3072) and down (K = 3072), LM head
// (N = 50257), each in the three layouts training uses:
//   NN  C = A . B    (A (M, K), B (K, N))
//   NT  C = A . Bᵀ   (B stored (N, K): forward of a Linear with weight (out, in))
//   TN  C = Aᵀ . B   (A stored (K, M): a weight gradient)
// Prints one JSON object per line (--json) or a table; figures are GFLOP/s = 2MNK / median time.
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
  const char* layout;  // "NN", "NT", "TN"
  int64_t M, K, N;
  bool trans_a() const { return layout[0] == 'T'; }
  bool trans_b() const { return layout[1] == 'T'; }
};

std::vector<Case> gpt2_cases() {
  const int64_t shapes[][3] = {{1024, 768, 768}, {1024, 768, 2304}, {1024, 768, 3072}, {1024, 3072, 768},
                               {1024, 768, 50257}};
  std::vector<Case> cases;
  for (const auto& s : shapes)
    for (const char* layout : {"NN", "NT", "TN"}) cases.push_back({layout, s[0], s[1], s[2]});
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
// burst of back-to-back calls lasting >= 0.1 s (sized by an untimed warm-up call), so a
// short GEMM is not dominated by waking sleeping worker threads. The contenders alternate
// inside every round, so a change in machine load (other processes on shared cores) hits
// both alike. Both libraries keep their worker threads spinning for a while after a call
// (OpenBLAS for ~2^28 cycles), which would steal cores from the other's next burst, so with
// several threads we pause between them.
std::vector<double> median_seconds(int reps, int threads, const std::vector<std::function<void()>>& contenders) {
  const auto pause = [&] {
    if (threads > 1 && contenders.size() > 1) std::this_thread::sleep_for(std::chrono::milliseconds(150));
  };
  std::vector<int> calls;
  for (const auto& run : contenders) {
    calls.push_back(int(std::clamp(std::ceil(0.1 / std::max(seconds_of(run), 1e-9)), 1.0, 1000.0)));
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

int run_bench_gemm(const std::vector<std::string>& argv) {
  Args args("bench gemm", argv,
            {{"--threads", FlagSpec::List, "thread counts to run, e.g. --threads 1 2 (default: 1 and all cores)"},
             {"--json", FlagSpec::Switch, "print only JSON lines, one per case"},
             {"--reps", FlagSpec::Value, "timed repetitions per case; the median is reported (default 7)"}});
  const bool json = args.has("--json");
  const int64_t reps = args.get_int("--reps", 7);
  SLLM_CHECK(reps >= 1 && reps <= 1000, str("sllm bench gemm: --reps must be in [1, 1000], got ", reps),
             "e.g. --reps 7");
  std::vector<int> thread_counts;
  for (const std::string& t : args.get_list("--threads")) {
    char* end = nullptr;
    const long v = std::strtol(t.c_str(), &end, 10);
    SLLM_CHECK(end != t.c_str() && *end == '\0' && v >= 1 && v <= 4096,
               str("sllm bench gemm: --threads expects positive integers, got '", t, "'"), args.usage());
    thread_counts.push_back(int(v));
  }
  if (thread_counts.empty()) {
    thread_counts.push_back(1);
    if (omp_get_max_threads() > 1) thread_counts.push_back(omp_get_max_threads());
  }

  const OpenBlas blas = load_openblas();
  const std::string core = blas.loaded() ? blas.core() : "";
  if (!json) {
    std::printf("sgemm: ours (%s) vs OpenBLAS (%s), GFLOP/s, median of %lld reps\n", kernels::sgemm_isa(),
                blas.loaded() ? core.c_str() : "not found: libopenblas.so.0", static_cast<long long>(reps));
    std::printf("%-6s %6s %6s %6s %7s %9s %9s %7s\n", "layout", "M", "K", "N", "threads", "ours", "openblas",
                "ratio");
  }

  Rng rng(1234);
  for (int threads : thread_counts) {
    omp_set_num_threads(threads);
    if (blas.loaded()) blas.set_num_threads(threads);
    for (const Case& c : gpt2_cases()) {
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
      const std::vector<double> seconds = median_seconds(int(reps), threads, contenders);
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
      if (json) {
        std::printf(
            "{\"op\":\"sgemm\",\"layout\":\"%s\",\"M\":%lld,\"K\":%lld,\"N\":%lld,\"threads\":%d,\"gflops\":%.1f,"
            "\"openblas_gflops\":%s,\"ratio\":%s,\"isa\":\"%s\",\"openblas_core\":%s}\n",
            c.layout, static_cast<long long>(c.M), static_cast<long long>(c.K), static_cast<long long>(c.N), threads,
            ours, blas.loaded() ? str(std::round(theirs * 10) / 10).c_str() : "null",
            blas.loaded() ? str(std::round(ratio * 1000) / 1000).c_str() : "null", kernels::sgemm_isa(),
            blas.loaded() ? ("\"" + core + "\"").c_str() : "null");
      } else {
        std::printf("%-6s %6lld %6lld %6lld %7d %9.1f %9s %7s\n", c.layout, static_cast<long long>(c.M),
                    static_cast<long long>(c.K), static_cast<long long>(c.N), threads, ours,
                    blas.loaded() ? str(std::round(theirs * 10) / 10).c_str() : "-",
                    blas.loaded() ? str(std::round(ratio * 100) / 100).c_str() : "-");
      }
      std::fflush(stdout);
    }
  }
  return 0;
}

CommandRegistrar registrar("bench gemm", "our SGEMM vs OpenBLAS (if installed) on GPT-2 training shapes",
                           run_bench_gemm);

}  // namespace
}  // namespace sllm::cli
