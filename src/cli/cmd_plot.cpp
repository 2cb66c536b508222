// `sllm plot RUN [--out FILE.svg] [--smooth W]`: train and val loss of a run as an SVG
// (src/train/svg_plot.h), written atomically next to the run's metrics by default.
#include <cstdio>

#include "cli/command.h"
#include "core/args.h"
#include "core/error.h"
#include "train/svg_plot.h"

namespace sllm::cli {

static int run_plot(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> spec = {
      {"--out", FlagSpec::Value, "SVG file to write (default RUN/loss.svg)"},
      {"--smooth", FlagSpec::Value, "EMA weight in [0, 1) of the train-loss trend line; 0 draws none (default 0.9)"},
      {"--metric", FlagSpec::Value,
       "the metrics.jsonl key to plot (with val_<key>), e.g. reward_mean or kl of an RL run; default loss (file RUN/<key>.svg)"}};
  // RUN comes first; everything after it is flags.
  if (argv.empty() || argv[0].rfind("--", 0) == 0) {
    const Args args("plot", argv, spec);  // answers --help and rejects unknown flags first
    fail("sllm plot: missing RUN, the run directory to plot",
         "usage: sllm plot RUN [--out FILE.svg] [--smooth W], e.g. `sllm plot runs/tiny`\n" + args.usage());
  }
  const Args args("plot", std::vector<std::string>(argv.begin() + 1, argv.end()), spec);
  const std::string written = train::plot_run(argv[0], args.get("--out", ""), args.get_double("--smooth", 0.9),
                                                  args.get("--metric", "loss"));
  std::fprintf(stderr, "wrote %s\n", written.c_str());
  return 0;
}

static CommandRegistrar registrar("plot", "plot a run's train/val loss from RUN/metrics.jsonl as an SVG", run_plot);

}  // namespace sllm::cli
