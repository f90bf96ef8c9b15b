// The calibration report as one self-contained HTML page (docs/report.md): inline SVG and CSS
// only — no script, font or image from anywhere — so it opens offline and can be attached to a
// bug report. A summary table ordered by output SQNR (the worst layer first), then per layer its
// settings, the input histogram (log scale) with each method's range and the chosen grid, and
// its weights' per-channel ranges against their grid.
#ifndef AMCTQ_IO_REPORT_HTML_HPP
#define AMCTQ_IO_REPORT_HTML_HPP

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "amctq/graph/layer_report.hpp"

namespace amctq::io {

namespace detail {

inline std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

inline std::string fmt(double v, const char* f = "%.4g") {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char b[48];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// One colour per method, in report_methods() order; the chosen grid is drawn in black.
inline const char* method_colour(std::size_t k) {
  static const char* c[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                            "#8c564b", "#e377c2", "#7f7f7f", "#17becf"};
  return c[k % 9];
}

constexpr double plot_w = 640, plot_h = 150, pad = 34;

// x position of value v on an axis spanning [lo, hi].
inline double x_of(double v, double lo, double hi) {
  return pad + (hi > lo ? (v - lo) / (hi - lo) : 0.5) * (plot_w - 2 * pad);
}

inline std::string histogram_svg(const graph::layer_report& e) {
  double lo = e.in_min, hi = e.in_max;
  for (const auto& r : e.ranges) lo = std::min<double>(lo, r.lo), hi = std::max<double>(hi, r.hi);
  if (e.has_chosen) lo = std::min<double>(lo, e.chosen_lo), hi = std::max<double>(hi, e.chosen_hi);
  const double top = std::log10(1.0 + *std::max_element(e.hist.begin(), e.hist.end()));
  std::string s = "<svg class=\"plot\" width=\"" + fmt(plot_w) + "\" height=\"" + fmt(plot_h + 40) +
                  "\" viewBox=\"0 0 " + fmt(plot_w) + " " + fmt(plot_h + 40) + "\">";
  s += "<rect x=\"0\" y=\"0\" width=\"" + fmt(plot_w) + "\" height=\"" + fmt(plot_h) + "\" fill=\"#f7f7f7\"/>";
  const double bw = (x_of(e.in_max, lo, hi) - x_of(e.in_min, lo, hi)) / static_cast<double>(e.hist.size());
  for (std::size_t b = 0; b < e.hist.size(); ++b) {
    if (e.hist[b] <= 0) continue;
    const double h = top > 0 ? std::log10(1.0 + e.hist[b]) / top * (plot_h - 12) : 0;
    s += "<rect x=\"" + fmt(x_of(e.in_min, lo, hi) + static_cast<double>(b) * bw) + "\" y=\"" + fmt(plot_h - h) +
         "\" width=\"" + fmt(std::max(bw, 0.5)) + "\" height=\"" + fmt(h) + "\" fill=\"#9ecae1\"/>";
  }
  auto vline = [&](double v, const char* colour, double width, double y0) {
    const std::string x = fmt(x_of(v, lo, hi));
    s += "<line x1=\"" + x + "\" x2=\"" + x + "\" y1=\"" + fmt(y0) + "\" y2=\"" + fmt(plot_h) + "\" stroke=\"" + colour +
         "\" stroke-width=\"" + fmt(width) + "\"/>";
  };
  for (std::size_t k = 0; k < e.ranges.size(); ++k) {
    const double y0 = 2.0 + 4.0 * static_cast<double>(k);  // staggered tops so coinciding ranges stay visible
    vline(e.ranges[k].lo, method_colour(k), 1.2, y0);
    vline(e.ranges[k].hi, method_colour(k), 1.2, y0);
  }
  if (e.has_chosen) {
    vline(e.chosen_lo, "#000", 2.5, 0);
    vline(e.chosen_hi, "#000", 2.5, 0);
  }
  s += "<text x=\"" + fmt(pad) + "\" y=\"" + fmt(plot_h + 14) + "\" class=\"ax\">" + fmt(lo) + "</text>";
  s += "<text x=\"" + fmt(plot_w - pad) + "\" y=\"" + fmt(plot_h + 14) + "\" class=\"ax\" text-anchor=\"end\">" +
       fmt(hi) + "</text>";
  double lx = pad;
  for (std::size_t k = 0; k < e.ranges.size(); ++k) {
    s += "<text x=\"" + fmt(lx) + "\" y=\"" + fmt(plot_h + 32) + "\" class=\"lg\" fill=\"" + method_colour(k) + "\">" +
         to_string(e.ranges[k].method) + "</text>";
    lx += 6.5 * static_cast<double>(std::strlen(to_string(e.ranges[k].method))) + 12;  // about 6.5 px a character at 11 px
  }
  return s + "</svg>";
}

inline std::string weights_svg(const graph::layer_report& e) {
  const std::size_t n = e.w_min.size();
  double lo = 0, hi = 0;
  for (std::size_t c = 0; c < n; ++c)
    lo = std::min<double>({lo, e.w_min[c], e.w_lo[c]}), hi = std::max<double>({hi, e.w_max[c], e.w_hi[c]});
  auto y_of = [&](double v) { return 6 + (hi > lo ? (hi - v) / (hi - lo) : 0.5) * (plot_h - 12); };
  const double step = (plot_w - 2 * pad) / static_cast<double>(std::max<std::size_t>(n, 1));
  std::string s = "<svg class=\"plot\" width=\"" + fmt(plot_w) + "\" height=\"" + fmt(plot_h + 18) + "\" viewBox=\"0 0 " +
                  fmt(plot_w) + " " + fmt(plot_h + 18) + "\">";
  s += "<rect x=\"0\" y=\"0\" width=\"" + fmt(plot_w) + "\" height=\"" + fmt(plot_h) + "\" fill=\"#f7f7f7\"/>";
  for (std::size_t c = 0; c < n; ++c) {
    const double x = pad + step * static_cast<double>(c);
    s += "<rect x=\"" + fmt(x) + "\" y=\"" + fmt(y_of(e.w_max[c])) + "\" width=\"" + fmt(std::max(step * 0.8, 0.5)) +
         "\" height=\"" + fmt(std::max(y_of(e.w_min[c]) - y_of(e.w_max[c]), 0.5)) + "\" fill=\"#fdae6b\"/>";
    for (double v : {static_cast<double>(e.w_lo[c]), static_cast<double>(e.w_hi[c])})
      s += "<line x1=\"" + fmt(x) + "\" x2=\"" + fmt(x + step) + "\" y1=\"" + fmt(y_of(v)) + "\" y2=\"" + fmt(y_of(v)) +
           "\" stroke=\"#000\" stroke-width=\"1\"/>";
  }
  s += "<text x=\"" + fmt(pad) + "\" y=\"" + fmt(plot_h + 14) + "\" class=\"ax\">" + std::to_string(n) +
       " output channels: float min..max (bars), grid reach (lines); axis " + fmt(lo) + " .. " + fmt(hi) + "</text>";
  return s + "</svg>";
}

}  // namespace detail

/// The report page for `layers` (graph::build_layer_report) of the model titled `title`.
inline std::string render_report_html(const std::vector<graph::layer_report>& layers, const std::string& title) {
  using detail::fmt;
  using detail::html_escape;
  std::vector<std::size_t> order(layers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return layers[a].sqnr_db < layers[b].sqnr_db; });
  std::string h = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>amctq report: " + html_escape(title) +
                  "</title><style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse}"
                  "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}td.n{text-align:right}"
                  ".ax{font-size:11px;fill:#444}.lg{font-size:11px}section{margin:28px 0}h2{font-size:17px}"
                  ".plot{display:block;margin:6px 0}</style></head><body>";
  h += "<h1>amctq calibration report</h1><p>" + html_escape(title) + ": " + std::to_string(layers.size()) +
       " quantized layers. Output SQNR and cosine compare each layer's output in the fake-quant model with the float "
       "model's over the calibration batches; the worst layer is first.</p>";
  h += "<table id=\"summary\"><tr><th>layer</th><th>op</th><th>output SQNR dB</th><th>cosine</th><th>settings</th></tr>";
  for (std::size_t i : order) {
    const auto& e = layers[i];
    h += "<tr><td><a href=\"#l" + std::to_string(i) + "\">" + html_escape(e.name) + "</a></td><td>" +
         html_escape(e.op_type) + "</td><td class=\"n\">" + fmt(e.sqnr_db, "%.2f") + "</td><td class=\"n\">" +
         fmt(e.cosine, "%.6f") + "</td><td>" + html_escape(e.settings) + "</td></tr>";
  }
  h += "</table>";
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const auto& e = layers[i];
    h += "<section id=\"l" + std::to_string(i) + "\"><h2>" + html_escape(e.name) + " (" + html_escape(e.op_type) +
         ")</h2><p>" + html_escape(e.settings) + "<br>output SQNR " + fmt(e.sqnr_db, "%.2f") + " dB, cosine " +
         fmt(e.cosine, "%.6f") + "</p>";
    if (!e.hist.empty()) {
      h += "<p>input over the calibration batches: min " + fmt(e.in_min) + ", max " + fmt(e.in_max) +
           "; histogram, log scale; each method's range (coloured), the chosen grid (black)";
      if (e.has_chosen) h += " [" + fmt(e.chosen_lo) + ", " + fmt(e.chosen_hi) + "]";
      h += "</p>" + detail::histogram_svg(e) + "<table><tr><th>method</th><th>min</th><th>max</th></tr>";
      for (const auto& r : e.ranges)
        h += std::string("<tr><td>") + to_string(r.method) + "</td><td class=\"n\">" + fmt(r.lo) + "</td><td class=\"n\">" +
             fmt(r.hi) + "</td></tr>";
      h += "</table>";
    }
    if (!e.w_min.empty()) h += "<p>weights per output channel</p>" + detail::weights_svg(e);
    h += "</section>";
  }
  return h + "</body></html>\n";
}

}  // namespace amctq::io

#endif  // AMCTQ_IO_REPORT_HTML_HPP
