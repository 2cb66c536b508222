// Loss curves as SVG, written by hand: the SVG 1.1 subset used here (rect, line, polyline,
// circle, text, g) renders the same in browsers, rsvg and Inkscape.
// Layout: a plot frame with margins for the title and axis labels; data coordinates map
// linearly into it, x = step and y = loss, with y growing downwards in SVG space.
#include "train/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "core/atomic_file.h"
#include "core/error.h"

namespace sllm::train {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* const kLineHint = "each line of metrics.jsonl is one JSON object such as "
                              "{\"step\": 10, \"loss\": 3.21, \"lr\": 0.0006, \"tokens_per_s\": 51000}";

// An optional loss field: absent or null → false; a number → true and `out`; else an error.
bool read_loss(const json& line, const char* key, double& out, const std::string& where) {
  const auto it = line.find(key);
  if (it == line.end() || it->is_null()) return false;
  SLLM_CHECK(it->is_number(), str(where, ": \"", key, "\" must be a number, got ", it->dump()), kLineHint);
  out = it->get<double>();
  return true;
}

// Appends p; a step at or before the curve's last one means the run was resumed and
// re-logged those steps: the later record wins.
void append_point(std::vector<LossPoint>& curve, LossPoint p) {
  while (!curve.empty() && curve.back().step >= p.step) curve.pop_back();
  curve.push_back(p);
}

// ---- axes -------------------------------------------------------------------------------
// "Nice numbers for graph labels" (P. Heckbert, Graphics Gems, 1990): tick spacing of
// 1, 2 or 5 times a power of ten, and axis ends on multiples of the spacing.
double nice_number(double x, bool round) {
  const double exponent = std::floor(std::log10(x));
  const double fraction = x / std::pow(10.0, exponent);  // in [1, 10)
  double nice;
  if (round)
    nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
  else
    nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * std::pow(10.0, exponent);
}

struct Axis {
  double lo, hi, spacing;
  int ticks, decimals;  // number of ticks from lo to hi; digits after the point in labels
};

// An axis covering [lo, hi] with about `target` ticks; spacing at least min_spacing (1 for
// steps, which are integers). A degenerate range (one point) is widened around it.
Axis nice_axis(double lo, double hi, int target, double min_spacing) {
  if (!(hi > lo)) {
    const double pad = std::max(lo != 0 ? std::fabs(lo) * 0.1 : 1.0, min_spacing);
    lo -= pad;
    hi += pad;
  }
  const double range = nice_number(hi - lo, false);
  const double spacing = std::max(nice_number(range / (target - 1), true), min_spacing);
  Axis a;
  a.spacing = spacing;
  a.lo = std::floor(lo / spacing) * spacing;
  a.hi = std::ceil(hi / spacing) * spacing;
  a.ticks = int(std::llround((a.hi - a.lo) / spacing)) + 1;
  a.decimals = std::max(0, int(-std::floor(std::log10(spacing))));
  return a;
}

std::string tick_label(double v, const Axis& a) {
  if (std::fabs(v) < a.spacing * 1e-9) v = 0;  // no "-0.0"
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", a.decimals, v);
  return buf;
}

// ---- series -----------------------------------------------------------------------------
// Debiased exponential moving average, as TensorBoard's scalar smoothing: ema_k =
// w ema_{k-1} + (1 - w) x_k from ema_0 = 0, divided by 1 - w^k so early points are not
// pulled towards 0 (the same bias correction as Adam's, Kingma & Ba 2015 §3).
std::vector<LossPoint> debiased_ema(const std::vector<LossPoint>& points, double w) {
  std::vector<LossPoint> out;
  double ema = 0, weight_k = 1;  // weight_k = w^k
  for (const auto& p : points) {
    ema = w * ema + (1 - w) * p.value;
    weight_k *= w;
    out.push_back({p.step, ema / (1 - weight_k)});
  }
  return out;
}

// At most 2 points per bucket (its minimum and maximum, in step order): a million-step run
// stays a small file and loss spikes stay visible.
std::vector<LossPoint> decimate(const std::vector<LossPoint>& points, size_t buckets) {
  if (points.size() <= 2 * buckets) return points;
  std::vector<LossPoint> out;
  const size_t n = points.size();
  for (size_t b = 0; b < buckets; ++b) {
    const size_t begin = b * n / buckets, end = (b + 1) * n / buckets;
    size_t lo = begin, hi = begin;
    for (size_t i = begin; i < end; ++i) {
      if (points[i].value < points[lo].value) lo = i;
      if (points[i].value > points[hi].value) hi = i;
    }
    out.push_back(points[std::min(lo, hi)]);
    if (lo != hi) out.push_back(points[std::max(lo, hi)]);
  }
  return out;
}

// ---- SVG text ---------------------------------------------------------------------------
// Coordinates with two decimals: finite by construction (the caller's ranges are finite
// and non-empty), and 1/100 pixel is below what any renderer shows.
std::string num(double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

struct Style {
  const char* css_class;
  const char* color;
  double width, opacity;
  bool markers;
};

constexpr Style kTrainStyle{"train", "#1f77b4", 1.0, 1.0, false};
constexpr Style kTrainFaintStyle{"train", "#1f77b4", 1.0, 0.35, false};  // under the trend line
constexpr Style kEmaStyle{"train-ema", "#1f77b4", 2.0, 1.0, false};
constexpr Style kValStyle{"val", "#d62728", 1.5, 1.0, true};
constexpr size_t kMaxMarkers = 200;  // beyond that, markers merge into a thick line

struct Frame {
  double left, top, width, height;
};

class SvgCanvas {
 public:
  SvgCanvas(const Frame& frame, const Axis& x, const Axis& y) : f_(frame), x_(x), y_(y) {}
  double X(double step) const { return f_.left + (step - x_.lo) / (x_.hi - x_.lo) * f_.width; }
  double Y(double loss) const { return f_.top + (y_.hi - loss) / (y_.hi - y_.lo) * f_.height; }

  void series(std::string& svg, const std::vector<LossPoint>& points, const Style& s) const {
    svg += str("<g class=\"", s.css_class, "\" stroke=\"", s.color, "\" fill=\"none\" stroke-opacity=\"", s.opacity,
               "\">\n");
    if (points.size() >= 2) {
      svg += str("<polyline class=\"", s.css_class, "\" stroke-width=\"", s.width,
                 "\" stroke-linejoin=\"round\" points=\"");
      for (size_t i = 0; i < points.size(); ++i)
        svg += str(i ? " " : "", num(X(double(points[i].step))), ",", num(Y(points[i].value)));
      svg += "\"/>\n";
    }
    // A single point has no line to draw: it gets a marker so it is still visible.
    if ((s.markers && points.size() <= kMaxMarkers) || points.size() == 1)
      for (const auto& p : points)
        svg += str("<circle cx=\"", num(X(double(p.step))), "\" cy=\"", num(Y(p.value)), "\" r=\"3\" fill=\"", s.color,
                   "\"/>\n");
    svg += "</g>\n";
  }

 private:
  Frame f_;
  Axis x_, y_;
};

std::string summary_line(const LossCurves& c, const std::string& metric) {
  char buf[160];
  std::string out;
  if (!c.train.empty()) {
    std::snprintf(buf, sizeof buf, "last %s %.4f at step %lld", metric == "loss" ? "train loss" : metric.c_str(), c.train.back().value,
                  static_cast<long long>(c.train.back().step));
    out += buf;
  }
  if (!c.val.empty()) {
    const auto best = std::min_element(c.val.begin(), c.val.end(),
                                       [](const LossPoint& a, const LossPoint& b) { return a.value < b.value; });
    std::snprintf(buf, sizeof buf, "%sbest val %s %.4f at step %lld", out.empty() ? "" : "  \u00b7  ", metric.c_str(), best->value,
                  static_cast<long long>(best->step));
    out += buf;
  }
  return out;
}

}  // namespace

LossCurves parse_metrics_jsonl(std::string_view text, const std::string& source, const std::string& metric) {
  LossCurves curves;
  size_t pos = 0;
  for (int64_t line_no = 1; pos < text.size(); ++line_no) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = str(source, " line ", line_no);
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    SLLM_CHECK(!j.is_discarded(), str(where, ": not valid JSON: ", std::string(line.substr(0, 80))), kLineHint);
    SLLM_CHECK(j.is_object(), str(where, ": expected a JSON object, got ", j.type_name()), kLineHint);
    const auto step = j.find("step");
    SLLM_CHECK(step != j.end() && step->is_number_integer(),
               str(where, ": missing integer \"step\"", step == j.end() ? std::string() : str(", got ", step->dump())),
               kLineHint);
    const int64_t s = step->get<int64_t>();
    double value = 0;
    if (read_loss(j, metric.c_str(), value, where)) append_point(curves.train, {s, value});
    if (read_loss(j, ("val_" + metric).c_str(), value, where)) append_point(curves.val, {s, value});
  }
  return curves;
}

std::string render_loss_svg(const LossCurves& curves, const PlotOptions& o) {
  SLLM_CHECK(!curves.train.empty() || !curves.val.empty(), str("sllm plot: no ", o.metric, " values to plot"),
             str("metrics.jsonl has no line with \"", o.metric, "\" or \"val_", o.metric,
                 "\" yet (or --metric names no logged key); plot again after the first logged step"));
  SLLM_CHECK(o.smoothing >= 0 && o.smoothing < 1, str("sllm plot: smoothing must be in [0, 1), got ", o.smoothing),
             "0.9 averages over ~10 points, 0.99 over ~100; 0 draws no trend line");
  SLLM_CHECK(o.width >= 300 && o.height >= 200, str("sllm plot: image ", o.width, "x", o.height, " is too small"),
             "use at least 300x200");
  const bool trend = o.smoothing > 0 && curves.train.size() >= 3;
  const std::vector<LossPoint> ema = trend ? debiased_ema(curves.train, o.smoothing) : std::vector<LossPoint>{};

  double smin = INFINITY, smax = -INFINITY, vmin = INFINITY, vmax = -INFINITY;
  for (const auto* curve : {&curves.train, &curves.val})
    for (const auto& p : *curve) {
      SLLM_CHECK(std::isfinite(p.value), str("sllm plot: ", o.metric, " ", p.value, " at step ", p.step, " is not finite"),
                 "the run diverged at this step; plot an earlier part of metrics.jsonl");
      smin = std::min(smin, double(p.step)), smax = std::max(smax, double(p.step));
      vmin = std::min(vmin, p.value), vmax = std::max(vmax, p.value);
    }
  // 2% headroom on y so extreme points do not sit on the frame when they fall on a tick.
  const double ypad = 0.02 * (vmax - vmin);
  const Axis xa = nice_axis(smin, smax, 8, 1.0), ya = nice_axis(vmin - ypad, vmax + ypad, 6, 0.0);
  const Frame f{72, 64, double(o.width) - 72 - 24, double(o.height) - 64 - 56};
  const SvgCanvas canvas(f, xa, ya);
  const size_t buckets = size_t(f.width);

  std::string svg = str("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", o.width, "\" height=\"", o.height,
                        "\" viewBox=\"0 0 ", o.width, " ", o.height,
                        "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n");
  svg += str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
  svg += str("<text x=\"", num(f.left), "\" y=\"26\" font-size=\"16\" font-weight=\"bold\">",
             xml_escape(o.title.empty() ? o.metric : o.title + " \u2014 " + o.metric), "</text>\n");
  svg += str("<text x=\"", num(f.left), "\" y=\"46\" fill=\"#555\">", xml_escape(summary_line(curves, o.metric)), "</text>\n");

  // Grid, ticks and labels.
  svg += "<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">\n";
  for (int i = 0; i < xa.ticks; ++i) {
    const double x = canvas.X(xa.lo + i * xa.spacing);
    svg += str("<line x1=\"", num(x), "\" y1=\"", num(f.top), "\" x2=\"", num(x), "\" y2=\"", num(f.top + f.height),
               "\"/>\n");
  }
  for (int i = 0; i < ya.ticks; ++i) {
    const double y = canvas.Y(ya.lo + i * ya.spacing);
    svg += str("<line x1=\"", num(f.left), "\" y1=\"", num(y), "\" x2=\"", num(f.left + f.width), "\" y2=\"", num(y),
               "\"/>\n");
  }
  svg += "</g>\n<g class=\"axes\" stroke=\"#333\" stroke-width=\"1\">\n";
  svg += str("<rect x=\"", num(f.left), "\" y=\"", num(f.top), "\" width=\"", num(f.width), "\" height=\"",
             num(f.height), "\" fill=\"none\"/>\n");
  for (int i = 0; i < xa.ticks; ++i) {
    const double x = canvas.X(xa.lo + i * xa.spacing);
    svg += str("<line x1=\"", num(x), "\" y1=\"", num(f.top + f.height), "\" x2=\"", num(x), "\" y2=\"",
               num(f.top + f.height + 5), "\"/>\n");
  }
  for (int i = 0; i < ya.ticks; ++i) {
    const double y = canvas.Y(ya.lo + i * ya.spacing);
    svg += str("<line x1=\"", num(f.left - 5), "\" y1=\"", num(y), "\" x2=\"", num(f.left), "\" y2=\"", num(y),
               "\"/>\n");
  }
  svg += "</g>\n<g class=\"tick-labels\" fill=\"#333\">\n";
  for (int i = 0; i < xa.ticks; ++i) {
    const double v = xa.lo + i * xa.spacing;
    svg += str("<text x=\"", num(canvas.X(v)), "\" y=\"", num(f.top + f.height + 19), "\" text-anchor=\"middle\">",
               tick_label(v, xa), "</text>\n");
  }
  for (int i = 0; i < ya.ticks; ++i) {
    const double v = ya.lo + i * ya.spacing;
    svg += str("<text x=\"", num(f.left - 8), "\" y=\"", num(canvas.Y(v)), "\" dy=\"0.32em\" text-anchor=\"end\">",
               tick_label(v, ya), "</text>\n");
  }
  svg += "</g>\n";
  const double ymid = f.top + f.height / 2;
  svg += str("<text x=\"", num(f.left + f.width / 2), "\" y=\"", num(double(o.height) - 14),
             "\" text-anchor=\"middle\">step</text>\n");
  svg += str("<text x=\"18\" y=\"", num(ymid), "\" text-anchor=\"middle\" transform=\"rotate(-90 18 ", num(ymid),
             ")\">", xml_escape(o.metric), "</text>\n");

  // Curves: the faint raw train loss under its trend line, then val on top.
  canvas.series(svg, decimate(curves.train, buckets), trend ? kTrainFaintStyle : kTrainStyle);
  if (trend) canvas.series(svg, decimate(ema, buckets), kEmaStyle);
  canvas.series(svg, decimate(curves.val, buckets), kValStyle);

  // Legend, top right inside the frame (loss curves fall, so that corner is usually empty).
  struct Entry {
    std::string label;
    Style style;
  };
  std::vector<Entry> entries;
  const std::string train_name = o.metric == "loss" ? "train loss" : o.metric;
  if (!curves.train.empty()) entries.push_back({train_name, trend ? kTrainFaintStyle : kTrainStyle});
  if (trend) entries.push_back({str(train_name, " (EMA ", o.smoothing, ")"), kEmaStyle});
  if (!curves.val.empty()) entries.push_back({"val " + o.metric, kValStyle});
  const double lw = 170, lh = 10 + 18.0 * double(entries.size()), lx = f.left + f.width - lw - 10, ly = f.top + 10;
  svg += str("<g class=\"legend\">\n<rect x=\"", num(lx), "\" y=\"", num(ly), "\" width=\"", num(lw), "\" height=\"",
             num(lh), "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#bbb\"/>\n");
  for (size_t i = 0; i < entries.size(); ++i) {
    const Style& s = entries[i].style;
    const double y = ly + 14 + 18.0 * double(i);
    svg += str("<line x1=\"", num(lx + 10), "\" y1=\"", num(y), "\" x2=\"", num(lx + 36), "\" y2=\"", num(y),
               "\" stroke=\"", s.color, "\" stroke-width=\"", s.width, "\" stroke-opacity=\"", s.opacity, "\"/>\n");
    if (s.markers)
      svg += str("<circle cx=\"", num(lx + 23), "\" cy=\"", num(y), "\" r=\"3\" fill=\"", s.color, "\"/>\n");
    svg += str("<text x=\"", num(lx + 44), "\" y=\"", num(y), "\" dy=\"0.32em\">", xml_escape(entries[i].label),
               "</text>\n");
  }
  svg += "</g>\n</svg>\n";
  return svg;
}

std::string plot_run(const std::string& run_dir, const std::string& out_path, double smoothing, const std::string& metric) {
  std::error_code ec;
  SLLM_CHECK(!run_dir.empty() && fs::is_directory(run_dir, ec),
             str("sllm plot: run directory '", run_dir, "' does not exist"),
             "pass the directory `sllm train --out RUN` writes; it holds metrics.jsonl");
  const fs::path metrics = fs::path(run_dir) / "metrics.jsonl";
  SLLM_CHECK(fs::is_regular_file(metrics, ec), str("sllm plot: '", metrics.string(), "' does not exist"),
             "the trainer writes RUN/metrics.jsonl from its first logged step: is this a run directory, and has it "
             "logged a step yet?");
  PlotOptions options;
  options.smoothing = smoothing;
  options.metric = metric;
  options.title = fs::weakly_canonical(fs::absolute(run_dir), ec).filename().string();
  if (options.title.empty()) options.title = run_dir;
  const LossCurves curves = parse_metrics_jsonl(read_file(metrics.string()), metrics.string(), metric);
  const std::string out = out_path.empty() ? (fs::path(run_dir) / (metric + ".svg")).string() : out_path;
  write_file_atomic(out, render_loss_svg(curves, options));
  return out;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace sllm::train
