// AveragePool: input quantization only (no weight). Deploy: a depthwise QLinearConv /
// ConvInteger with unit int8 weights and weight scale 1/kernel_size, exact for windows that
// count padding or have none (ceil_mode 0).
#ifndef AMCTQ_GRAPH_LAYERS_AVERAGE_POOL_HPP
#define AMCTQ_GRAPH_LAYERS_AVERAGE_POOL_HPP

#include <algorithm>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/layers/conv.hpp"
#include "amctq/graph/layers/kind.hpp"
#include "amctq/graph/layers/lowering.hpp"

namespace amctq::graph::layers {

inline void average_pool_qoperator(qoperator_lowering& c) {
  const node& n = c.n;
  const layer_record& r = c.r;
  AMCTQ_CHECK(r.input_shape.size() >= 3, errc::invalid_argument, "save_model", "layer '", c.l.name,
              "': the calibration did not record the input shape");
  const auto kernel = n.get_ints("kernel_shape");
  const auto pads = n.get_ints("pads");
  const bool padded = std::any_of(pads.begin(), pads.end(), [](std::int64_t v) { return v != 0; });
  const std::string auto_pad = n.get_string("auto_pad", "NOTSET");
  const bool exact = n.get_int("ceil_mode", 0) == 0 && (auto_pad == "NOTSET" || auto_pad == "VALID") &&
                     (!padded || n.get_int("count_include_pad", 0) != 0);
  AMCTQ_CHECK(exact, errc::unsupported, "save_model", "layer '", c.l.name,
              "': AveragePool with ceil_mode or padding excluded from the count has no exact integer form; "
              "add it to skip_layers");
  const std::int64_t C = r.input_shape[1];
  std::int64_t K = 1;
  std::vector<std::int64_t> wshape{C, 1};
  for (auto d : kernel) {
    K *= d;
    wshape.push_back(d);
  }
  tensor wq(dtype::int8, wshape);
  std::fill(wq.data<std::int8_t>(), wq.data<std::int8_t>() + wq.size(), std::int8_t{1});
  const std::vector<float> ws = {1.0f / static_cast<float>(K)};
  std::vector<attribute> conv_attrs;
  for (const char* a : {"kernel_shape", "strides", "pads", "dilations", "auto_pad"})
    if (const attribute* at = n.find(a)) conv_attrs.push_back(*at);
  conv_attrs.push_back(detail::int_attr("group", C));
  lower_conv_integer(c, wq, ws, conv_attrs, {r.act.scale[0] * ws[0]});
}

inline layer_kind average_pool() {
  layer_kind k;
  k.op_type = "AveragePool";
  k.activation_channel_axis = 1;
  k.requantizes = true;
  k.lower_qoperator = average_pool_qoperator;
  return k;
}

}  // namespace amctq::graph::layers

#endif  // AMCTQ_GRAPH_LAYERS_AVERAGE_POOL_HPP
