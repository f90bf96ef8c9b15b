// activation_observer: the streaming front of every activation calibration method. observe()
// once per batch, merge() shards, result() for the clipping range(s) and quant_params, and a
// plain-data state (to_state / from_state) for shards calibrated in other processes
// (io/observer_json.hpp turns it into JSON). Per-tensor, or per-channel along any axis when
// spec.axis >= 0 — every method, histogram-based ones included.
//
// What each method keeps per channel: exact min/max always; the pow2_histogram (exactly
// mergeable) for percentile, entropy, MSE, IFMR, HFMG and ACIQ; the exact extreme values for
// percentile and IFMR; per-batch values for pot_diffs; the running average for
// moving_average. Everything but moving_average and pot_diffs (per-batch by definition) gives
// bit-identical results for any batching, batch order or shard split.
#ifndef AMCTQ_ALGORITHMS_OBSERVER_HPP
#define AMCTQ_ALGORITHMS_OBSERVER_HPP

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "amctq/algorithms/aciq.hpp"
#include "amctq/algorithms/batch_statistic.hpp"
#include "amctq/algorithms/calib_range.hpp"
#include "amctq/algorithms/entropy.hpp"
#include "amctq/algorithms/hfmg.hpp"
#include "amctq/algorithms/histogram.hpp"
#include "amctq/algorithms/ifmr.hpp"
#include "amctq/algorithms/moving_average.hpp"
#include "amctq/algorithms/mse.hpp"
#include "amctq/algorithms/percentile.hpp"
#include "amctq/algorithms/pot_diffs.hpp"
#include "amctq/algorithms/extreme_values.hpp"
#include "amctq/kernels/detail/rows.hpp"
#include "amctq/kernels/reduce.hpp"
#include "amctq/quant_params.hpp"
#include "amctq/tensor_view.hpp"

namespace amctq {

enum class calib_method { minmax, moving_average, percentile, entropy, mse, ifmr, hfmg, aciq_laplace, aciq_gaussian, pot_diffs };

inline constexpr calib_method all_calib_methods[] = {
    calib_method::minmax, calib_method::moving_average, calib_method::percentile,   calib_method::entropy,
    calib_method::mse,    calib_method::ifmr,           calib_method::hfmg,         calib_method::aciq_laplace,
    calib_method::aciq_gaussian, calib_method::pot_diffs};

inline const char* to_string(calib_method m) noexcept {
  switch (m) {
    case calib_method::minmax: return "minmax";
    case calib_method::moving_average: return "moving_average";
    case calib_method::percentile: return "percentile";
    case calib_method::entropy: return "entropy";
    case calib_method::mse: return "mse";
    case calib_method::ifmr: return "ifmr";
    case calib_method::hfmg: return "hfmg";
    case calib_method::aciq_laplace: return "aciq_laplace";
    case calib_method::aciq_gaussian: return "aciq_gaussian";
    case calib_method::pot_diffs: return "pot_diffs";
  }
  return "?";
}

/// Method by name (as to_string prints it); throws invalid_argument listing the names.
inline calib_method calib_method_from_string(const std::string& s) {
  for (calib_method m : all_calib_methods)
    if (s == to_string(m)) return m;
  AMCTQ_THROW(errc::invalid_argument, "calib_method_from_string", "unknown method '", s,
              "' (minmax, moving_average, percentile, entropy, mse, ifmr, hfmg, aciq_laplace, aciq_gaussian, "
              "pot_diffs)");
}

struct observer_options {
  calib_method method = calib_method::ifmr;
  quant_spec spec{};              ///< bits, symmetry, and spec.axis >= 0 for per-channel
  preset how = preset::amct;      ///< range -> params formula, and the peer-compatible search variants
  bool skip_nonfinite = false;    ///< ignore NaN / inf instead of failing
  std::string name = "tensor";    ///< named in errors
  std::uint32_t histogram_capacity = pow2_histogram::default_capacity;
  std::uint32_t tail_capacity = extreme_values::default_capacity;
  moving_average_options moving_average{};
  percentile_options percentile{};
  entropy_options entropy{};
  mse_options mse{};
  ifmr_options ifmr{};
  hfmg_options hfmg{};
  pot_options pot{};
  batch_statistic statistic = batch_statistic::modal;  ///< pot_diffs: across batches
};

/// Plain-data state of one channel (or of the tensor).
struct channel_state {
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
  std::uint64_t nonfinite = 0;
  std::uint64_t batches = 0;  ///< moving_average: batches folded in
  float average_min = 0.0f;
  float average_max = 0.0f;
  histogram_state histogram;
  ort_histogram_state ort_histogram;  ///< entropy / percentile under the onnxruntime preset: ORT's own histogram
  extreme_values_state tails;
  std::vector<double> batch_values;  ///< pot_diffs: fix position of each batch
};

struct observer_state {
  std::string method;
  int axis = per_tensor;
  std::vector<channel_state> channels;  ///< empty until the first batch
};

/// Whether a method keeps one value per batch (moving_average's running average, pot_diffs'
/// fix position per batch): such a batch must reach the observer whole.
inline bool keeps_per_batch_values(calib_method m) noexcept {
  return m == calib_method::moving_average || m == calib_method::pot_diffs;
}

/// Whether the observer rebuilds ONNX Runtime's own histogram (entropy / percentile under the
/// onnxruntime preset), whose bins depend on the order of the batches.
inline bool uses_ort_histogram(const observer_options& o) noexcept {
  return (o.method == calib_method::entropy || o.method == calib_method::percentile) && o.how == preset::onnxruntime;
}

/// Whether observing a batch in parts, in separate observers merged afterwards, gives the state
/// of one observer seeing it whole, bit for bit.
inline bool splits_exactly(const observer_options& o) noexcept {
  return !keeps_per_batch_values(o.method) && !uses_ort_histogram(o);
}

struct calib_result {
  std::vector<calib_range> ranges;  ///< one per channel (one for per-tensor)
  quant_params params;
};

class activation_observer {
 public:
  explicit activation_observer(observer_options o = {}) : o_(std::move(o)) {
    const char* where = "activation_observer";
    validate(o_.spec, where);
    validate(o_.moving_average, where);
    validate(o_.percentile, where);
    validate(o_.entropy, where);
    validate(o_.mse, where);
    validate(o_.ifmr, where);
    validate(o_.hfmg, where);
    validate(o_.pot, where);
    (void)pow2_histogram(o_.histogram_capacity);  // validates the capacities
    (void)extreme_values(o_.tail_capacity);
  }

  const observer_options& options() const noexcept { return o_; }
  std::size_t channels() const noexcept { return ch_.size(); }

  /// Folds one batch in. Throws non_finite naming the tensor when it holds NaN / inf (unless
  /// skip_nonfinite), invalid_argument when the axis is out of range, shape_mismatch when the
  /// channel count differs from earlier batches.
  template <class T, std::size_t R>
  void observe(const tensor_view<T, R>& x) {
    static_assert(std::is_same_v<std::remove_const_t<T>, float>, "activation_observer reads float tensors.");
    const char* where = "activation_observer::observe";
    const int axis = o_.spec.axis;
    AMCTQ_CHECK(axis < static_cast<int>(R), errc::invalid_argument, where, "tensor '", o_.name, "': axis ", axis,
                " is out of range for rank ", R);
    const std::size_t nch = axis == per_tensor ? 1 : static_cast<std::size_t>(x.extent(static_cast<std::size_t>(axis)));
    AMCTQ_CHECK(nch > 0, errc::invalid_argument, where, "tensor '", o_.name, "': axis ", axis,
                " has extent 0, so there is no channel to calibrate");
    if (ch_.empty()) init_channels(nch);
    AMCTQ_CHECK(nch == ch_.size(), errc::shape_mismatch, where, "tensor '", o_.name, "': batch has ", nch,
                " channels along axis ", axis, ", earlier batches had ", ch_.size());
    std::vector<value_range> batch(nch);
    std::size_t bad = 0;
    // Per-tensor methods that keep the extreme values get the min/max (and the NaN/inf count)
    // from that pass instead of a separate min/max pass; the tails are restored on error.
    // A large contiguous batch for a histogram method takes one fused trip through memory.
    const bool tails_first = axis == per_tensor && needs_tails();
    const bool fused = axis == per_tensor && needs_histogram() && x.size() >= fuse_threshold && x.is_contiguous();
    if (fused) {
      batch[0] = observe_fused(x.data_handle(), static_cast<std::size_t>(x.size()));
      bad = batch[0].nonfinite;
    } else if (tails_first) {
      const extreme_values before = ch_[0].tails;
      for_each_run(x, axis, [&](std::size_t, const float* p, std::size_t n, std::ptrdiff_t stride) {
        if (stride == 1) {
          bad += ch_[0].tails.add(p, n);
          return;
        }
        for (std::size_t i = 0; i < n; ++i) bad += !ch_[0].tails.offer(p[static_cast<std::ptrdiff_t>(i) * stride]);
      });
      if (bad != 0 && !o_.skip_nonfinite) ch_[0].tails = before;
      batch[0] = value_range{ch_[0].tails.smallest(), ch_[0].tails.largest(), bad};
    } else if (axis == per_tensor) {
      batch[0] = minmax(x);
      bad = batch[0].nonfinite;
    } else {
      const channel_ranges cr = minmax_per_channel(x, axis);
      for (std::size_t c = 0; c < nch; ++c) batch[c] = value_range{cr.min[c], cr.max[c], 0};
      bad = cr.nonfinite;
    }
    AMCTQ_CHECK(bad == 0 || o_.skip_nonfinite, errc::non_finite, where, "tensor '", o_.name, "' has ", bad,
                " NaN/Inf value(s); clean the data or set skip_nonfinite to ignore them");
    nonfinite_ += bad;
    for (std::size_t c = 0; c < nch; ++c) {
      channel& ch = ch_[c];
      const value_range& b = batch[c];
      if (b.empty()) continue;
      ch.min = std::fmin(ch.min, b.min);
      ch.max = std::fmax(ch.max, b.max);
      if (o_.method == calib_method::moving_average) {
        ch.average = moving_average_update(ch.average, ch.batches, {b.min, b.max}, o_.moving_average.averaging_constant);
        ++ch.batches;
      }
    }
    if (uses_ort_histogram()) observe_ort(x, batch);
    if (fused) return;
    const bool hist = needs_histogram(), tails = needs_tails() && !tails_first,
               pot = o_.method == calib_method::pot_diffs;
    if (!hist && !tails && !pot) return;
    std::vector<pow2_histogram> local;
    if (pot) local.assign(nch, pow2_histogram(o_.histogram_capacity));
    for (std::size_t c = 0; c < nch; ++c) {
      if (batch[c].empty()) continue;
      if (hist) ch_[c].hist.cover(batch[c].min, batch[c].max);
      if (pot) local[c].cover(batch[c].min, batch[c].max);
    }
    const bool fast = axis == per_tensor && hist;
    for_each_run(x, axis, [&](std::size_t c, const float* p, std::size_t n, std::ptrdiff_t stride) {
      // A channel with no finite value in this batch (possible only with skip_nonfinite) may
      // have no histogram grid yet, and has nothing to add.
      if (batch[c].empty()) return;
      channel& ch = ch_[c];
      if (hist) {
        if (fast && stride == 1) ch.hist.accumulate(p, n);
        else ch.hist.accumulate_direct(p, n, stride);
      }
      if (pot) local[c].accumulate_direct(p, n, stride);
      if (tails) {
        if (stride == 1) ch.tails.add(p, n);
        else
          for (std::size_t i = 0; i < n; ++i) ch.tails.offer(p[static_cast<std::ptrdiff_t>(i) * stride]);
      }
    });
    for (std::size_t c = 0; c < nch; ++c) {
      if (hist) ch_[c].hist.flush();
      if (pot && !batch[c].empty()) ch_[c].batch_values.push_back(pot_fix_pos(local[c].to_binned(), o_.spec, o_.pot));
    }
  }

  /// Adds another observer's data (same options). Exact for every method; moving_average
  /// refuses when both sides have data, because its result depends on batch order.
  void merge(const activation_observer& other) {
    const char* where = "activation_observer::merge";
    AMCTQ_CHECK(other.o_.method == o_.method && other.o_.spec.axis == o_.spec.axis &&
                    other.o_.histogram_capacity == o_.histogram_capacity && other.o_.tail_capacity == o_.tail_capacity,
                errc::invalid_argument, where, "tensor '", o_.name,
                "': observers differ in method, axis or capacities and cannot merge");
    if (other.ch_.empty()) return;
    if (ch_.empty()) init_channels(other.ch_.size());
    AMCTQ_CHECK(other.ch_.size() == ch_.size(), errc::shape_mismatch, where, "tensor '", o_.name, "': ", ch_.size(),
                " vs ", other.ch_.size(), " channels");
    for (std::size_t c = 0; c < ch_.size(); ++c) {
      channel& a = ch_[c];
      const channel& b = other.ch_[c];
      if (o_.method == calib_method::moving_average && b.batches > 0) {
        AMCTQ_CHECK(a.batches == 0, errc::unsupported, where, "tensor '", o_.name,
                    "': moving_average depends on batch order; observers with data cannot merge");
        a.average = b.average;
        a.batches = b.batches;
      }
      a.min = std::fmin(a.min, b.min);
      a.max = std::fmax(a.max, b.max);
      a.hist.merge(b.hist);
      if (!b.ort.empty()) {
        AMCTQ_CHECK(a.ort.empty(), errc::unsupported, where, "tensor '", o_.name,
                    "': ONNX Runtime's histogram depends on batch order; observers with data cannot merge");
        a.ort = b.ort;
      }
      a.tails.merge(b.tails);
      a.batch_values.insert(a.batch_values.end(), b.batch_values.begin(), b.batch_values.end());
    }
    nonfinite_ += other.nonfinite_;
  }

  /// The clipping range of every channel and the quant_params they give under the preset.
  /// A tensor without a single finite value (no batch, empty batches, or only NaN/inf skipped)
  /// is an error naming it; per-channel, a channel without one gets the range [0, 0], hence
  /// scale 1, as long as another channel has data.
  calib_result result() const {
    calib_result out;
    const std::size_t nch = ch_.empty() ? (o_.spec.axis == per_tensor ? 1 : 0) : ch_.size();
    AMCTQ_CHECK(nch > 0, errc::invalid_argument, "activation_observer::result", "tensor '", o_.name,
                "': per-channel observer has seen no batch, so its channel count is unknown");
    bool any = false;
    for (const channel& ch : ch_) any = any || ch.min <= ch.max;
    AMCTQ_CHECK(any || nonfinite_ == 0, errc::non_finite, "activation_observer::result", "tensor '", o_.name,
                "' has no data to calibrate: all ", nonfinite_, " values were NaN/inf (skipped)");
    AMCTQ_CHECK(any, errc::invalid_argument, "activation_observer::result", "tensor '", o_.name,
                "' has no data to calibrate: ", ch_.empty() ? "no batch was observed" : "every batch was empty");
    out.ranges.resize(nch);
    for (std::size_t c = 0; c < ch_.size(); ++c) out.ranges[c] = channel_range(ch_[c]);
    quant_spec spec = o_.spec;
    if (o_.method == calib_method::pot_diffs) spec.scale_kind = scale_type::power_of_two;
    if (spec.axis == per_tensor) {
      out.params = params_from_range(out.ranges[0].min, out.ranges[0].max, spec, o_.how);
    } else {
      std::vector<float> lo(nch), hi(nch);
      for (std::size_t c = 0; c < nch; ++c) {
        lo[c] = out.ranges[c].min;
        hi[c] = out.ranges[c].max;
      }
      out.params = params_from_range(lo, hi, spec, o_.how);
    }
    return out;
  }

  std::uint64_t nonfinite() const noexcept { return nonfinite_; }

  observer_state to_state() const {
    observer_state s;
    s.method = to_string(o_.method);
    s.axis = o_.spec.axis;
    for (const channel& ch : ch_) {
      channel_state cs;
      cs.min = ch.min;
      cs.max = ch.max;
      cs.batches = ch.batches;
      cs.average_min = ch.average.min;
      cs.average_max = ch.average.max;
      cs.histogram = ch.hist.to_state();
      cs.ort_histogram = ch.ort.to_state();
      extreme_values t = ch.tails;
      cs.tails = t.to_state();
      cs.batch_values = ch.batch_values;
      s.channels.push_back(std::move(cs));
    }
    if (!s.channels.empty()) s.channels.front().nonfinite = nonfinite_;
    return s;
  }

  /// Restores an observer; o must carry the options the state was made with.
  static activation_observer from_state(observer_options o, const observer_state& s) {
    const char* where = "activation_observer::from_state";
    AMCTQ_CHECK(s.method == to_string(o.method), errc::parse, where, "state is for method '", s.method,
                "' but the options ask for '", to_string(o.method), "'");
    AMCTQ_CHECK(s.axis == o.spec.axis, errc::parse, where, "state has axis ", s.axis, ", options ", o.spec.axis);
    AMCTQ_CHECK(s.axis != per_tensor || s.channels.size() <= 1, errc::parse, where,
                "a per-tensor state holds one channel, got ", s.channels.size());
    activation_observer ob(std::move(o));
    if (s.channels.empty()) return ob;
    ob.init_channels(s.channels.size());
    for (std::size_t c = 0; c < s.channels.size(); ++c) {
      const channel_state& cs = s.channels[c];
      channel& ch = ob.ch_[c];
      ch.min = cs.min;
      ch.max = cs.max;
      ch.batches = cs.batches;
      ch.average = {cs.average_min, cs.average_max};
      if (!cs.histogram.counts.empty()) {
        AMCTQ_CHECK(cs.histogram.capacity == ob.o_.histogram_capacity, errc::parse, where, "channel ", c,
                    ": histogram capacity ", cs.histogram.capacity, " differs from the options' ",
                    ob.o_.histogram_capacity);
        ch.hist = pow2_histogram::from_state(cs.histogram);
      }
      ch.ort = ort_histogram::from_state(ob.ort_bins(), ob.ort_collector(), cs.ort_histogram);
      if (!cs.tails.largest.empty() || !cs.tails.smallest.empty()) {
        AMCTQ_CHECK(cs.tails.capacity == ob.o_.tail_capacity, errc::parse, where, "channel ", c,
                    ": tails capacity differs from the options'");
        ch.tails = extreme_values::from_state(cs.tails);
      }
      ch.batch_values = cs.batch_values;
    }
    ob.nonfinite_ = s.channels.front().nonfinite;
    return ob;
  }

 private:
  struct channel {
    float min = std::numeric_limits<float>::infinity();
    float max = -std::numeric_limits<float>::infinity();
    std::uint64_t batches = 0;
    calib_range average{};
    pow2_histogram hist;
    ort_histogram ort;
    extreme_values tails;
    std::vector<double> batch_values;
    channel(std::uint32_t hc, std::uint32_t tc, ort_histogram oh) : hist(hc), ort(std::move(oh)), tails(tc) {}
  };

  // Entropy and percentile under the onnxruntime preset keep ORT's histogram instead of the pow2
  // one: ORT's windows and percentiles need ORT's bin counts (ort_histogram.hpp).
  bool uses_ort_histogram() const noexcept { return amctq::uses_ort_histogram(o_); }
  std::size_t ort_bins() const noexcept {
    return static_cast<std::size_t>(o_.method == calib_method::percentile ? o_.percentile.bins : o_.entropy.bins);
  }
  // ORT's percentile with a symmetric range histograms |x| (collect_absolute_value).
  ort_collect ort_collector() const noexcept {
    return o_.method == calib_method::percentile && o_.spec.symmetric ? ort_collect::magnitudes : ort_collect::values;
  }

  // Each channel's finite values of the batch into its ORT histogram, in one add per batch as
  // ORT collects them.
  template <class T, std::size_t R>
  void observe_ort(const tensor_view<T, R>& x, const std::vector<value_range>& batch) {
    std::vector<std::vector<float>> vals(ch_.size());
    for_each_run(x, o_.spec.axis, [&](std::size_t c, const float* p, std::size_t n, std::ptrdiff_t stride) {
      for (std::size_t i = 0; i < n; ++i) vals[c].push_back(p[static_cast<std::ptrdiff_t>(i) * stride]);
    });
    for (std::size_t c = 0; c < ch_.size(); ++c)
      if (!batch[c].empty()) ch_[c].ort.add(vals[c].data(), vals[c].size());
  }

  bool needs_histogram() const noexcept {
    if (uses_ort_histogram()) return false;
    switch (o_.method) {
      case calib_method::minmax:
      case calib_method::moving_average:
      case calib_method::pot_diffs: return false;
      default: return true;
    }
  }
  bool needs_tails() const noexcept {
    return (o_.method == calib_method::percentile && !uses_ort_histogram()) || o_.method == calib_method::ifmr;
  }

  void init_channels(std::size_t n) {
    ch_.assign(n, channel(o_.histogram_capacity, o_.tail_capacity, ort_histogram(ort_bins(), ort_collector())));
  }

  // Below this many values a batch sits in cache anyway, and two passes cost less than the
  // histogram copy the fused pass needs to undo a rejected batch.
  static constexpr std::ptrdiff_t fuse_threshold = std::ptrdiff_t{1} << 18;

  // Histogram (and, for percentile / IFMR, tails) of a large contiguous per-tensor batch in one
  // trip through memory. The counting pass hands back each block's values outside the
  // histogram's range or past the tails' cuts: they are the only ones that can grow the grid
  // or enter the tails, and early in a stream they are few per block. The grid grows block by
  // block; its state depends only on the values seen (histogram.hpp), so the result equals the
  // two-pass one. A batch holding NaN/inf that the options reject leaves the observer as it was.
  value_range observe_fused(const float* p, std::size_t n) {
    constexpr std::size_t block = 16384;
    channel& ch = ch_[0];
    const bool tails = needs_tails();
    const extreme_values tails_before = ch.tails;  // empty, so free, for the other methods
    const pow2_histogram hist_before = ch.hist;
    std::vector<float> outside(std::min(block, n));
    constexpr float inf = std::numeric_limits<float>::infinity();
    std::size_t bad = 0;
    // Early in a stream the tails' own cuts are loose, and the many values they let through
    // (each adding to a partial sort) cost more than a guess at the final cuts that is checked
    // afterwards.
    const tail_cuts guess = tails ? guess_tail_cuts(p, n, ch.tails.capacity()) : tail_cuts{};
    // Blocks after the first start on a 64-byte boundary: a block that starts mid-line has
    // a scalar head, and on a 16-byte aligned batch (a large std::vector's) every block would.
    const std::size_t skew = reinterpret_cast<std::uintptr_t>(p) % 64 / sizeof(float);
    for (std::size_t off = 0; off < n;) {
      const std::size_t len = std::min(off == 0 ? block - skew : block, n - off), after = off + len;
      const tail_cuts c = tails ? ch.tails.cuts(guess) : tail_cuts{-inf, inf};  // (others: the range only)
      const std::size_t m = ch.hist.accumulate_watched(p + off, len, c.lo, c.hi, outside.data(), n - after);
      if (tails) {
        bad += ch.tails.add(outside.data(), m, guess);
      } else {
        for (std::size_t k = 0; k < m; ++k) bad += !kernels::detail::is_finite(outside[k]);
      }
      off = after;
    }
    ch.hist.flush();
    if (tails && !ch.tails.beyond(guess)) {  // a wrong guess: offer the batch again
      ch.tails = tails_before;
      ch.tails.add(p, n);
    }
    if (bad != 0 && !o_.skip_nonfinite) {
      ch.tails = tails_before;
      ch.hist = hist_before;
    }
    return value_range{ch.hist.min(), ch.hist.max(), bad};
  }

  // Calls f(channel, pointer, count, stride) for runs of elements of one channel.
  template <class T, std::size_t R, class F>
  static void for_each_run(const tensor_view<T, R>& x, int axis, F&& f) {
    const auto plan = kernels::detail::make_row_plan<R>(x.extents(), x.strides(), x.strides(), axis);
    const std::ptrdiff_t n = plan.row_length(), s = plan.stride_a[plan.dims - 1];
    kernels::detail::for_each_row(plan, [&](std::ptrdiff_t off, std::ptrdiff_t, std::ptrdiff_t c, std::ptrdiff_t) {
      const float* row = x.data_handle() + off;
      if (plan.channel_is_row()) {
        for (std::ptrdiff_t i = 0; i < n; ++i) f(static_cast<std::size_t>(i), row + i * s, 1, 1);
      } else {
        f(c < 0 ? 0 : static_cast<std::size_t>(c), row, static_cast<std::size_t>(n), s);
      }
    });
  }

  calib_range channel_range(const channel& ch) const {
    if (!(ch.min <= ch.max)) return {0.0f, 0.0f};
    switch (o_.method) {
      case calib_method::minmax: return {ch.min, ch.max};
      case calib_method::moving_average: return ch.average;
      case calib_method::pot_diffs: {
        const qrange q = integer_range(o_.spec);
        const double fp = std::nearbyint(aggregate(ch.batch_values, o_.statistic));
        const double s = std::ldexp(1.0, -static_cast<int>(fp));
        // The grid's ends in double, saturated to float: data near FLT_MAX needs a step whose
        // 2^(b-1) multiple is past it, and the range must stay finite (params_from_range then
        // says whether a scale exists).
        constexpr double top = std::numeric_limits<float>::max();
        return {static_cast<float>(std::fmax(q.qmin * s, -top)), static_cast<float>(std::fmin(q.qmax * s, top))};
      }
      default: break;
    }
    if (uses_ort_histogram() && !ch.ort.empty())
      return o_.method == calib_method::percentile ? percentile_range(ch.ort, o_.percentile)
                                                   : entropy_range(ch.ort, o_.entropy);
    const binned_histogram h = ch.hist.to_binned();
    extreme_values tails = ch.tails;
    switch (o_.method) {
      case calib_method::percentile: return percentile_range(tails, h, o_.spec, o_.how, o_.percentile);
      case calib_method::entropy: return entropy_range(h, o_.spec, o_.how, o_.entropy);
      case calib_method::mse: return mse_range(h, o_.spec, o_.how, o_.mse);
      case calib_method::ifmr: return ifmr_range(tails, h, o_.spec, o_.how, o_.ifmr);
      case calib_method::hfmg: return hfmg_range(h, o_.spec, o_.how, o_.hfmg);
      case calib_method::aciq_laplace: return aciq_range(h, o_.spec, aciq_distribution::laplace);
      case calib_method::aciq_gaussian: return aciq_range(h, o_.spec, aciq_distribution::gaussian);
      default: break;
    }
    return {ch.min, ch.max};
  }

  observer_options o_;
  std::vector<channel> ch_;
  std::uint64_t nonfinite_ = 0;
};

}  // namespace amctq

#endif  // AMCTQ_ALGORITHMS_OBSERVER_HPP
