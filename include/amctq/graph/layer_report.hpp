// What `amctq report` shows per quantized layer (docs/report.md): the distribution of its input
// over the calibration batches with the range every calibration method would choose on it, the
// range calibration chose, its weights' per-channel ranges against their grid, and how far its
// output in the fake-quant model is from the float model's (SQNR, cosine). Gathered by running
// the float model and amctq's simulation of the fake-quant model once each over the batches.
#ifndef AMCTQ_GRAPH_LAYER_REPORT_HPP
#define AMCTQ_GRAPH_LAYER_REPORT_HPP

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "amctq/algorithms/observer.hpp"
#include "amctq/graph/activation_observers.hpp"
#include "amctq/graph/integer_sim.hpp"
#include "amctq/graph/passes/lower_qdq.hpp"
#include "amctq/graph/pipeline.hpp"

namespace amctq::graph {

/// The clipping range one calibration method picks on a layer's input.
struct method_range {
  calib_method method = calib_method::minmax;
  float lo = 0.0f, hi = 0.0f;
};

struct layer_report {
  std::string name, op_type;
  std::string settings;  ///< the layer's resolved settings, one line
  // The layer input (empty `hist` for weight-only kinds): exact min / max, a histogram of
  // `hist.size()` equal bins over them, each method's range, and the grid calibration chose.
  float in_min = 0.0f, in_max = 0.0f;
  std::vector<double> hist;
  std::vector<method_range> ranges;
  bool has_chosen = false;
  float chosen_lo = 0.0f, chosen_hi = 0.0f;  ///< the representable range of the chosen grid
  // Weights: per output channel, the float min / max and the grid's reach (scale * qmin, qmax).
  std::vector<float> w_min, w_max, w_lo, w_hi;
  // The layer output, fake-quant model against float, over every batch.
  double sqnr_db = 0.0, cosine = 1.0;
};

namespace detail {

inline std::string settings_line(const layer_settings& s, bool has_input, bool has_weight) {
  std::string out;
  if (has_input) {
    const activation_quant& a = s.activation;
    out += std::string("input: ") + to_string(a.algo) + ", " + std::to_string(a.num_bits) + " bit, " +
           (a.asymmetric ? "asymmetric" : "symmetric") + (a.is_signed ? "" : ", unsigned") +
           (a.channel_wise ? ", per channel" : ", per tensor") +
           (a.scale_kind == scale_type::power_of_two ? ", power-of-two" : "") +
           (a.rounding != round_mode::half_even ? std::string(", ") + to_string(a.rounding) : std::string());
  }
  if (has_weight) {
    const weight_quant& w = s.weights;
    if (!out.empty()) out += "; ";
    out += std::string("weights: ") + to_string(w.algo) + ", " + std::to_string(w.num_bits) + " bit, " +
           (w.channel_wise ? "per channel" : "per tensor") +
           (w.scale_kind == scale_type::power_of_two ? ", power-of-two" : "");
  }
  return out;
}

// A layer input seen over the batches: a bounded sample for the histogram and one observer per
// method of report_methods() with the layer's own grid (its minmax one gives the exact extremes).
struct input_watch {
  bool seen = false;
  std::vector<float> sample;
  std::vector<std::unique_ptr<activation_observer>> observers;

  void observe(const tensor& t) {
    if (t.type() != dtype::float32 || t.size() == 0) return;
    seen = true;
    const float* p = t.data<float>();
    const std::size_t n = t.size(), stride = std::max<std::size_t>(1, n / 65536);
    for (std::size_t i = 0; i < n; i += stride)
      if (std::isfinite(p[i])) sample.push_back(p[i]);
    const tensor_view<const float, 1> v(p, {static_cast<std::ptrdiff_t>(n)});
    for (auto& o : observers) o->observe(v);
  }
};

// The output of a layer in both models, accumulated for SQNR and cosine.
struct output_match {
  std::vector<float> ref;  // the float model's output of the batch being run
  double signal = 0.0, noise = 0.0, dot = 0.0, norm_q = 0.0;

  void add(const tensor& q, const std::string& layer) {
    // Both models compute the same layer on the same batch: anything else is a lowering bug.
    AMCTQ_CHECK(q.type() == dtype::float32 && q.size() == ref.size(), errc::shape_mismatch, "report", "layer '", layer,
                "': the fake-quant model's output has ", q.size(), " values, the float model's ", ref.size());
    const float* p = q.data<float>();
    for (std::size_t i = 0; i < ref.size(); ++i) {
      const double r = ref[i], y = p[i];
      signal += r * r;
      noise += (y - r) * (y - r);
      dot += r * y;
      norm_q += y * y;
    }
  }
};

}  // namespace detail

/// Methods drawn on each input: every observer method but moving_average (the batching's).
inline std::vector<calib_method> report_methods() {
  return {calib_method::minmax, calib_method::percentile, calib_method::entropy, calib_method::mse,
          calib_method::ifmr,   calib_method::hfmg,       calib_method::aciq_laplace, calib_method::aciq_gaussian,
          calib_method::pot_diffs};
}

/// The report of a calibrated quantizer over `batches` (the first batch_num of them, as
/// calibrate() used); `bins` histogram bins per input. Ordered as the layers are.
inline std::vector<layer_report> build_layer_report(const quantizer& q, const std::vector<batch>& batches, int bins = 96) {
  AMCTQ_CHECK(q.calibrated(), errc::invalid_argument, "report", "calibrate() has not run");
  AMCTQ_CHECK(!q.float_weights_released(), errc::invalid_argument, "report",
              "the quantizer's float weights were released (release_float_weights); the report runs the float model");
  const std::size_t need = std::min(batches.size(), static_cast<std::size_t>(q.config().batch_num));
  const auto& layers = q.layers();
  std::vector<detail::input_watch> inputs(layers.size());
  std::vector<detail::output_match> outputs(layers.size());
  executor fl(q.float_model());
  std::vector<tensor_hooks::handle> hs;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    if (!layers[i].input.empty()) {
      for (calib_method m : report_methods()) {
        activation_quant a = q.settings()[i].activation;
        a.algo = m;
        a.channel_wise = false;
        observer_options o = observer_options_for(a, layers[i].input);
        o.skip_nonfinite = true;
        inputs[i].observers.push_back(std::make_unique<activation_observer>(o));
      }
      hs.push_back(fl.hooks().on_tensor(layers[i].input, [&inputs, i](const std::string&, const tensor& t) { inputs[i].observe(t); }));
    }
    hs.push_back(fl.hooks().on_tensor(layers[i].output, [&outputs, i](const std::string&, const tensor& t) {
      if (t.type() == dtype::float32) outputs[i].ref.assign(t.data<float>(), t.data<float>() + t.size());
    }));
  }
  const model fq = lower_qdq(q.float_model(), layers, q.record());
  executor sim(fq, simulation_ops());
  for (std::size_t i = 0; i < layers.size(); ++i)
    sim.hooks().on_tensor(layers[i].output,
                          [&outputs, &layers, i](const std::string&, const tensor& t) { outputs[i].add(t, layers[i].name); });
  for (std::size_t b = 0; b < need; ++b) {
    fl.run(batches[b]);
    sim.run(batches[b]);
  }
  std::vector<layer_report> out;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const quant_layer& l = layers[i];
    const layer_record& r = q.record().layers[i];
    layer_report e;
    e.name = l.name;
    e.op_type = l.op_type;
    e.settings = detail::settings_line(q.settings()[i], !l.input.empty(), !l.weight.empty());
    detail::input_watch& in = inputs[i];
    if (!l.input.empty() && in.seen) {
      const auto methods = report_methods();
      for (std::size_t k = 0; k < methods.size(); ++k) {
        const calib_result cr = in.observers[k]->result();
        e.ranges.push_back({methods[k], cr.ranges[0].min, cr.ranges[0].max});
      }
      e.in_min = e.ranges[0].lo;  // report_methods() starts with minmax: the exact extremes
      e.in_max = e.ranges[0].hi;
      e.hist.assign(static_cast<std::size_t>(bins), 0.0);
      const double width = (static_cast<double>(e.in_max) - e.in_min) / bins;
      for (float v : in.sample) {
        const auto k = width > 0.0 ? static_cast<std::ptrdiff_t>((v - e.in_min) / width) : 0;
        e.hist[static_cast<std::size_t>(std::clamp<std::ptrdiff_t>(k, 0, bins - 1))] += 1.0;
      }
      if (!r.act.scale.empty() && !r.act.is_per_channel()) {
        e.has_chosen = true;
        e.chosen_lo = static_cast<float>(r.act.qmin - r.act.zero_point[0]) * r.act.scale[0];
        e.chosen_hi = static_cast<float>(r.act.qmax - r.act.zero_point[0]) * r.act.scale[0];
      }
    }
    if (!l.weight.empty()) {
      const tensor& w = q.float_model().main.find_initializer(l.weight)->value;
      const weight_layout L = layout_of(q.float_model().main.nodes[l.node_index], w);
      const tensor_view<const float, 1> flat(w.data<float>(), {static_cast<std::ptrdiff_t>(w.size())});
      std::tie(e.w_min, e.w_max) = weight_channel_ranges(flat, L, "report");
      for (std::size_t c = 0; c < e.w_min.size(); ++c) {
        const float s = r.wts.scale[r.wts.channels() == 1 ? 0 : std::min(c, r.wts.channels() - 1)];
        e.w_lo.push_back(static_cast<float>(r.wts.qmin) * s);
        e.w_hi.push_back(static_cast<float>(r.wts.qmax) * s);
      }
    }
    const detail::output_match& m = outputs[i];
    e.sqnr_db = m.noise > 0.0 ? 10.0 * std::log10(m.signal / m.noise) : std::numeric_limits<double>::infinity();
    e.cosine = m.signal > 0.0 && m.norm_q > 0.0 ? m.dot / std::sqrt(m.signal * m.norm_q) : 1.0;
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_LAYER_REPORT_HPP
