// The bar chart SVG: one bar per entry, heights proportional to the values on the axis,
// labels escaped, and bad values rejected.
#include "train/svg_bar_chart.h"

#include <cmath>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"

namespace sllm::train {
namespace {

// The height attribute of every <rect class="bar">, in document order.
std::vector<double> bar_heights(const std::string& svg) {
  std::vector<double> h;
  const std::regex bar(R"re(<rect class="bar"[^>]* height="([0-9.]+)")re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), bar); it != std::sregex_iterator(); ++it)
    h.push_back(std::stod((*it)[1]));
  return h;
}

TEST(SvgBarChart, OneBarPerEntryWithProportionalHeights) {
  BarChartOptions o;
  o.title = "held-out exact match";
  o.y_max = 100;
  const std::string svg = render_bar_svg({{"zero-shot", 0, ""}, {"few-shot", 25, "3 shots"}, {"full", 50, ""}, {"LoRA", 100, ""}}, o);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  const std::vector<double> h = bar_heights(svg);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h[0], 0.0);
  EXPECT_GT(h[3], 100.0);
  EXPECT_NEAR(h[1] / h[3], 0.25, 0.01);
  EXPECT_NEAR(h[2] / h[3], 0.5, 0.01);
  for (const char* text : {">zero-shot<", ">LoRA<", ">3 shots<", ">25.0<", ">100.0<", ">held-out exact match<"})
    EXPECT_NE(svg.find(text), std::string::npos) << text;
}

TEST(SvgBarChart, AutomaticAxisTopIsANiceNumberAboveTheLargestValue) {
  const std::string svg = render_bar_svg({{"a", 3.2, ""}, {"b", 7.9, ""}}, {});
  const std::vector<double> h = bar_heights(svg);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_NEAR(h[0] / h[1], 3.2 / 7.9, 0.01);
  EXPECT_NE(svg.find(">10<"), std::string::npos);  // the axis top: 7.9 rounds up to 10
}

TEST(SvgBarChart, EscapesTextAndRejectsBadValues) {
  const std::string svg = render_bar_svg({{"a<b & \"c\"", 1, ""}}, {});
  EXPECT_NE(svg.find("a&lt;b &amp; &quot;c&quot;"), std::string::npos);
  EXPECT_EQ(svg.find("a<b"), std::string::npos);
  BarChartOptions capped;
  capped.y_max = 100;
  EXPECT_THROW(render_bar_svg({}, {}), Error);
  EXPECT_THROW(render_bar_svg({{"a", -1, ""}}, {}), Error);
  EXPECT_THROW(render_bar_svg({{"a", std::nan(""), ""}}, {}), Error);
  EXPECT_THROW(render_bar_svg({{"a", 101, ""}}, capped), Error);
}

}  // namespace
}  // namespace sllm::train
