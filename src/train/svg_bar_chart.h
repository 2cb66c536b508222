// A bar chart as a hand-written SVG (no plotting dependency), for comparisons such as
// `make demo-sft`'s held-out accuracy of zero-shot, few-shot, full fine-tuning and LoRA.
#pragma once
#include <string>
#include <vector>

namespace sllm::train {

struct Bar {
  std::string label;  // under the bar
  double value = 0;   // bar height; printed above the bar
  std::string note;   // a second, smaller line under the label ("" for none)
};

struct BarChartOptions {
  std::string title;
  std::string y_label;        // e.g. "exact match (%)"
  double y_max = 0;           // top of the axis; 0: the largest value rounded up to a nice number
  int value_decimals = 1;     // digits after the point in the labels above the bars
  int width = 720, height = 420;  // SVG user units (pixels)
};

// The SVG document: a y axis from 0 with five gridlines, one bar per entry in order with its
// value above and label (and note) below. sllm::Error for no bars, or a value that is
// negative, not finite, or above an explicit y_max.
std::string render_bar_svg(const std::vector<Bar>& bars, const BarChartOptions& options);

}  // namespace sllm::train
