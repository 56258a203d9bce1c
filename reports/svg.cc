#include "reports/svg.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mpq::reports {
namespace {

// "Nice" tick positions covering [lo, hi] (about `count` of them).
std::vector<double> Ticks(double lo, double hi, int count) {
  std::vector<double> t;
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / count;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
  return t;
}

std::string Number(double v) {
  const double a = std::fabs(v);
  if (a != 0 && (a >= 1e5 || a < 1e-3)) return absl::StrFormat("%.3g", v);
  return absl::StrFormat("%.4g", v);
}

}  // namespace

std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

const char* PaletteColor(size_t i) {
  static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return kColors[i % 10];
}

std::string RenderChart(const Chart& c) {
  const double left = 64, right = 300, top = 34, bottom = 48;
  const double pw = c.width - left - right, ph = c.height - top - bottom;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  auto tx = [&](double x) { return c.log_x ? std::log10(x) : x; };
  // The error bar of point i of s (0 when it has none).
  auto err = [](const Series& s, size_t i) { return i < s.y_error.size() ? std::fabs(s.y_error[i]) : 0.0; };
  for (const Series& s : c.series) {
    for (size_t i = 0; i < s.points.size(); ++i) {
      const auto& [x, y] = s.points[i];
      if (c.log_x && !(x > 0)) continue;
      x0 = std::min(x0, tx(x));
      x1 = std::max(x1, tx(x));
      y0 = std::min(y0, y - err(s, i));
      y1 = std::max(y1, y + err(s, i));
    }
  }
  std::string out = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n"
      "<text x=\"%d\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">%s</text>\n",
      c.width, c.height, c.width, c.height, c.width, c.height, c.width / 2, Escape(c.title));
  if (!std::isfinite(x0)) return out + "<text x=\"20\" y=\"60\">no data</text>\n</svg>\n";
  if (x1 - x0 < 1e-12) { x0 -= c.log_x ? 0.5 : std::max(1.0, std::fabs(x0) * 0.1); x1 += c.log_x ? 0.5 : std::max(1.0, std::fabs(x1) * 0.1); }
  if (y1 - y0 < 1e-12) { y0 -= 1; y1 += 1; }
  const double xpad = (x1 - x0) * 0.05, ypad = (y1 - y0) * 0.08;
  x0 -= xpad; x1 += xpad; y0 -= ypad; y1 += ypad;
  auto px = [&](double x) { return left + (tx(x) - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return top + (1 - (y - y0) / (y1 - y0)) * ph; };
  absl::StrAppendFormat(&out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444444\"/>\n",
                        left, top, pw, ph);
  // Axes: ticks and grid.
  std::vector<double> xt;
  if (c.log_x) {
    for (double e = std::ceil(x0); e <= x1; e += 1) xt.push_back(std::pow(10.0, e));
    if (xt.size() < 2) {
      for (double v : Ticks(std::pow(10.0, x0), std::pow(10.0, x1), 4)) if (v > 0) xt.push_back(v);
    }
  } else {
    xt = Ticks(x0, x1, 5);
  }
  for (double v : xt) {
    const double x = px(v);
    if (x < left - 0.5 || x > left + pw + 0.5) continue;
    absl::StrAppendFormat(&out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#dddddd\"/>"
                                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                          x, top, x, top + ph, x, top + ph + 14, Number(v));
  }
  for (double v : Ticks(y0, y1, 5)) {
    const double y = py(v);
    absl::StrAppendFormat(&out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#dddddd\"/>"
                                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                          left, y, left + pw, y, left - 4, y + 4, Number(v));
  }
  absl::StrAppendFormat(&out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", left + pw / 2,
                        c.height - 10, Escape(c.x_label + (c.log_x ? " (log scale)" : "")));
  absl::StrAppendFormat(&out, "<text x=\"14\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 14 %.1f)\">%s</text>\n",
                        top + ph / 2, top + ph / 2, Escape(c.y_label));
  // Series and legend.
  double ly = top + 6;
  for (const Series& s : c.series) {
    std::string pts;
    for (const auto& [x, y] : s.points) {
      if (c.log_x && !(x > 0)) continue;
      absl::StrAppendFormat(&pts, "%s%.1f,%.1f", pts.empty() ? "" : " ", px(x), py(y));
    }
    if (s.line && !pts.empty()) {
      absl::StrAppendFormat(&out, "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"%s/>\n", pts,
                            s.color, s.dashed ? " stroke-dasharray=\"4 3\"" : "");
    }
    for (size_t i = 0; i < s.points.size(); ++i) {
      const auto& [x, y] = s.points[i];
      if ((c.log_x && !(x > 0)) || err(s, i) == 0) continue;
      absl::StrAppendFormat(&out,
                            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>"
                            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>"
                            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n",
                            px(x), py(y - err(s, i)), px(x), py(y + err(s, i)), s.color, px(x) - 4,
                            py(y - err(s, i)), px(x) + 4, py(y - err(s, i)), s.color, px(x) - 4, py(y + err(s, i)),
                            px(x) + 4, py(y + err(s, i)), s.color);
    }
    if (s.marker > 0) {
      for (const auto& [x, y] : s.points) {
        if (c.log_x && !(x > 0)) continue;
        absl::StrAppendFormat(&out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n", px(x), py(y), s.marker,
                              s.color);
      }
    }
    if (!s.name.empty()) {
      absl::StrAppendFormat(&out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                                  "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                            left + pw + 10, ly, s.color, left + pw + 24, ly + 9, Escape(s.name));
      ly += 15;
    }
  }
  return out + "</svg>\n";
}

std::string RenderBitMap(const std::string& title, const std::vector<BitMapRow>& rows) {
  static const char* kBitColors[] = {"#000000", "#08306b", "#2171b5", "#6baed6", "#c6dbef",
                                     "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704"};  // 1..8 bits
  const double label_w = 170, cell_h = 12, top = 30;
  size_t widest = 1;
  for (const BitMapRow& r : rows) widest = std::max(widest, r.bits.size());
  const double cell_w = std::max(0.5, std::min(8.0, 520.0 / static_cast<double>(widest)));
  const int width = static_cast<int>(std::max(label_w + cell_w * widest + 20, label_w + 8 * 34.0 + 90));
  const int height = static_cast<int>(top + cell_h * rows.size() + 40);
  std::string out = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
      "font-family=\"sans-serif\" font-size=\"10\">\n<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n"
      "<text x=\"4\" y=\"16\" font-size=\"12\">%s</text>\n",
      width, height, width, height, width, height, Escape(title));
  for (size_t i = 0; i < rows.size(); ++i) {
    const double y = top + cell_h * i;
    absl::StrAppendFormat(&out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", label_w - 4, y + 9,
                          Escape(rows[i].label));
    // Runs of equal bits become one rectangle (kernel-wise maps have thousands of cells).
    const std::vector<int64_t>& b = rows[i].bits;
    for (size_t j = 0; j < b.size();) {
      size_t k = j;
      while (k < b.size() && b[k] == b[j]) ++k;
      const char* color = b[j] >= 1 && b[j] <= 8 ? kBitColors[b[j]] : "#bbbbbb";
      absl::StrAppendFormat(&out, "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" fill=\"%s\"/>\n",
                            label_w + cell_w * j, y, cell_w * (k - j), cell_h - 1, color);
      j = k;
    }
  }
  const double ly = top + cell_h * rows.size() + 12;
  for (int bits = 1; bits <= 8; ++bits) {
    absl::StrAppendFormat(&out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"10\" fill=\"%s\"/>"
                                "<text x=\"%.1f\" y=\"%.1f\">%d</text>\n",
                          label_w + (bits - 1) * 34.0, ly, kBitColors[bits], label_w + (bits - 1) * 34.0 + 15, ly + 9, bits);
  }
  absl::StrAppendFormat(&out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"10\" fill=\"#bbbbbb\"/>"
                              "<text x=\"%.1f\" y=\"%.1f\">FP / other</text>\n",
                        label_w + 8 * 34.0, ly, label_w + 8 * 34.0 + 15, ly + 9);
  absl::StrAppendFormat(&out, "<text x=\"4\" y=\"%.1f\">bits:</text>\n", ly + 9);
  return out + "</svg>\n";
}

}  // namespace mpq::reports
