// `sllm plot-bars`: a bar chart SVG from LABEL=VALUE[=NOTE] words (src/train/svg_bar_chart.h),
// e.g. the held-out accuracy per method that `make demo-sft` reports.
#include <cstdio>
#include <cstdlib>

#include "cli/command.h"
#include "core/args.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "train/svg_bar_chart.h"

namespace sllm::cli {
namespace {

int run_plot_bars(const std::vector<std::string>& argv) {
  Args args("plot-bars", argv,
            {{"--bar", FlagSpec::List, "bars in order, each LABEL=VALUE or LABEL=VALUE=NOTE (required)"},
             {"--out", FlagSpec::Value, "SVG file to write (required)"},
             {"--title", FlagSpec::Value, "title on top"},
             {"--y-label", FlagSpec::Value, "y axis label"},
             {"--y-max", FlagSpec::Value, "top of the y axis, 0 = from the data [0]"},
             {"--decimals", FlagSpec::Value, "digits after the point above the bars [1]"}});
  const std::string hint = "e.g. --bar zero-shot=3.3 few-shot=12.0=\"3 shots\" full=95.1";
  const std::vector<std::string> words = args.get_list("--bar");
  SLLM_CHECK(!words.empty(), "sllm plot-bars: no --bar given", hint);
  std::vector<train::Bar> bars;
  for (const std::string& w : words) {
    const size_t eq = w.find('=');
    SLLM_CHECK(eq != std::string::npos && eq > 0, str("sllm plot-bars: '", w, "' is not LABEL=VALUE"), hint);
    const size_t eq2 = w.find('=', eq + 1);
    const std::string value = w.substr(eq + 1, eq2 == std::string::npos ? std::string::npos : eq2 - eq - 1);
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    SLLM_CHECK(!value.empty() && end == value.c_str() + value.size(), str("sllm plot-bars: '", value, "' in '", w, "' is not a number"),
               hint);
    bars.push_back({w.substr(0, eq), v, eq2 == std::string::npos ? "" : w.substr(eq2 + 1)});
  }
  train::BarChartOptions o;
  o.title = args.get("--title", "");
  o.y_label = args.get("--y-label", "");
  o.y_max = args.get_double("--y-max", 0);
  o.value_decimals = static_cast<int>(args.get_int("--decimals", 1));
  SLLM_CHECK(o.value_decimals >= 0 && o.value_decimals <= 6, "sllm plot-bars: --decimals must be in 0..6", hint);
  const std::string out = args.required("--out");
  write_file_atomic(out, train::render_bar_svg(bars, o));
  std::fprintf(stderr, "wrote %s (%zu bars)\n", out.c_str(), bars.size());
  return 0;
}

CommandRegistrar reg("plot-bars", "bar chart SVG from LABEL=VALUE words (e.g. accuracy per method)", run_plot_bars);

}  // namespace
}  // namespace sllm::cli
