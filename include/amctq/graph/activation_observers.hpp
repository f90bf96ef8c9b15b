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

/// An unsigned grid whose zero is code 0 (Vitis `signed: false, symmetry: true`): it stores a
/// negative value as 0, so its observer sees the tensor with negatives clipped to 0.
inline bool zero_at_code_0(const activation_quant& a) { return !a.is_signed && !a.asymmetric; }

/// The quant_spec of a layer's activation: signed grid (AMCT) unless asked otherwise, offset iff
/// asymmetric. A zero at code 0 is the asymmetric unsigned grid of a range starting at 0.
inline quant_spec activation_spec(const activation_quant& a) {
  quant_spec s;
  s.bits = a.num_bits;
  s.is_signed = a.is_signed;
  s.symmetric = !a.asymmetric && !zero_at_code_0(a);
  s.narrow_range = a.narrow_range;
  s.scale_kind = a.scale_kind;
  return s;
}

/// The same grid stored in int8 (the saved models' activation type): an unsigned b-bit grid
/// [lo, hi] with zero point z holds exactly the values of [lo - 2^(b-1), hi - 2^(b-1)] with zero
/// point z - 2^(b-1), and rounds the same, since the shift is an integer.
inline quant_params as_int8_storage(quant_params p, const activation_quant& a) {
  if (a.is_signed) return p;
  const std::int32_t shift = std::int32_t{1} << (a.num_bits - 1);
  p.qmin -= shift;
  p.qmax -= shift;
  for (auto& z : p.zero_point) z -= shift;
  return p;
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

/// What one process's observers hand to the others under MPI: each observer's state, in watch
/// order, with what the pipeline keeps beside it.
struct calibration_shard {
  std::vector<observer_state> observers;
  std::vector<int> not_float;                     ///< per observer: slices that held another type
  std::vector<std::vector<std::int64_t>> shapes;  ///< per observer: the tensor's shape in its last slice
};

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
  /// With `float_only`, a tensor of another type (a Concat of shape values) is passed over and
  /// counted in not_float() instead of refused.
  std::size_t watch(const std::string& tensor_name, const activation_quant& a, int channel_axis,
                    bool float_only = false) {
    for (std::size_t i = 0; i < watched_.size(); ++i)
      if (watched_[i]->name == tensor_name && watched_[i]->channel_axis == channel_axis &&
          same_settings(watched_[i]->settings, a)) {
        watched_[i]->float_only = watched_[i]->float_only && float_only;
        return i;
      }
    auto w = std::make_unique<watched>(tensor_name, a, channel_axis);
    w->float_only = float_only;
    watched* raw = w.get();
    watched_.push_back(std::move(w));
    handles_.push_back(ex_.hooks().on_tensor(tensor_name, [raw](const std::string&, const tensor& v) { raw->observe(v); }));
    return watched_.size() - 1;
  }

  /// The activation params of watch() index i; per-channel params name the tensor's own axis.
  /// The observer refuses, naming the tensor, when it saw no batch or no finite value.
  quant_params result(std::size_t i) const {
    const watched& w = *watched_.at(i);
    quant_params p = as_int8_storage(w.obs.result().params, w.settings);
    if (p.is_per_channel()) p.axis = static_cast<int>(*w.axis);
    return p;
  }

  /// The shape of watch() index i's tensor in the last batch (the deploy lowering needs its
  /// rank and channel count, which the graph need not state); empty before any batch.
  const std::vector<std::int64_t>& shape(std::size_t i) const { return watched_.at(i)->shape; }

  /// Batches in which watch() index i (watched float_only) held another type than float32.
  int not_float(std::size_t i) const { return watched_.at(i)->not_float; }

  /// An observer keeps one value per batch (moving_average, pot_diffs): a batch must reach it whole.
  bool per_batch() const {
    for (const auto& w : watched_)
      if (keeps_per_batch_values(w->settings.algo)) return true;
    return false;
  }
  /// An observer's result depends on the order of the batches (moving_average): one worker must see them all.
  bool ordered() const {
    for (const auto& w : watched_)
      if (w->settings.algo == calib_method::moving_average) return true;
    return false;
  }

  /// Adds the data of `other`, which watched the same tensors in the same order on other
  /// batches that come after these.
  void merge(const activation_observers& other) {
    AMCTQ_CHECK(other.watched_.size() == watched_.size(), errc::invalid_argument, "activation_observers::merge",
                watched_.size(), " vs ", other.watched_.size(), " observers");
    for (std::size_t i = 0; i < watched_.size(); ++i) watched_[i]->merge(*other.watched_[i]);
  }

  calibration_shard shard() const {
    calibration_shard s;
    for (const auto& w : watched_) {
      s.observers.push_back(w->obs.to_state());
      s.not_float.push_back(w->not_float);
      s.shapes.push_back(w->shape);
    }
    return s;
  }

  /// Replaces the data with the merge of `shards` in order (every process's, after an exchange).
  void assign(const std::vector<calibration_shard>& shards) {
    for (auto& w : watched_) {
      w->obs = activation_observer(w->obs.options());
      w->not_float = 0;
      w->shape.clear();
      w->axis.reset();
    }
    for (const auto& s : shards) {
      AMCTQ_CHECK(s.observers.size() == watched_.size() && s.not_float.size() == watched_.size() &&
                      s.shapes.size() == watched_.size(),
                  errc::invalid_argument, "activation_observers::assign", "a shard holds ", s.observers.size(),
                  " observers, this process watches ", watched_.size());
      for (std::size_t i = 0; i < watched_.size(); ++i) {
        watched& w = *watched_[i];
        w.obs.merge(activation_observer::from_state(w.obs.options(), s.observers[i]));
        w.not_float += s.not_float[i];
        if (!s.shapes[i].empty()) {
          w.shape = s.shapes[i];
          if (w.settings.channel_wise) w.axis = channel_axis_of(w.channel_axis, w.shape.size(), w.name);
        }
      }
    }
  }

 private:
  struct watched {
    watched(std::string t, const activation_quant& a, int ca)
        : name(std::move(t)), settings(a), channel_axis(ca), obs(observer_options_for(a, name)) {}

    void observe(const tensor& v) {
      if (float_only && v.type() != dtype::float32) {
        ++not_float;
        return;
      }
      AMCTQ_CHECK(v.type() == dtype::float32, errc::unsupported, "calibrate", "tensor '", name, "' is ",
                  to_string(v.type()), "; only float32 activations are quantized");
      const float* p = v.data<float>();
      if (zero_at_code_0(settings)) {
        clipped.resize(v.size());
        for (std::size_t i = 0; i < v.size(); ++i) clipped[i] = p[i] < 0.0f ? 0.0f : p[i];  // NaN kept, for the observer to judge
        p = clipped.data();
      }
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

    void merge(const watched& other) {
      obs.merge(other.obs);
      not_float += other.not_float;
      if (!other.shape.empty()) {
        AMCTQ_CHECK(!axis || !other.axis || *axis == *other.axis, errc::shape_mismatch, "calibrate", "tensor '", name,
                    "' changed rank between calibration batches");
        shape = other.shape;
        if (other.axis) axis = other.axis;
      }
    }

    std::string name;
    activation_quant settings;
    int channel_axis;
    activation_observer obs;
    std::optional<std::size_t> axis;  // the tensor axis per-channel batches were cut along
    std::vector<std::int64_t> shape;  // of the last batch
    bool float_only = false;
    int not_float = 0;
    std::vector<float> clipped;  // the batch with negatives at 0 (zero_at_code_0)
  };

  static bool same_settings(const activation_quant& a, const activation_quant& b) {
    return a.num_bits == b.num_bits && a.asymmetric == b.asymmetric && a.channel_wise == b.channel_wise &&
           a.algo == b.algo && a.skip_nonfinite == b.skip_nonfinite && a.max_percentile == b.max_percentile &&
           a.min_percentile == b.min_percentile && a.search_range_start == b.search_range_start &&
           a.search_range_end == b.search_range_end && a.search_step == b.search_step &&
           a.num_of_bins == b.num_of_bins && a.hist_bins == b.hist_bins && a.percentile == b.percentile &&
           a.averaging_constant == b.averaging_constant && a.diffs_scope == b.diffs_scope &&
           a.calib_statistic_method == b.calib_statistic_method && a.scale_kind == b.scale_kind &&
           a.is_signed == b.is_signed && a.narrow_range == b.narrow_range;
  }

  executor& ex_;
  std::vector<std::unique_ptr<watched>> watched_;
  std::vector<tensor_hooks::handle> handles_;
};

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_ACTIVATION_OBSERVERS_HPP
