#include "common/bench_chart.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

#include "common/bench_report.h"

namespace qilin::tools {
namespace {

// Layout in SVG user units (pixels).
constexpr double kBarWidth = 26, kBarGap = 4, kGroupGap = 28;
constexpr double kLeft = 72, kRight = 24, kLegendTop = 34, kLegendRow = 17;
constexpr double kPanelTitle = 34, kPlotHeight = 220, kAxisLabels = 52;
constexpr double kPanelHeight = kPanelTitle + kPlotHeight + kAxisLabels;
constexpr const char* kColors[] = {"#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#76b7b2", "#b07aa1"};

std::string escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// The axis's top and tick step: a 1, 2, 2.5 or 5 times a power of ten step, about five ticks.
std::pair<double, double> axis_scale(double max_value) {
  if (max_value <= 0) return {1, 0.2};
  const double raw = max_value / 5;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude * 10;
  for (const double m : {1.0, 2.0, 2.5, 5.0}) {
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  }
  return {std::ceil(max_value / step) * step, step};
}

// A group's width: its bars, or its labels (~6.5 units per character at font size 11)
// when they are wider, so long model names do not run into each other.
double group_width(const BenchComparison& c) {
  size_t label = 0;
  for (const BenchComparison::Group& g : c.groups) {
    label = std::max({label, g.model.size(), g.type.size() + 3 + g.test.name().size()});
  }
  return std::max(static_cast<double>(c.columns.size()) * (kBarWidth + kBarGap) + kGroupGap,
                  6.5 * static_cast<double>(label) + 12);
}

std::string number(double v) { return v >= 100 ? fmt::format("{:.0f}", v) : fmt::format("{:.3g}", v); }

// One panel (the groups of one kind of test), its top edge at `top`.
std::string panel(const BenchComparison& c, BenchTest::Kind kind, double top, double width) {
  std::vector<const BenchComparison::Group*> groups;
  double max_value = 0;
  for (const BenchComparison::Group& g : c.groups) {
    if (g.test.kind != kind) continue;
    groups.push_back(&g);
    for (const BenchRow* r : g.cells) max_value = r != nullptr ? std::max(max_value, r->stats.mean) : max_value;
  }
  const auto [axis_top, step] = axis_scale(max_value);
  const double plot_top = top + kPanelTitle, plot_bottom = plot_top + kPlotHeight;
  auto y_of = [&](double v) { return plot_bottom - kPlotHeight * v / axis_top; };

  std::string out =
      fmt::format("<g class=\"panel\" data-kind=\"{}\">\n", kind == BenchTest::Kind::prompt ? "pp" : "tg");
  out += fmt::format(
      "<text x=\"{}\" y=\"{}\" font-size=\"15\" font-weight=\"bold\">{}</text>\n", kLeft, top + 20,
      kind == BenchTest::Kind::prompt ? "Prompt processing (pp): tokens/s" : "Text generation (tg): tokens/s");
  // Grid lines and tick labels of the y axis, then the axes.
  for (double v = 0; v <= axis_top + step / 2; v += step) {
    out += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", kLeft, y_of(v),
                       width - kRight, y_of(v));
    out += fmt::format("<text x=\"{}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"end\">{}</text>\n", kLeft - 6,
                       y_of(v) + 4, number(v));
  }
  out += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#333\"/>\n", kLeft, plot_top,
                     plot_bottom);
  out += fmt::format("<line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"#333\"/>\n", kLeft, width - kRight,
                     plot_bottom);
  out += fmt::format(
      "<text transform=\"translate({:.1f} {:.1f}) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">tokens/s "
      "(label: % of the device's roofline)</text>\n",
      kLeft - 52, plot_top + kPlotHeight / 2);

  const double group_w = group_width(c),
               bars_w = static_cast<double>(c.columns.size()) * (kBarWidth + kBarGap) - kBarGap;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const BenchComparison::Group& g = *groups[gi];
    const double x0 = kLeft + static_cast<double>(gi) * group_w + (group_w - bars_w) / 2;
    for (size_t col = 0; col < g.cells.size(); ++col) {
      const BenchRow* r = g.cells[col];
      if (r == nullptr) continue;
      const double x = x0 + static_cast<double>(col) * (kBarWidth + kBarGap), y = y_of(r->stats.mean);
      const double percent = roofline_percent(*r);
      out += fmt::format(
          "<rect class=\"bar\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{}\" height=\"{:.1f}\" fill=\"{}\" data-device=\"{}\" "
          "data-model=\"{}\" data-type=\"{}\" data-test=\"{}\" data-value=\"{:.6g}\"><title>{} {} {} on {}: {:.2f} "
          "t/s{}</title></rect>\n",
          x, y, kBarWidth, plot_bottom - y, kColors[col % std::size(kColors)], escape(c.columns[col]), escape(g.model),
          escape(g.type), g.test.name(), r->stats.mean, escape(g.model), escape(g.type), g.test.name(),
          escape(c.columns[col]), r->stats.mean,
          percent > 0 ? fmt::format(", {:.0f}% of roofline", percent) : std::string());
      out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"9\" text-anchor=\"middle\">{}</text>\n",
                         x + kBarWidth / 2, y - (percent > 0 ? 13 : 3), number(r->stats.mean));
      if (percent > 0) {
        out += fmt::format(
            "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"9\" text-anchor=\"middle\" "
            "fill=\"#555\">{:.0f}%</text>\n",
            x + kBarWidth / 2, y - 3, percent);
      }
    }
    const double centre = x0 + bars_w / 2;
    out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\n", centre,
                       plot_bottom + 16, escape(g.model));
    out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"middle\">{} · {}</text>\n",
                       centre, plot_bottom + 30, escape(g.type), g.test.name());
  }
  out += "</g>\n";
  return out;
}

}  // namespace

std::string bench_svg_chart(const std::vector<BenchRow>& rows) {
  const BenchComparison c = compare_devices(rows);
  size_t pp_groups = 0, tg_groups = 0;
  for (const BenchComparison::Group& g : c.groups) ++(g.test.kind == BenchTest::Kind::prompt ? pp_groups : tg_groups);
  const double width =
      std::max(560.0, kLeft + static_cast<double>(std::max(pp_groups, tg_groups)) * group_width(c) + kRight);
  const int panels = (pp_groups > 0) + (tg_groups > 0);
  const double legend_height = kLegendTop + kLegendRow * static_cast<double>(c.columns.size()) + 6;
  const double height = legend_height + panels * kPanelHeight + 10;

  std::string out = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0:.0f}\" height=\"{1:.0f}\" viewBox=\"0 0 {0:.0f} {1:.0f}\" "
      "font-family=\"sans-serif\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"22\" font-size=\"16\" font-weight=\"bold\">qilin-bench: throughput by device</text>\n",
      width, height, kLeft);
  // Legend: one swatch per device column, one line each (device names can be long).
  const bool with_threads = several_cpu_thread_counts(rows);
  for (size_t col = 0; col < c.columns.size(); ++col) {
    const double y = kLegendTop + kLegendRow * static_cast<double>(col);
    out += fmt::format("<rect class=\"legend\" x=\"{}\" y=\"{:.1f}\" width=\"12\" height=\"12\" fill=\"{}\"/>\n", kLeft,
                       y, kColors[col % std::size(kColors)]);
    std::string label = c.columns[col];
    for (const BenchRow& r : rows) {
      if (device_label(r, with_threads) == c.columns[col] && !r.device_name.empty()) {
        label += " (" + r.device_name + ")";
        break;
      }
    }
    out += fmt::format("<text x=\"{}\" y=\"{:.1f}\" font-size=\"12\">{}</text>\n", kLeft + 16, y + 11, escape(label));
  }
  double top = legend_height;
  if (pp_groups > 0) {
    out += panel(c, BenchTest::Kind::prompt, top, width);
    top += kPanelHeight;
  }
  if (tg_groups > 0) out += panel(c, BenchTest::Kind::generation, top, width);
  out += "</svg>\n";
  return out;
}

}  // namespace qilin::tools
