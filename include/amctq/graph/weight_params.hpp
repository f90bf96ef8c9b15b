// The grids of one layer's constants: its weights under weight_quant (ARQ's min/max rule, per
// output channel or per tensor, float or rounded up to a power of two, or Vitis diffs'
// power-of-two search) and, for a bias narrower than 32 bits, the bias' own per-tensor grid.
// diffs runs the same activation_observer an engine uses, over the tensor as one batch, so
// weights, biases and activations share one implementation of the search.
#ifndef AMCTQ_GRAPH_WEIGHT_PARAMS_HPP
#define AMCTQ_GRAPH_WEIGHT_PARAMS_HPP

#include <string>

#include "amctq/algorithms/arq.hpp"
#include "amctq/algorithms/observer.hpp"
#include "amctq/algorithms/weight_layout.hpp"
#include "amctq/error.hpp"
#include "amctq/graph/quant_config.hpp"

namespace amctq::graph {

/// Vitis diffs' power-of-two grid for a whole constant tensor (symmetric, per tensor).
inline quant_params diffs_params(const tensor_view<const float, 1>& v, int bits, int scope, bool narrow_range,
                                 const std::string& what) {
  observer_options o;
  o.method = calib_method::pot_diffs;
  o.spec.bits = bits;
  o.spec.symmetric = true;
  o.spec.narrow_range = narrow_range;
  o.pot.scope = scope;
  o.name = what;
  activation_observer obs(o);
  obs.observe(v);
  return obs.result().params;
}

inline quant_params weight_params(const tensor_view<const float, 1>& w, const weight_layout& L, const weight_quant& wq,
                                  const std::string& layer) {
  arq_options cfg;
  cfg.bits = wq.num_bits;
  cfg.symmetric = true;
  // ONNX per-axis params name one tensor axis; grouped ConvTranspose has no such axis.
  cfg.per_channel = wq.channel_wise && L.out_channel_is_axis();
  cfg.how = wq.how;
  cfg.scale_kind = wq.scale_kind;
  cfg.narrow_range = wq.narrow_range;
  if (wq.diffs_scope == 0) return arq_params(w, L, cfg);
  AMCTQ_CHECK(!cfg.per_channel && wq.scale_kind == scale_type::power_of_two, errc::unsupported, "quantize_model",
              "layer '", layer, "': diffs weights are per tensor with power-of-two scales");
  return diffs_params(w, wq.num_bits, wq.diffs_scope, wq.narrow_range, layer + " weights");
}

/// The grid of a bias narrower than 32 bits: symmetric, one scale for the whole bias, from
/// its min / max (AMCT's rule, rounded up to 2^k for power_of_two) or diffs' search.
inline quant_params bias_grid_params(const tensor_view<const float, 1>& b, const bias_quant& bq,
                                     const std::string& layer) {
  AMCTQ_CHECK(bq.num_bits < 32, errc::invalid_argument, "calibrate", "layer '", layer,
              "': a 32-bit bias has no grid of its own");
  if (bq.diffs_scope > 0) return diffs_params(b, bq.num_bits, bq.diffs_scope, false, layer + " bias");
  const value_range r = minmax(b);
  AMCTQ_CHECK(r.nonfinite == 0, errc::non_finite, "calibrate", "layer '", layer, "': the bias holds ", r.nonfinite,
              " NaN or infinite values");
  quant_spec spec;
  spec.bits = bq.num_bits;
  spec.symmetric = true;
  spec.scale_kind = bq.scale_kind;
  return params_from_range(r.min, r.max, spec, preset::amct);
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_WEIGHT_PARAMS_HPP
