#include "train/svg_bar_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "train/svg_plot.h"

namespace sllm::train {
namespace {

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// 1, 2, 2.5 or 5 times a power of ten, at least x: an axis top whose fifths read well.
double nice_ceiling(double x) {
  if (x <= 0) return 1;
  const double p = std::pow(10.0, std::floor(std::log10(x)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * p >= x * (1 - 1e-12)) return m * p;
  return 10 * p;
}

const char* kColors[] = {"#8c8c8c", "#5b8def", "#e07b39", "#3aa66a", "#b05cc6", "#d4a72c"};

}  // namespace

std::string render_bar_svg(const std::vector<Bar>& bars, const BarChartOptions& o) {
  SLLM_CHECK(!bars.empty(), "bar chart: no bars to draw", "give at least one label and value");
  double vmax = 0;
  for (const Bar& b : bars) {
    SLLM_CHECK(std::isfinite(b.value) && b.value >= 0, str("bar chart: '", b.label, "' has value ", b.value),
               "bar values must be finite and non-negative");
    vmax = std::max(vmax, b.value);
  }
  SLLM_CHECK(o.y_max >= 0 && std::isfinite(o.y_max), str("bar chart: y_max ", o.y_max), "0 picks the axis top from the data");
  const double top = o.y_max > 0 ? o.y_max : nice_ceiling(vmax);
  SLLM_CHECK(vmax <= top, str("bar chart: a value (", vmax, ") is above the axis top ", top), "raise y_max or leave it 0");

  const double left = 70, right = o.width - 20.0, plot_top = 60, bottom = o.height - 70.0;
  const double slot = (right - left) / static_cast<double>(bars.size()), bar_w = slot * 0.6;
  auto y_of = [&](double v) { return bottom - (bottom - plot_top) * v / top; };

  std::string svg = str("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", o.width, "\" height=\"", o.height,
                        "\" viewBox=\"0 0 ", o.width, " ", o.height, "\" font-family=\"sans-serif\" font-size=\"13\">\n");
  svg += str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
  if (!o.title.empty())
    svg += str("<text x=\"", left, "\" y=\"28\" font-size=\"16\" font-weight=\"bold\">", xml_escape(o.title), "</text>\n");
  for (int i = 0; i <= 5; ++i) {  // gridlines and tick labels
    const double v = top * i / 5.0, y = y_of(v);
    svg += str("<line x1=\"", left, "\" y1=\"", fixed(y, 1), "\" x2=\"", right, "\" y2=\"", fixed(y, 1),
               "\" stroke=\"", i == 0 ? "#333" : "#e3e3e3", "\"/>\n");
    svg += str("<text x=\"", left - 8, "\" y=\"", fixed(y, 1), "\" dy=\"0.32em\" text-anchor=\"end\" fill=\"#555\">",
               fixed(v, top / 5 < 1 ? 2 : 0), "</text>\n");
  }
  if (!o.y_label.empty())
    svg += str("<text transform=\"translate(18,", fixed((plot_top + bottom) / 2, 1), ") rotate(-90)\" text-anchor=\"middle\">",
               xml_escape(o.y_label), "</text>\n");
  for (size_t i = 0; i < bars.size(); ++i) {
    const Bar& b = bars[i];
    const double cx = left + slot * (static_cast<double>(i) + 0.5), y = y_of(b.value);
    svg += str("<rect class=\"bar\" x=\"", fixed(cx - bar_w / 2, 1), "\" y=\"", fixed(y, 1), "\" width=\"", fixed(bar_w, 1),
               "\" height=\"", fixed(bottom - y, 1), "\" fill=\"", kColors[i % 6], "\"/>\n");
    svg += str("<text x=\"", fixed(cx, 1), "\" y=\"", fixed(y - 6, 1), "\" text-anchor=\"middle\" font-weight=\"bold\">",
               fixed(b.value, o.value_decimals), "</text>\n");
    svg += str("<text x=\"", fixed(cx, 1), "\" y=\"", fixed(bottom + 20, 1), "\" text-anchor=\"middle\">", xml_escape(b.label),
               "</text>\n");
    if (!b.note.empty())
      svg += str("<text x=\"", fixed(cx, 1), "\" y=\"", fixed(bottom + 38, 1), "\" text-anchor=\"middle\" font-size=\"11\" fill=\"#666\">",
                 xml_escape(b.note), "</text>\n");
  }
  return svg + "</svg>\n";
}

}  // namespace sllm::train
