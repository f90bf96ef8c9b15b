// record.json: AMCT's per-layer record as JSON, keyed by layer name: scale_d, offset_d (numbers;
// lists, one per channel, with per-channel activations, plus act_axis), scale_d_b / offset_d_b
// (the second input of a MatMul of two activations), scale_w, offset_w,
// shift_bit, tensor_balance_factor, clusters (docs/pipeline.md describes each field).
#ifndef AMCTQ_IO_RECORD_JSON_HPP
#define AMCTQ_IO_RECORD_JSON_HPP

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "amctq/graph/quant_layers.hpp"
#include "amctq/graph/quant_record.hpp"
#include "amctq/io/atomic_file.hpp"

namespace amctq::io {

/// The top-level key of the tensors quantized where they are made (quant_record::tensors),
/// beside the layers' names.
inline constexpr const char* tensors_key = "quantized_tensors";

inline std::string write_record_json(const graph::quant_record& rec) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& l : rec.layers) {
    nlohmann::ordered_json e;
    e["op_type"] = l.op_type;
    if (l.act.is_per_channel()) {
      e["scale_d"] = l.act.scale;
      e["offset_d"] = l.act.zero_point;
      e["act_axis"] = l.act.axis;
    } else if (!l.act.scale.empty()) {
      e["scale_d"] = l.act.scale[0];
      e["offset_d"] = l.act.zero_point[0];
    } else {  // a weight-only layer (Gather table): no input grid, and no made-up one
      e["scale_d"] = nullptr;
      e["offset_d"] = nullptr;
    }
    if (!l.act_b.scale.empty()) {  // the second activation of a MatMul of two activations
      e["scale_d_b"] = l.act_b.scale[0];
      e["offset_d_b"] = l.act_b.zero_point[0];
    }
    e["act_bits"] = l.act_bits;
    if (l.act_rounding != round_mode::half_even) e["act_round_mode"] = to_string(l.act_rounding);
    e["scale_w"] = l.wts.scale;
    e["offset_w"] = l.wts.zero_point;
    e["shift_bit"] = l.shift_bit;
    e["tensor_balance_factor"] = l.tensor_balance_factor;
    e["clusters"] = l.clusters;
    if (!l.bias_grid.scale.empty()) {  // a bias of its own width: its grid (the int32 code follows from it)
      e["scale_bias"] = l.bias_grid.scale[0];
      e["bias_bits"] = static_cast<int>(std::lround(std::log2(l.bias_grid.qmax + 1.0))) + 1;  // qmax = 2^(b-1) - 1
    }
    j[l.name] = std::move(e);
  }
  if (!rec.tensors.empty()) {
    AMCTQ_CHECK(!j.contains(tensors_key), errc::unsupported, "save_model", "a layer is named '", tensors_key,
                "', the key record.json keeps for the tensors quantized where they are made; rename the node");
    nlohmann::ordered_json ts = nlohmann::ordered_json::object();
    for (const auto& t : rec.tensors) {
      nlohmann::ordered_json e;
      e["reason"] = t.reason;
      e["scale_d"] = t.act.scale[0];
      e["offset_d"] = t.act.zero_point[0];
      e["act_bits"] = t.bits;
      if (t.rounding != round_mode::half_even) e["act_round_mode"] = to_string(t.rounding);
      ts[t.tensor] = std::move(e);
    }
    j[tensors_key] = std::move(ts);
  }
  return j.dump(2) + "\n";
}

/// float_layers.json: how many layers were quantized, and every node of a quantizable kind left
/// in float with the reason ("asked": the config left it float; otherwise its form cannot be
/// quantized exactly), so no layer stays float without a word.
inline std::string write_float_layers_json(std::size_t quantized, const std::vector<graph::float_layer>& left) {
  nlohmann::ordered_json j;
  j["quantized"] = quantized;
  j["layers"] = quantized + left.size();
  nlohmann::ordered_json f = nlohmann::ordered_json::object();
  for (const auto& l : left) f[l.name] = {{"op_type", l.op_type}, {"reason", l.reason}, {"asked", l.asked}};
  j["float"] = std::move(f);
  return j.dump(2) + "\n";
}

inline void save_record_json(const graph::quant_record& rec, const std::string& path) {
  const std::string text = write_record_json(rec);
  write_file_atomic(path, text.data(), text.size());
}

}  // namespace amctq::io

#endif  // AMCTQ_IO_RECORD_JSON_HPP
