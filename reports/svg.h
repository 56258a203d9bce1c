// svg.h — small, dependency-free SVG charts for the reports: scatter/line charts with
// linear or log10 axes, and a bit-width heat map. Output is deterministic (fixed
// formatting) and self-contained (no scripts, no external fonts or references).
//
//   Chart c;  c.title = "ResNet-20 / fashion_mnist";  c.x_label = "BitOps";  c.log_x = true;
//   c.series.push_back({"impq run 4", "#1f77b4", {{1e8, 91.2}, {6e7, 90.8}}, /*line=*/true});
//   std::string svg = RenderChart(c);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mpq::reports {

struct Series {
  std::string name;
  std::string color;                               // CSS color, e.g. "#1f77b4"
  std::vector<std::pair<double, double>> points;   // (x, y)
  bool line = false;                               // connect the points in order
  double marker = 3.5;                             // circle radius; 0 = none
  bool dashed = false;
  // Half-heights of vertical error bars, one per point (e.g. a standard deviation);
  // empty = none.
  std::vector<double> y_error = {};
};

struct Chart {
  std::string title, x_label, y_label;
  bool log_x = false;
  int width = 780, height = 400;
  std::vector<Series> series;
};

std::string RenderChart(const Chart& chart);

// Rows = layers (label, bits per group); each group a cell colored by its bits.
struct BitMapRow {
  std::string label;
  std::vector<int64_t> bits;
};
std::string RenderBitMap(const std::string& title, const std::vector<BitMapRow>& rows);

// XML-escapes &, <, >, ".
std::string Escape(const std::string& text);

// A fixed palette, cycling.
const char* PaletteColor(size_t i);

}  // namespace mpq::reports
