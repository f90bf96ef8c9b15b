// The scales of one layer's weights under its weight_quant: ARQ's min/max rule (per output
// channel or per tensor, float or rounded up to a power of two), or Vitis diffs' power-of-two
// search. diffs runs the same activation_observer an engine uses, over the weights as one batch,
// so weights and activations share one implementation of the search.
#ifndef AMCTQ_GRAPH_WEIGHT_PARAMS_HPP
#define AMCTQ_GRAPH_WEIGHT_PARAMS_HPP

#include <string>

#include "amctq/algorithms/arq.hpp"
#include "amctq/algorithms/observer.hpp"
#include "amctq/algorithms/weight_layout.hpp"
#include "amctq/error.hpp"
#include "amctq/graph/quant_config.hpp"

namespace amctq::graph {

inline quant_params weight_params(const tensor_view<const float, 1>& w, const weight_layout& L, const weight_quant& wq,
                                  const std::string& layer) {
  arq_options cfg;
  cfg.bits = wq.num_bits;
  cfg.symmetric = true;
  // ONNX per-axis params name one tensor axis; grouped ConvTranspose has no such axis.
  cfg.per_channel = wq.channel_wise && L.out_channel_is_axis();
  cfg.how = wq.how;
  cfg.scale_kind = wq.scale_kind;
  if (wq.diffs_scope == 0) return arq_params(w, L, cfg);
  AMCTQ_CHECK(!cfg.per_channel && wq.scale_kind == scale_type::power_of_two, errc::unsupported, "quantize_model",
              "layer '", layer, "': diffs weights are per tensor with power-of-two scales");
  observer_options o;
  o.method = calib_method::pot_diffs;
  o.spec.bits = wq.num_bits;
  o.spec.symmetric = true;
  o.pot.scope = wq.diffs_scope;
  o.name = layer + " weights";
  activation_observer obs(o);
  obs.observe(w);
  return obs.result().params;
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_WEIGHT_PARAMS_HPP
