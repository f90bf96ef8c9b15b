// The pipeline's activation calibration: one activation_observer (the same front end an engine
// uses) per distinct (tensor, settings) the quantized layers read, fed by executor hooks. A
// layer's activation config maps onto observer_options here, so every observer method,
// per-channel activations and skip_nonfinite reach the config file.
#ifndef AMCTQ_GRAPH_ACTIVATION_OBSERVERS_HPP
#define AMCTQ_GRAPH_ACTIVATION_OBSERVERS_HPP

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "amctq/algorithms/observer.hpp"
#include "amctq/error.hpp"
#include "amctq/graph/executor.hpp"
#include "amctq/graph/quant_config.hpp"
#include "amctq/graph/tensor.hpp"
#include "amctq/quant_params.hpp"

namespace amctq::graph {

/// The quant_spec of a layer's activation: signed grid (AMCT), offset iff asymmetric.
inline quant_spec activation_spec(const activation_quant& a) {
  quant_spec s;
  s.bits = a.num_bits;
  s.is_signed = true;
  s.symmetric = !a.asymmetric;
  s.scale_kind = a.scale_kind;
  return s;
}

/// The observer options of a layer's activation config. Per-channel observers see the tensor as
/// [outer, channels, inner] (axis 1), whatever the tensor's rank.
inline observer_options observer_options_for(const activation_quant& a, const std::string& tensor_name) {
  observer_options o;
  o.method = a.algo;
  o.spec = activation_spec(a);
  if (a.channel_wise) o.spec.axis = 1;
  o.how = preset::amct;
  o.skip_nonfinite = a.skip_nonfinite;
  o.name = tensor_name;
  o.ifmr.max_percentile = a.max_percentile;
  o.ifmr.min_percentile = a.min_percentile;
  o.ifmr.search_start = a.search_range_start;
  o.ifmr.search_end = a.search_range_end;
  o.ifmr.search_step = a.search_step;
  o.hfmg.bins = a.num_of_bins;
  o.entropy.bins = a.hist_bins;
  o.percentile.percentile = a.percentile;
  o.percentile.bins = a.hist_bins;
  o.moving_average.averaging_constant = a.averaging_constant;
  o.pot.scope = a.diffs_scope;
  o.statistic = a.calib_statistic_method;
  return o;
}

/// The axis `axis` (negative: from the end) of a rank-`rank` tensor, checked.
inline std::size_t channel_axis_of(int axis, std::size_t rank, const std::string& tensor_name) {
  const auto r = static_cast<int>(rank);
  AMCTQ_CHECK(axis >= -r && axis < r, errc::invalid_argument, "calibrate", "tensor '", tensor_name, "' of rank ",
              rank, " has no channel axis ", axis, " for per-channel activations");
  return static_cast<std::size_t>(axis < 0 ? axis + r : axis);
}

/// Observers for the activations the quantized layers read, attached to an executor's hooks
/// for as long as this object lives. Layers that read the same tensor with the same settings
/// share one observer.
class activation_observers {
 public:
  explicit activation_observers(executor& ex) : ex_(ex) {}
  activation_observers(const activation_observers&) = delete;
  activation_observers& operator=(const activation_observers&) = delete;
  ~activation_observers() {
    for (auto h : handles_) ex_.hooks().remove(h);
  }

  /// Watches `tensor_name` under `a`; channel_axis is the tensor axis of per-channel
  /// activations (negative counts from the end). Returns the index result() takes.
  std::size_t watch(const std::string& tensor_name, const activation_quant& a, int channel_axis) {
    for (std::size_t i = 0; i < watched_.size(); ++i)
      if (watched_[i]->name == tensor_name && watched_[i]->channel_axis == channel_axis &&
          same_settings(watched_[i]->settings, a))
        return i;
    auto w = std::make_unique<watched>(tensor_name, a, channel_axis);
    watched* raw = w.get();
    watched_.push_back(std::move(w));
    handles_.push_back(ex_.hooks().on_tensor(tensor_name, [raw](const std::string&, const tensor& v) { raw->observe(v); }));
    return watched_.size() - 1;
  }

  /// The activation params of watch() index i; per-channel params name the tensor's own axis.
  /// The observer refuses, naming the tensor, when it saw no batch or no finite value.
  quant_params result(std::size_t i) const {
    const watched& w = *watched_.at(i);
    quant_params p = w.obs.result().params;
    if (p.is_per_channel()) p.axis = static_cast<int>(*w.axis);
    return p;
  }

  /// The shape of watch() index i's tensor in the last batch (the deploy lowering needs its
  /// rank and channel count, which the graph need not state); empty before any batch.
  const std::vector<std::int64_t>& shape(std::size_t i) const { return watched_.at(i)->shape; }

 private:
  struct watched {
    watched(std::string t, const activation_quant& a, int ca)
        : name(std::move(t)), settings(a), channel_axis(ca), obs(observer_options_for(a, name)) {}

    void observe(const tensor& v) {
      AMCTQ_CHECK(v.type() == dtype::float32, errc::unsupported, "calibrate", "tensor '", name, "' is ",
                  to_string(v.type()), "; only float32 activations are quantized");
      const float* p = v.data<float>();
      if (!settings.channel_wise) {
        obs.observe(tensor_view<const float, 1>(p, {static_cast<std::ptrdiff_t>(v.size())}));
      } else {
        const std::size_t ax = channel_axis_of(channel_axis, v.rank(), name);
        AMCTQ_CHECK(!axis || ax == *axis, errc::shape_mismatch, "calibrate", "tensor '", name,
                    "' changed rank between calibration batches");
        axis = ax;
        std::ptrdiff_t outer = 1, inner = 1;
        for (std::size_t d = 0; d < ax; ++d) outer *= static_cast<std::ptrdiff_t>(v.dim(d));
        for (std::size_t d = ax + 1; d < v.rank(); ++d) inner *= static_cast<std::ptrdiff_t>(v.dim(d));
        obs.observe(tensor_view<const float, 3>(p, {outer, static_cast<std::ptrdiff_t>(v.dim(ax)), inner}));
      }
      shape = v.shape();
    }

    std::string name;
    activation_quant settings;
    int channel_axis;
    activation_observer obs;
    std::optional<std::size_t> axis;  // the tensor axis per-channel batches were cut along
    std::vector<std::int64_t> shape;  // of the last batch
  };

  static bool same_settings(const activation_quant& a, const activation_quant& b) {
    return a.num_bits == b.num_bits && a.asymmetric == b.asymmetric && a.channel_wise == b.channel_wise &&
           a.algo == b.algo && a.skip_nonfinite == b.skip_nonfinite && a.max_percentile == b.max_percentile &&
           a.min_percentile == b.min_percentile && a.search_range_start == b.search_range_start &&
           a.search_range_end == b.search_range_end && a.search_step == b.search_step &&
           a.num_of_bins == b.num_of_bins && a.hist_bins == b.hist_bins && a.percentile == b.percentile &&
           a.averaging_constant == b.averaging_constant && a.diffs_scope == b.diffs_scope &&
           a.calib_statistic_method == b.calib_statistic_method && a.scale_kind == b.scale_kind;
  }

  executor& ex_;
  std::vector<std::unique_ptr<watched>> watched_;
  std::vector<tensor_hooks::handle> handles_;
};

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_ACTIVATION_OBSERVERS_HPP
