// `sllm bench allreduce`: how long the gradient all-reduce of data-parallel training takes on
// the transport at hand (issue 14). Run it under the launcher, `mpirun -np N sllm bench
// allreduce`; with no launcher it runs one rank (transport "single", nothing moves).
// Sizes are fp32 element counts: a preset's parameter count (its whole gradient), a byte size
// (25MiB: PyTorch DDP's default bucket, bucket_cap_mb = 25), or a plain number of elements.
// Each rep: barrier, all-reduce, and the slowest rank's time (the collective ends when the last
// rank has its result); the median of the reps is reported. Bandwidths as nccl-tests defines
// them (github.com/NVIDIA/nccl-tests, doc/PERFORMANCE.md): algbw = bytes / time, and
// busbw = algbw · 2(n-1)/n for an all-reduce, the rate each link must sustain in a ring and so
// comparable to the hardware's bandwidth. One rank moves nothing: both are 0. Rank 0 prints.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/args.h"
#include "core/error.h"
#include "dist/comm.h"
#include "nn/config.h"

namespace sllm::cli {
namespace {

struct Size {
  std::string name;
  int64_t elements;
};

Size parse_size(const std::string& s) {
  if (nn::is_preset(s)) return {s, nn::preset(s).num_parameters()};
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string unit = s.substr(used);
  double bytes_per_unit = 0;  // 0: a count of elements
  if (unit == "KiB") bytes_per_unit = 1024.0;
  else if (unit == "MiB") bytes_per_unit = 1024.0 * 1024.0;
  else if (unit == "GiB") bytes_per_unit = 1024.0 * 1024.0 * 1024.0;
  else if (unit == "KB") bytes_per_unit = 1e3;
  else if (unit == "MB") bytes_per_unit = 1e6;
  else if (unit == "GB") bytes_per_unit = 1e9;
  SLLM_CHECK(used > 0 && v > 0 && (unit.empty() || bytes_per_unit > 0),
             str("bench allreduce: bad size '", s, "'"),
             "a preset name (small, gpt2-124m, ...), a number of fp32 elements, or bytes with KiB/MiB/GiB/KB/MB/GB");
  const double elements = bytes_per_unit > 0 ? v * bytes_per_unit / 4.0 : v;
  SLLM_CHECK(elements >= 1 && elements <= 4e9, str("bench allreduce: size '", s, "' is ", elements, " elements"),
             "use 1 to 4e9 fp32 elements");
  return {s, static_cast<int64_t>(elements)};
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run(const std::vector<std::string>& argv) {
  Args args("bench allreduce", argv,
            {{"--sizes", FlagSpec::List, "presets, fp32 element counts or byte sizes (default: small gpt2-124m 25MiB)"},
             {"--reps", FlagSpec::Value, "timed all-reduces per size; the median is reported (default 10)"},
             {"--ordered", FlagSpec::Switch, "time the deterministic rank-order sum (allreduce_sum_ordered)"},
             {"--json", FlagSpec::Switch, "print one JSON object"}});
  std::vector<std::string> names = args.get_list("--sizes");
  if (names.empty()) names = {"small", "gpt2-124m", "25MiB"};
  std::vector<Size> sizes;
  for (const auto& s : names) sizes.push_back(parse_size(s));
  const int64_t reps = args.get_int("--reps", 10);
  SLLM_CHECK(reps >= 1 && reps <= 10000, str("bench allreduce: --reps ", reps), "use 1 to 10000 reps");
  const bool ordered = args.has("--ordered");

  dist::Comm& comm = dist::world();
  const int n = comm.size();
  const double bus_factor = 2.0 * (n - 1) / n;
  const bool json = args.has("--json");
  std::string rows;
  if (comm.is_root() && !json) {
    std::printf("all-reduce (%s sum of fp32) on %s, %d rank%s, median of %lld; GB = 1e9 bytes%s\n",
                ordered ? "rank-order" : "MPI", comm.transport(), n, n == 1 ? "" : "s", static_cast<long long>(reps),
                n == 1 ? " (one rank: nothing moves, bandwidths 0; run under mpirun -np N)" : "");
    std::printf("%-12s %12s %12s %12s %12s %12s\n", "size", "elements", "bytes", "time_ms", "algbw_GB/s", "busbw_GB/s");
  }
  for (const Size& s : sizes) {
    std::vector<float> buf(static_cast<size_t>(s.elements), 1.0f);
    auto reduce = [&] {
      if (ordered) comm.allreduce_sum_ordered(buf.data(), s.elements);
      else comm.allreduce_sum(buf.data(), s.elements);
    };
    reduce();  // warm-up (first-touch of MPI's buffers, connection setup); also a check
    SLLM_CHECK(buf.front() == static_cast<float>(n) && buf.back() == static_cast<float>(n),
               str("bench allreduce: the sum of ", n, " ones is ", buf.front()), "the MPI installation is broken");
    std::vector<double> times;
    for (int64_t r = 0; r < reps; ++r) {
      std::fill(buf.begin(), buf.end(), 1.0f);
      comm.barrier();
      const auto t0 = std::chrono::steady_clock::now();
      reduce();
      double dt = seconds_since(t0);
      comm.allreduce_max(&dt, 1);  // not timed: every rank learns the slowest rank's time
      times.push_back(dt);
    }
    std::nth_element(times.begin(), times.begin() + static_cast<long>(times.size() / 2), times.end());
    const double t = times[times.size() / 2];
    const double bytes = 4.0 * static_cast<double>(s.elements);
    const double algbw = n > 1 && t > 0 ? bytes / t / 1e9 : 0.0;  // one rank moves nothing: no bandwidth
    if (!comm.is_root()) continue;
    if (json) {
      rows += str(rows.empty() ? "" : ", ", "{\"size\": \"", s.name, "\", \"elements\": ", s.elements,
                  ", \"bytes\": ", static_cast<int64_t>(bytes), ", \"seconds\": ", t, ", \"algbw_gb_s\": ", algbw,
                  ", \"busbw_gb_s\": ", algbw * bus_factor, "}");
    } else {
      std::printf("%-12s %12lld %12.0f %12.3f %12.3f %12.3f\n", s.name.c_str(), static_cast<long long>(s.elements), bytes,
                  t * 1e3, algbw, algbw * bus_factor);
    }
  }
  if (comm.is_root() && json) {
    std::printf("{\"bench\": \"allreduce\", \"transport\": \"%s\", \"ranks\": %d, \"op\": \"%s\", \"reps\": %lld, "
                "\"results\": [%s]}\n",
                comm.transport(), n, ordered ? "ordered" : "sum", static_cast<long long>(reps), rows.c_str());
  }
  return 0;
}

CommandRegistrar reg("bench allreduce", "all-reduce time and GB/s of gradient sizes (run under mpirun)", run);

}  // namespace
}  // namespace sllm::cli
