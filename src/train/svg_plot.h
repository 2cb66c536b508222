// `sllm plot`: loss curves from a run's metrics.jsonl as a hand-written SVG (no plotting
// dependency). The file format is the trainer's: one JSON object per line with "step" and
// "loss" (plus "lr", "tokens_per_s", ... which the plot ignores) and "val_loss" on
// evaluation steps.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sllm::train {

struct LossPoint {
  int64_t step;
  double value;
};

struct LossCurves {
  std::vector<LossPoint> train;  // "loss", in step order
  std::vector<LossPoint> val;    // "val_loss", in step order
};

// Parses metrics.jsonl text; `source` names the file in error messages. Blank lines are
// skipped; a line that is not a JSON object, lacks an integer "step", or has a "loss" or
// "val_loss" that is not a number raises sllm::Error naming the line number. null values
// (how JSON writers spell NaN) and lines with neither loss are skipped. If a step appears
// at or before an earlier one (a resumed run appended without truncating), the later
// record wins: the points from that step on are dropped and the curve continues from it.
// `metric` picks another quantity than the loss (e.g. RL's "reward_mean" or "kl"): its
// series is read from `metric` and "val_" + metric.
LossCurves parse_metrics_jsonl(std::string_view text, const std::string& source, const std::string& metric = "loss");

struct PlotOptions {
  std::string title;        // drawn on top, e.g. the run name
  double smoothing = 0.9;   // EMA weight of the train-loss trend line; 0 draws none
  int width = 880, height = 520;  // SVG user units (pixels)
  std::string metric = "loss";    // the plotted quantity: titles, axis and legend name it
};

// The SVG document: axes with "nice" ticks, grid, train loss as a thin line (with a
// debiased-EMA trend line when smoothing > 0 and there are 3+ points), val loss as a line
// with markers, a legend and a summary line. Raises sllm::Error when there is no point.
std::string render_loss_svg(const LossCurves& curves, const PlotOptions& options);

// Reads run_dir/metrics.jsonl and writes the plot to out_path atomically (empty out_path:
// run_dir/loss.svg). Missing run directory or metrics file: sllm::Error with a hint.
// Returns the path written.
// `metric` as for parse_metrics_jsonl; its default file is then run_dir/<metric>.svg.
std::string plot_run(const std::string& run_dir, const std::string& out_path, double smoothing,
                     const std::string& metric = "loss");

// s with &, <, >, " and ' as XML entities: text and attribute values of an SVG.
std::string xml_escape(const std::string& s);

}  // namespace sllm::train
