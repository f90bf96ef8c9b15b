// Quantizes the record's tensors where they are made (graph/tensor_points.hpp), in either saved
// model: the node making tensor t writes t + "_unquantized" instead, and QuantizeLinear ->
// DequantizeLinear (or the exact rounding of another round mode) writes t, so every reader and
// a model output named t get the quantized values without being rewired. A graph input keeps
// its name; its readers are rewired to the quantized copy. The float ops between quantized
// tensors (Add, Concat, Sigmoid, ...) stay float ops on dequantized values, as in ONNX
// Runtime's QDQ models; amctq's executor computes them as ONNX Runtime does.
#ifndef AMCTQ_GRAPH_PASSES_QUANTIZE_TENSORS_HPP
#define AMCTQ_GRAPH_PASSES_QUANTIZE_TENSORS_HPP

#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/layers/lowering.hpp"
#include "amctq/graph/quant_record.hpp"

namespace amctq::graph::passes {

inline void quantize_tensors(graph& g, const std::vector<tensor_record>& tensors) {
  for (const tensor_record& t : tensors) {
    std::vector<node> added;
    const std::string tag = t.tensor + "_tensor";
    std::size_t at = 0;  // insert before node `at`
    bool made = false;
    for (std::size_t k = 0; k < g.nodes.size() && !made; ++k)
      for (auto& o : g.nodes[k].outputs)
        if (o == t.tensor) {
          o = t.tensor + "_unquantized";
          at = k + 1;
          made = true;
        }
    const std::string src = made ? t.tensor + "_unquantized" : t.tensor;
    const std::string dq = amctq::graph::detail::emit_fake_quantize(g, added, src, tag, t.act, 0, t.rounding);
    if (made) {
      added.back().outputs[0] = t.tensor;  // the DequantizeLinear writes the tensor's own name
    } else {
      bool input = false;
      for (const auto& i : g.inputs) input = input || i.name == t.tensor;
      AMCTQ_CHECK(input, errc::invalid_argument, "save_model", "tensor '", t.tensor,
                  "' of the record is neither made by a node nor a graph input");
      for (auto& n : g.nodes)
        for (auto& i : n.inputs)
          if (i == t.tensor) i = dq;
    }
    g.nodes.insert(g.nodes.begin() + static_cast<std::ptrdiff_t>(at), added.begin(), added.end());
  }
}

}  // namespace amctq::graph::passes

#endif  // AMCTQ_GRAPH_PASSES_QUANTIZE_TENSORS_HPP
