// Compares two training runs for tests/dist/run_mpi_training_tests.sh (issue 14):
//   compare_runs metrics RUN_A RUN_B RTOL [--ignore-val]
//       every step of RUN_A/metrics.jsonl and RUN_B/metrics.jsonl: the same steps and keys,
//       and each number within RTOL relatively (0: the same bits), except what a run
//       measures rather than computes (tokens_per_s, peak_mem_bytes, ranks,
//       rank_peak_mem_bytes, comm_s); --ignore-val skips val_* (runs that validate on other batches)
//   compare_runs files DIR_A DIR_B NAME...
//       DIR_A/NAME and DIR_B/NAME are the same bytes
//   compare_runs tensors FILE_A FILE_B ATOL
//       two safetensors files hold the same tensors (names, shapes), elementwise within ATOL
// Prints what it compared (the largest differences found) and exits 0, or prints FAIL and exits 1.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/safetensors.h"

using nlohmann::json;
using namespace sllm;

namespace {

int report_failure(const std::string& what) {
  std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  return 1;
}

std::vector<json> metrics_lines(const std::string& run) {
  std::ifstream in(run + "/metrics.jsonl");
  std::vector<json> lines;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(json::parse(line));
  return lines;
}

bool measured(const std::string& key) {
  return key == "tokens_per_s" || key == "peak_mem_bytes" || key == "ranks" || key == "rank_peak_mem_bytes" ||
         key == "comm_s";
}

int compare_metrics(const std::string& a, const std::string& b, double rtol, bool ignore_val) {
  const std::vector<json> la = metrics_lines(a), lb = metrics_lines(b);
  if (la.empty() || la.size() != lb.size()) return report_failure(str("metrics: ", la.size(), " lines in ", a, ", ", lb.size(), " in ", b));
  std::map<std::string, double> worst;  // the largest relative difference per key
  for (size_t i = 0; i < la.size(); ++i) {
    for (const auto& [key, va] : la[i].items()) {
      if (measured(key) || (ignore_val && key.rfind("val_", 0) == 0)) continue;
      if (!lb[i].contains(key)) return report_failure(str("metrics line ", i + 1, ": '", key, "' only in ", a));
      const double x = va.get<double>(), y = lb[i][key].get<double>();
      const double rel = x == y ? 0.0 : std::fabs(x - y) / std::max(std::fabs(x), std::fabs(y));
      worst[key] = std::max(worst[key], rel);
      if (rtol == 0 ? std::memcmp(&x, &y, sizeof x) != 0 : !(rel <= rtol))
        return report_failure(str("metrics line ", i + 1, " '", key, "': ", x, " vs ", y, " (relative ", rel, ", allowed ", rtol, ")"));
    }
  }
  std::printf("metrics: %zu steps agree (rtol %g); largest relative differences:", la.size(), rtol);
  for (const auto& [key, rel] : worst) std::printf(" %s %.3g", key.c_str(), rel);
  std::printf("\n");
  return 0;
}

int compare_files(const std::string& a, const std::string& b, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    if (read_file(a + "/" + name) != read_file(b + "/" + name)) return report_failure(str(name, " differs between ", a, " and ", b));
    std::printf("files: %s identical\n", name.c_str());
  }
  return 0;
}

int compare_tensors(const std::string& a, const std::string& b, double atol) {
  const io::SafetensorsFile fa = io::SafetensorsFile::open(a), fb = io::SafetensorsFile::open(b);
  if (fa.entries().size() != fb.entries().size()) return report_failure(str("tensors: ", fa.entries().size(), " vs ", fb.entries().size()));
  double worst = 0;
  std::string worst_name;
  for (const auto& ea : fa.entries()) {
    const io::SafetensorsEntry* eb = nullptr;
    for (const auto& e : fb.entries())
      if (e.name == ea.name) eb = &e;
    if (!eb || eb->shape != ea.shape || ea.dtype != "F32" || eb->dtype != "F32")
      return report_failure(str("tensor '", ea.name, "' missing, of another shape, or not F32 in ", b));
    const auto* x = reinterpret_cast<const float*>(ea.data);
    const auto* y = reinterpret_cast<const float*>(eb->data);
    for (size_t i = 0; i < ea.nbytes / sizeof(float); ++i) {
      const double d = std::fabs(static_cast<double>(x[i]) - static_cast<double>(y[i]));
      if (!(d <= worst)) worst = d, worst_name = ea.name;  // also catches NaN
    }
  }
  if (!(worst <= atol)) return report_failure(str("tensors: largest difference ", worst, " in '", worst_name, "' exceeds ", atol));
  std::printf("tensors: %zu agree within %g (largest difference %.3g in %s)\n", fa.entries().size(), atol, worst,
              worst_name.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "metrics" && (argc == 5 || argc == 6))
      return compare_metrics(argv[2], argv[3], std::stod(argv[4]), argc == 6 && std::string(argv[5]) == "--ignore-val");
    if (mode == "files" && argc >= 5) return compare_files(argv[2], argv[3], std::vector<std::string>(argv + 4, argv + argc));
    if (mode == "tensors" && argc == 5) return compare_tensors(argv[2], argv[3], std::stod(argv[4]));
  } catch (const std::exception& e) {
    return report_failure(e.what());
  }
  std::fprintf(stderr, "usage: compare_runs metrics A B RTOL [--ignore-val] | files A B NAME... | tensors A B ATOL\n");
  return 2;
}
