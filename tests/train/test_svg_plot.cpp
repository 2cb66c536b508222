// sllm plot: metrics.jsonl parsing (blank, null, resumed and malformed lines) and the SVG
// document: well-formed XML, the expected series, finite in-frame coordinates, loss drawn
// with y growing downwards, and the run-directory entry point.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "train/svg_plot.h"

namespace sllm::train {
namespace {

namespace fs = std::filesystem;

std::string synthetic_metrics(int steps, int eval_every) {
  std::string text;
  for (int s = 1; s <= steps; ++s) {
    const double loss = 2.0 + 8.0 * std::exp(-s / 30.0) + 0.1 * std::sin(s * 1.7);
    text += str("{\"step\": ", s, ", \"loss\": ", loss, ", \"lr\": 0.0006, \"tokens_per_s\": 51234.5");
    if (s % eval_every == 0) text += str(", \"val_loss\": ", loss + 0.15);
    text += "}\n";
  }
  return text;
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

// Minimal XML well-formedness for what we emit: every start tag is closed in order.
void expect_balanced_tags(const std::string& svg) {
  std::vector<std::string> open;
  const std::regex tag(R"(<(/?)([a-zA-Z]+)[^>]*?(/?)>)");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), tag); it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[2];
    if ((*it)[3] == "/") continue;  // self-closing
    if ((*it)[1] == "/") {
      ASSERT_FALSE(open.empty()) << "stray </" << name << ">";
      ASSERT_EQ(open.back(), name) << "mismatched </" << name << ">";
      open.pop_back();
    } else {
      open.push_back(name);
    }
  }
  EXPECT_TRUE(open.empty()) << open.size() << " unclosed tags, first <" << (open.empty() ? "" : open[0]) << ">";
  EXPECT_EQ(svg.find('<', 0), svg.find("<svg"));
  EXPECT_EQ(count(svg, "<svg"), 1u);
}

// Every number in a coordinate attribute is finite and inside the width x height canvas.
void expect_finite_coordinates_inside(const std::string& svg, double width, double height) {
  const std::regex attr(R"re(\s(points|x|y|x1|y1|x2|y2|cx|cy)="([^"]*)")re");
  int checked = 0;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), attr); it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[1];
    std::string values = (*it)[2];
    for (char& c : values)
      if (c == ',') c = ' ';
    const char* p = values.c_str();
    for (int k = 0;; ++k) {
      char* end = nullptr;
      const double v = std::strtod(p, &end);
      if (end == p) break;
      ASSERT_TRUE(std::isfinite(v)) << name << "=" << values;
      const bool is_x = name[0] == 'x' || name == "cx" || (name == "points" && k % 2 == 0);
      EXPECT_GE(v, 0.0) << name;
      EXPECT_LE(v, is_x ? width : height) << name;
      ++checked;
      p = end;
    }
  }
  EXPECT_GT(checked, 20);
}

// The (x, y) pairs of the polyline with this class.
std::vector<std::pair<double, double>> polyline_points(const std::string& svg, const std::string& cls) {
  const std::regex line("<polyline class=\"" + cls + "\"[^>]*points=\"([^\"]*)\"");
  std::smatch m;
  std::vector<std::pair<double, double>> out;
  if (!std::regex_search(svg, m, line)) return out;
  std::string s = m[1];
  double x, y;
  int used = 0;
  for (const char* p = s.c_str(); std::sscanf(p, "%lf,%lf%n", &x, &y, &used) == 2; p += used) out.emplace_back(x, y);
  return out;
}

TEST(SvgPlot, ParsesTrainAndValPointsSkippingBlankAndNullLines) {
  const std::string text =
      "{\"step\": 1, \"loss\": 10.5, \"lr\": 0.0}\n"
      "\n"
      "   \r\n"
      "{\"step\": 2, \"loss\": 9.0, \"val_loss\": 9.5}\r\n"
      "{\"step\": 3, \"loss\": null}\n"
      "{\"step\": 4, \"tokens_per_s\": 100}\n"
      "{\"step\": 5, \"loss\": 8}";  // no final newline
  const LossCurves c = parse_metrics_jsonl(text, "m.jsonl");
  ASSERT_EQ(c.train.size(), 3u);
  EXPECT_EQ(c.train[0].step, 1);
  EXPECT_EQ(c.train[0].value, 10.5);
  EXPECT_EQ(c.train[1].step, 2);
  EXPECT_EQ(c.train[2].step, 5);
  EXPECT_EQ(c.train[2].value, 8.0);
  ASSERT_EQ(c.val.size(), 1u);
  EXPECT_EQ(c.val[0].step, 2);
  EXPECT_EQ(c.val[0].value, 9.5);
}

TEST(SvgPlot, AResumedRunsLaterRecordsReplaceTheOverlap) {
  const std::string text =
      "{\"step\": 1, \"loss\": 5}\n{\"step\": 2, \"loss\": 4}\n{\"step\": 3, \"loss\": 3}\n"
      "{\"step\": 2, \"loss\": 4.5}\n{\"step\": 3, \"loss\": 3.5}\n";
  const LossCurves c = parse_metrics_jsonl(text, "m.jsonl");
  ASSERT_EQ(c.train.size(), 3u);
  EXPECT_EQ(c.train[1].value, 4.5);
  EXPECT_EQ(c.train[2].value, 3.5);
}

TEST(SvgPlot, MalformedLinesRaiseErrorsNamingTheLine) {
  const std::string good = "{\"step\": 1, \"loss\": 2.5}\n\n";  // lines 1 and 2
  for (const std::string bad : {"{\"step\": 3, \"loss\": 2.", "[1, 2]", "{\"loss\": 2.0}", "{\"step\": 3.5, \"loss\": 1}",
                                "{\"step\": \"3\", \"loss\": 1}", "{\"step\": 3, \"loss\": \"low\"}",
                                "{\"step\": 3, \"val_loss\": [1]}", "not json"}) {
    try {
      parse_metrics_jsonl(good + bad + "\n" + good, "run/metrics.jsonl");
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("run/metrics.jsonl line 3"), std::string::npos) << e.what();
      EXPECT_FALSE(e.hint().empty());
    }
  }
}

TEST(SvgPlot, RendersAWellFormedSvgWithTrainTrendAndValCurves) {
  const LossCurves c = parse_metrics_jsonl(synthetic_metrics(200, 25), "m.jsonl");
  ASSERT_EQ(c.val.size(), 8u);
  PlotOptions o;
  o.title = "tiny & <fast>";
  const std::string svg = render_loss_svg(c, o);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  expect_balanced_tags(svg);
  expect_finite_coordinates_inside(svg, o.width, o.height);
  EXPECT_EQ(count(svg, "<polyline"), 3u);  // train, its EMA trend, val
  EXPECT_NE(svg.find("tiny &amp; &lt;fast&gt;"), std::string::npos);
  EXPECT_NE(svg.find(">val loss<"), std::string::npos);
  EXPECT_NE(svg.find(">step<"), std::string::npos);
  EXPECT_EQ(count(svg, "<circle"), 8u + 1u);  // a marker per val point, one in the legend

  const auto train = polyline_points(svg, "train"), val = polyline_points(svg, "val");
  ASSERT_EQ(train.size(), 200u);
  ASSERT_EQ(val.size(), 8u);
  // Steps go right; the loss falls, so the curve goes down the page (y grows downwards).
  for (size_t i = 1; i < train.size(); ++i) EXPECT_GT(train[i].first, train[i - 1].first);
  EXPECT_LT(train.front().second, train.back().second);
  // Val at step 25k sits 0.15 above train at the same step: same x, smaller y.
  EXPECT_NEAR(val[0].first, train[24].first, 1e-9);
  EXPECT_LT(val[0].second, train[24].second);
}

TEST(SvgPlot, RunWithoutValPointsAndWithoutSmoothing) {
  const LossCurves c = parse_metrics_jsonl(synthetic_metrics(50, 1000), "m.jsonl");
  PlotOptions o;
  o.smoothing = 0;
  const std::string svg = render_loss_svg(c, o);
  expect_balanced_tags(svg);
  expect_finite_coordinates_inside(svg, o.width, o.height);
  EXPECT_EQ(count(svg, "<polyline"), 1u);
  EXPECT_EQ(svg.find("val loss"), std::string::npos);
  EXPECT_EQ(svg.find("EMA"), std::string::npos);
}

TEST(SvgPlot, SinglePointsAreDrawnAsMarkers) {
  const LossCurves c = parse_metrics_jsonl("{\"step\": 7, \"loss\": 3.25, \"val_loss\": 3.25}\n", "m.jsonl");
  PlotOptions o;
  const std::string svg = render_loss_svg(c, o);
  expect_balanced_tags(svg);
  expect_finite_coordinates_inside(svg, o.width, o.height);
  EXPECT_EQ(count(svg, "<polyline"), 0u);
  EXPECT_EQ(count(svg, "<circle"), 2u + 1u);  // train point, val point, val legend marker
  EXPECT_NE(svg.find(">7<"), std::string::npos);  // the step appears as a tick label
}

TEST(SvgPlot, LongRunsAreDecimatedKeepingSpikes) {
  LossCurves c;
  for (int s = 1; s <= 100000; ++s) c.train.push_back({s, s == 50000 ? 9.0 : 3.0 + 1.0 / s});
  PlotOptions o;
  o.smoothing = 0;
  const std::string svg = render_loss_svg(c, o);
  const auto train = polyline_points(svg, "train");
  EXPECT_LE(train.size(), 2u * size_t(o.width));
  EXPECT_GT(train.size(), size_t(o.width) / 2);
  // The spike (9 at step 50000) survives: on the linear y axis its height above the last
  // point (~3) is 6 times that of the first point (4), whatever ticks the axis chose.
  double top = 1e9;
  for (const auto& p : train) top = std::min(top, p.second);
  const double base = train.back().second;
  EXPECT_NEAR((base - top) / (base - train.front().second), 6.0, 0.01);
}

TEST(SvgPlot, RejectsNothingToPlotAndBadOptions) {
  EXPECT_THROW(render_loss_svg(LossCurves{}, PlotOptions{}), Error);
  const LossCurves c = parse_metrics_jsonl(synthetic_metrics(5, 1000), "m.jsonl");
  PlotOptions o;
  o.smoothing = 1.0;
  EXPECT_THROW(render_loss_svg(c, o), Error);
}

class PlotRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / str("sllm_plot_test_", getpid(), "_", ::testing::UnitTest::GetInstance()->random_seed());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "my-run");
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(PlotRun, WritesLossSvgIntoTheRunByDefault) {
  const fs::path run = dir_ / "my-run";
  write_file_atomic((run / "metrics.jsonl").string(), synthetic_metrics(30, 10));
  EXPECT_EQ(plot_run(run.string() + "/", "", 0.9), (run / "loss.svg").string());
  const std::string svg = read_file((run / "loss.svg").string());
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("my-run \u2014 loss"), std::string::npos);  // title from the directory name
  const fs::path other = dir_ / "elsewhere.svg";
  EXPECT_EQ(plot_run(run.string(), other.string(), 0.0), other.string());
  EXPECT_TRUE(fs::exists(other));
}

TEST_F(PlotRun, MissingRunOrMetricsOrBadLineRaiseErrors) {
  EXPECT_THROW(plot_run((dir_ / "nope").string(), "", 0.9), Error);
  EXPECT_THROW(plot_run((dir_ / "my-run").string(), "", 0.9), Error);  // no metrics.jsonl yet
  write_file_atomic((dir_ / "my-run" / "metrics.jsonl").string(), "{\"step\": 1, \"loss\": 3}\n{oops\n");
  try {
    plot_run((dir_ / "my-run").string(), "", 0.9);
    ADD_FAILURE() << "malformed metrics accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir_ / "my-run" / "loss.svg"));
}

}  // namespace
}  // namespace sllm::train

namespace sllm::train {
namespace {

TEST(SvgPlot, AnotherMetricIsReadAndNamedInsteadOfTheLoss) {
  const std::string text =
      "{\"step\": 1, \"reward_mean\": 0.25, \"kl\": 0.0, \"loss\": 9}\n"
      "{\"step\": 2, \"reward_mean\": 0.5, \"kl\": 0.1}\n"
      "{\"step\": 3, \"kl\": 0.2}\n";
  const LossCurves c = parse_metrics_jsonl(text, "m.jsonl", "reward_mean");
  ASSERT_EQ(c.train.size(), 2u);
  EXPECT_EQ(c.train[1].step, 2);
  EXPECT_EQ(c.train[1].value, 0.5);
  EXPECT_TRUE(c.val.empty());
  PlotOptions o;
  o.metric = "reward_mean";
  o.smoothing = 0;
  const std::string svg = render_loss_svg(c, o);
  EXPECT_NE(svg.find(">reward_mean</text>"), std::string::npos);  // the y axis
  EXPECT_NE(svg.find("last reward_mean 0.5000 at step 2"), std::string::npos);
  EXPECT_EQ(svg.find("loss"), std::string::npos);
  EXPECT_THROW(render_loss_svg(parse_metrics_jsonl(text, "m.jsonl", "no_such_key"), o), Error);
}

}  // namespace
}  // namespace sllm::train
