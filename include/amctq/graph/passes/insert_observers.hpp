// Activation observers attached to executor hooks: one collector per watched tensor keeps an
// exactly mergeable histogram and the exact tails, so every activation algorithm (IFMR, HFMG,
// entropy, MSE, percentile, min/max) is computed from the same pass over the data, and the
// result does not depend on how the calibration set is cut into batches.
#ifndef AMCTQ_GRAPH_PASSES_INSERT_OBSERVERS_HPP
#define AMCTQ_GRAPH_PASSES_INSERT_OBSERVERS_HPP

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "amctq/algorithms/entropy.hpp"
#include "amctq/algorithms/hfmg.hpp"
#include "amctq/algorithms/histogram.hpp"
#include "amctq/algorithms/ifmr.hpp"
#include "amctq/algorithms/mse.hpp"
#include "amctq/algorithms/percentile.hpp"
#include "amctq/algorithms/extreme_values.hpp"
#include "amctq/error.hpp"
#include "amctq/graph/executor.hpp"
#include "amctq/graph/quant_config.hpp"
#include "amctq/quant_params.hpp"

namespace amctq::graph {

/// The quant_spec of a layer's activation: signed grid (AMCT), offset iff asymmetric.
inline quant_spec activation_spec(const activation_quant& a) {
  quant_spec s;
  s.bits = a.num_bits;
  s.is_signed = true;
  s.symmetric = !a.asymmetric;
  return s;
}

/// Streams one tensor's values and turns them into quant_params with the layer's algorithm.
class activation_collector {
 public:
  explicit activation_collector(std::string tensor_name) : name_(std::move(tensor_name)) {}

  void observe(const tensor& t) {
    AMCTQ_CHECK(t.type() == dtype::float32, errc::unsupported, "calibrate", "tensor '", name_, "' is ",
                to_string(t.type()), "; only float32 activations are quantized");
    const float* p = t.data<float>();
    const std::size_t n = t.size();
    std::size_t bad = 0;
    for (std::size_t i = 0; i < n; ++i) bad += !std::isfinite(p[i]);
    AMCTQ_CHECK(bad == 0, errc::non_finite, "calibrate", "tensor '", name_, "' holds ", bad,
                " NaN or infinite values in calibration batch ", batches_ + 1);
    hist_.add(p, n);
    tails_.add(p, n);
    ++batches_;
  }

  int batches() const noexcept { return batches_; }
  const std::string& name() const noexcept { return name_; }

  quant_params result(const activation_quant& a) {
    AMCTQ_CHECK(batches_ > 0, errc::invalid_argument, "calibrate", "tensor '", name_, "' was never observed");
    const quant_spec spec = activation_spec(a);
    const binned_histogram h = hist_.to_binned();
    calib_range r;
    switch (a.algo) {
      case act_algo::minmax: r = {hist_.min(), hist_.max()}; break;
      case act_algo::ifmr: {
        ifmr_options o;
        o.max_percentile = a.max_percentile;
        o.min_percentile = a.min_percentile;
        o.search_start = a.search_range_start;
        o.search_end = a.search_range_end;
        o.search_step = a.search_step;
        r = ifmr_range(tails_, h, spec, preset::amct, o);
        break;
      }
      case act_algo::hfmg: {
        hfmg_options o;
        o.bins = a.num_of_bins;
        r = hfmg_range(h, spec, preset::amct, o);
        break;
      }
      case act_algo::entropy: {
        entropy_options o;
        o.bins = a.hist_bins;
        r = entropy_range(h, spec, preset::amct, o);
        break;
      }
      case act_algo::mse: r = mse_range(h, spec, preset::amct); break;
      case act_algo::percentile: {
        percentile_options o;
        o.percentile = a.percentile;
        o.bins = a.hist_bins;
        r = percentile_range(tails_, h, spec, preset::amct, o);
        break;
      }
    }
    return params_from_range(r.min, r.max, spec, preset::amct);
  }

 private:
  std::string name_;
  pow2_histogram hist_;
  extreme_values tails_;
  int batches_ = 0;
};

/// Collectors for a set of tensors, registered on an executor's hooks for as long as it lives.
class observer_set {
 public:
  observer_set(executor& ex, const std::vector<std::string>& tensors) : ex_(ex) {
    for (const auto& t : tensors) {
      if (collectors_.count(t)) continue;
      auto c = std::make_unique<activation_collector>(t);
      activation_collector* raw = c.get();
      collectors_.emplace(t, std::move(c));
      handles_.push_back(ex_.hooks().on_tensor(t, [raw](const std::string&, const tensor& v) { raw->observe(v); }));
    }
  }
  observer_set(const observer_set&) = delete;
  observer_set& operator=(const observer_set&) = delete;
  ~observer_set() {
    for (auto h : handles_) ex_.hooks().remove(h);
  }
  activation_collector& at(const std::string& t) { return *collectors_.at(t); }

 private:
  executor& ex_;
  std::map<std::string, std::unique_ptr<activation_collector>> collectors_;
  std::vector<tensor_hooks::handle> handles_;
};

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_PASSES_INSERT_OBSERVERS_HPP
