// `amctq inspect M.onnx`: a readable summary of a model — versions, producer, graph inputs and
// outputs with types and shapes, node counts by op type, initializer count and bytes, and the
// layers amctq can quantize (Conv, ConvTranspose, Gemm, MatMul with a constant weight,
// AveragePool).
#include <cstdint>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/pipeline.hpp"
#include "amctq/io/onnx_reader.hpp"
#include "cli_report.hpp"

namespace {

const char* const inspect_usage =
    "usage: amctq inspect M.onnx\n"
    "Prints the IR version, opsets, producer, inputs and outputs (type and shape), node counts\n"
    "by op type, initializer count and bytes, and the layers amctq can quantize.\n"
    "Exit status 0 on success; on error, one line on stderr and status 1 (2 for bad usage).\n";

std::string shape_text(const amctq::graph::value_info& v) {
  if (!v.shape) return "[?]";  // rank unknown
  std::string s = "[";
  for (std::size_t i = 0; i < v.shape->size(); ++i) {
    const auto& d = (*v.shape)[i];
    if (i) s += ", ";
    s += d.value ? std::to_string(*d.value) : (d.param.empty() ? std::string("?") : d.param);
  }
  return s + "]";
}

std::string type_text(const amctq::graph::value_info& v) {
  if (!v.unparsed.empty() && v.elem_type == amctq::graph::dtype::undefined) return "(non-tensor type)";
  return std::string(amctq::graph::to_string(v.elem_type)) + " " + shape_text(v);
}

std::string dims_text(const std::vector<std::int64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

std::string bytes_text(std::uint64_t n) {
  std::ostringstream o;
  o.precision(3);
  if (n >= (1u << 20)) o << static_cast<double>(n) / (1 << 20) << " MiB";
  else if (n >= 1024) o << static_cast<double>(n) / 1024 << " KiB";
  else o << n << " B";
  return std::to_string(n) + " bytes (" + o.str() + ")";
}

bool is_default_domain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

void print_summary(std::ostream& out, const std::string& path, const amctq::graph::model& m) {
  using namespace amctq::graph;
  const amctq::graph::graph& g = m.main;
  out << "model:      " << path << "\n";
  out << "ir_version: " << m.ir_version << "\n";
  out << "opset:      ";
  for (std::size_t i = 0; i < m.opset_imports.size(); ++i)
    out << (i ? ", " : "") << (m.opset_imports[i].domain.empty() ? "ai.onnx" : m.opset_imports[i].domain) << " "
        << m.opset_imports[i].version;
  out << "\n";
  out << "producer:   " << (m.producer_name.empty() ? "(none)" : m.producer_name)
      << (m.producer_version.empty() ? "" : " " + m.producer_version) << "\n";
  if (!m.domain.empty() || m.model_version) out << "domain:     " << m.domain << " version " << m.model_version << "\n";
  if (!g.name.empty()) out << "graph:      " << g.name << "\n";
  for (const auto& [k, v] : m.metadata_props) out << "metadata:   " << k << " = " << v << "\n";

  std::set<std::string> init_names;
  for (const auto& i : g.initializers) init_names.insert(i.name);
  out << "\ninputs:\n";
  for (const auto& v : g.inputs)
    if (!init_names.count(v.name)) out << "  " << v.name << ": " << type_text(v) << "\n";
  out << "outputs:\n";
  for (const auto& v : g.outputs) out << "  " << v.name << ": " << type_text(v) << "\n";

  std::map<std::string, std::size_t> by_op;
  for (const auto& n : g.nodes)
    by_op[is_default_domain(n.domain) ? n.op_type : n.domain + "::" + n.op_type]++;
  out << "\nnodes: " << g.nodes.size() << "\n";
  for (const auto& [op, count] : by_op) out << "  " << op << ": " << count << "\n";

  std::uint64_t bytes = 0, params = 0, external = 0;
  for (const auto& i : g.initializers) {
    bytes += i.value.type() == dtype::string ? 0 : i.value.bytes().size();
    params += i.value.size();
    external += i.external.has_value();
  }
  out << "\ninitializers: " << g.initializers.size() << ", " << params << " parameters, " << bytes_text(bytes);
  if (external) out << ", " << external << " in external data";
  out << "\n";

  // The layers `amctq config` / `quantize` will see: found the same way, on the same form.
  amctq::graph::model folded = m;
  amctq::graph::prepare_float_model(folded);
  std::vector<amctq::graph::float_layer> left;
  const auto layers = amctq::graph::find_quant_layers(folded.main, &left);
  const amctq::graph::graph& f = folded.main;
  out << "\nquantizable layers: " << layers.size() << "\n";
  for (const auto& l : layers) {
    const node& n = f.nodes[l.node_index];
    if (!l.input_b.empty()) {
      out << "  " << l.op_type << " " << l.name << "  activations " << l.input << " x " << l.input_b << "\n";
      continue;
    }
    if (l.weight.empty()) {
      out << "  " << l.op_type << " " << l.name << "  kernel " << dims_text(n.get_ints("kernel_shape")) << "\n";
      continue;
    }
    out << "  " << l.op_type << " " << l.name << "  weight " << l.weight << " "
        << dims_text(f.find_initializer(l.weight)->value.shape()) << (l.bias.empty() ? "" : ", bias " + l.bias) << "\n";
  }
  // Nodes of a quantizable kind that stay in float, so that a missing layer is explained rather than silent.
  if (!left.empty()) {
    out << "left in float: " << left.size() << "\n";
    for (const auto& l : left) out << "  " << l.op_type << " " << l.name << ": " << l.reason << "\n";
  }
}

}  // namespace

int cmd_inspect(int argc, char** argv) {
  std::string model_path;
  try {
    for (int i = 0; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "inspect" && i == 0) continue;  // tolerate being passed the subcommand itself
      if (a == "-h" || a == "--help") {
        std::cout << inspect_usage;
        return 0;
      }
      if (a == "--model" && i + 1 < argc) model_path = argv[++i];
      else if (!a.empty() && a[0] == '-')
        AMCTQ_THROW(amctq::errc::invalid_argument, "amctq inspect", "unknown option '", a, "' (see amctq inspect --help)");
      else if (model_path.empty()) model_path = a;
      else AMCTQ_THROW(amctq::errc::invalid_argument, "amctq inspect", "one model at a time (got '", model_path, "' and '", a, "')");
    }
    AMCTQ_CHECK(!model_path.empty(), amctq::errc::invalid_argument, "amctq inspect", "no model given (see amctq inspect --help)");
  } catch (const std::exception& e) {
    return amctq::cli::report(e, "amctq inspect", amctq::cli::bad_usage);
  }
  try {
    const amctq::graph::model m = amctq::io::read_onnx(model_path);
    print_summary(std::cout, model_path, m);
    return 0;
  } catch (const std::exception& e) {
    return amctq::cli::report(e, "amctq inspect", amctq::cli::bad_input);
  }
}
