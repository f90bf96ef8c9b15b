// ONNX reader: ModelProto bytes -> graph::model, straight from the protobuf wire format (no
// libprotobuf). Every length, count and path is checked; bad input raises amctq::error
// (errc::parse, or errc::io for files) whose "where" names the field, e.g.
// "ModelProto.graph.node[3].attribute[2].t". Tensor bytes are copied once, from the mapped
// file into the tensor.
#ifndef AMCTQ_IO_ONNX_READER_HPP
#define AMCTQ_IO_ONNX_READER_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <system_error>
#include <unordered_map>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/tensor.hpp"
#include "amctq/io/detail/mapped_file.hpp"
#include "amctq/io/detail/quote.hpp"
#include "amctq/io/protobuf_wire.hpp"

namespace amctq::io {

/// Subgraphs (If/Loop/Scan bodies) nested deeper than this are rejected.
constexpr int onnx_max_graph_depth = 64;

namespace detail {

/// A step of the path from the ModelProto to the message being read, formatted only when an
/// error is raised ("ModelProto.graph.node[3].attribute[2].t").
struct onnx_path {
  const onnx_path* parent;
  const char* field;
  std::int64_t index;  ///< -1: not a repeated element

  std::string str() const {
    std::string head = parent ? parent->str() + "." : std::string();
    head += field;
    if (index >= 0) head += "[" + std::to_string(index) + "]";
    return head;
  }
  static std::string describe(const void* p) { return static_cast<const onnx_path*>(p)->str(); }
};

inline std::string format_dims(const std::vector<std::int64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

inline bool known_dtype(int code) noexcept {
  return (code >= 1 && code <= 23) && graph::element_size(static_cast<graph::dtype>(code)) + (code == 8) > 0;
}

/// The one copy of a tensor's bytes out of the mapped file. Big buffers are asked to be backed
/// by transparent huge pages before they are first touched: on a fresh allocation the page
/// faults, not the copy, dominate (100 MB read at 0.75 GB/s with 4 KiB pages on the dev box).
inline std::vector<std::byte> copy_bytes(const std::byte* p, std::size_t n) {
  std::vector<std::byte> v;
#if defined(MADV_HUGEPAGE)
  constexpr std::size_t huge = std::size_t{2} << 20;
  if (n >= 2 * huge) {
    v.reserve(n);
    const auto begin = reinterpret_cast<std::uintptr_t>(v.data());
    const std::uintptr_t first = (begin + huge - 1) / huge * huge;
    const std::uintptr_t last = (begin + n) / huge * huge;
    if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
  }
#endif
  v.insert(v.end(), p, p + n);
  return v;
}

/// The first pair of items with the same non-empty name() (or any name, `skip_unnamed` false):
/// true with their indices in `first` and `second`.
template <class Items, class Name>
bool first_repeat(const Items& items, Name name, bool skip_unnamed, std::size_t& first, std::size_t& second) {
  std::unordered_map<std::string_view, std::size_t> seen;
  seen.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string& n = name(items[i]);
    if (skip_unnamed && n.empty()) continue;
    const auto [it, fresh] = seen.emplace(n, i);
    if (!fresh) {
      first = it->second;
      second = i;
      return true;
    }
  }
  return false;
}

/// Throws `code` at `where` when two nodes or two initializers of `g` share a name: ONNX
/// Runtime refuses such a graph, and amctq keys layers and their records by node name.
/// Unnamed nodes are legal and not compared.
inline void check_unique_names(const graph::graph& g, errc code, const std::string& where) {
  std::size_t a = 0, b = 0;
  const char* what = nullptr;
  std::string name;
  if (first_repeat(g.nodes, [](const graph::node& n) -> const std::string& { return n.name; }, true, a, b)) {
    what = "node";
    name = g.nodes[b].name;
  } else if (first_repeat(g.initializers, [](const graph::initializer& i) -> const std::string& { return i.name; },
                          false, a, b)) {
    what = "initializer";
    name = g.initializers[b].name;
  }
  if (!what) return;
  AMCTQ_THROW(code, where, what, "[", a, "] and ", what, "[", b, "] are both named '", clip(name), "'; ",
              "ONNX Runtime refuses such a model too: give each ", what, " its own name");
}

/// A TensorProto as read, before its data is resolved.
struct tensor_fields {
  std::vector<std::int64_t> dims;
  int data_type = 0;
  std::string name;
  std::string doc_string;
  bool has_raw = false;
  std::string_view raw;
  std::vector<float> floats;
  std::vector<std::int64_t> int32s;  // int32_data widened: values are checked on narrowing
  std::vector<std::string> strings;
  std::vector<std::int64_t> int64s;
  std::vector<double> doubles;
  std::vector<std::uint64_t> uint64s;
  std::vector<std::pair<std::string, std::string>> external_data;
  std::int64_t data_location = 0;
};

class onnx_parser {
 public:
  explicit onnx_parser(std::string base_dir) : base_dir_(std::move(base_dir)) {}

  graph::model parse_model(const std::byte* data, std::size_t size) {
    const onnx_path path{nullptr, "ModelProto", -1};
    pb::reader r = open(data, size, "ModelProto", path);
    graph::model m;
    m.ir_version = 0;
    bool seen_graph = false;
    std::int64_t n_opset = 0, n_meta = 0;
    while (!r.done()) {
      const std::byte* start = r.position();
      const pb::tag t = r.read_tag();
      switch (t.field) {
        case 1: m.ir_version = read_int(r, t, "ModelProto.ir_version"); break;
        case 2: m.producer_name = read_string(r, t, "ModelProto.producer_name"); break;
        case 3: m.producer_version = read_string(r, t, "ModelProto.producer_version"); break;
        case 4: m.domain = read_string(r, t, "ModelProto.domain"); break;
        case 5: m.model_version = read_int(r, t, "ModelProto.model_version"); break;
        case 6: m.doc_string = read_string(r, t, "ModelProto.doc_string"); break;
        case 7: {
          const std::string_view b = read_message(r, t, "ModelProto.graph");
          const onnx_path p{&path, "graph", -1};
          m.main = parse_graph(b, p, 0);
          seen_graph = true;
          break;
        }
        case 8: {
          const std::string_view b = read_message(r, t, "ModelProto.opset_import");
          const onnx_path p{&path, "opset_import", n_opset++};
          m.opset_imports.push_back(parse_opset(b, p));
          break;
        }
        case 14: {
          const std::string_view b = read_message(r, t, "ModelProto.metadata_props");
          const onnx_path p{&path, "metadata_props", n_meta++};
          m.metadata_props.push_back(parse_string_pair(b, p));
          break;
        }
        default:
          r.skip(t);
          m.unparsed.append(reinterpret_cast<const char*>(start), static_cast<std::size_t>(r.position() - start));
      }
    }
    AMCTQ_CHECK(seen_graph, errc::parse, "ModelProto", "no graph (field 7): not an ONNX model");
    return m;
  }

  /// A bare TensorProto (the .pb files of ONNX's test data sets).
  graph::initializer parse_tensor_proto(const std::byte* data, std::size_t size) {
    const onnx_path path{nullptr, "TensorProto", -1};
    return parse_initializer(std::string_view(reinterpret_cast<const char*>(data), size), path);
  }

 private:
  pb::reader open(const std::byte* data, std::size_t size, const char* what, const onnx_path& path) {
    pb::reader r(data, size, what);
    r.set_context(&onnx_path::describe, &path);
    return r;
  }
  pb::reader open(std::string_view b, const char* what, const onnx_path& path) {
    return open(reinterpret_cast<const std::byte*>(b.data()), b.size(), what, path);
  }

  static void expect(const pb::reader& r, pb::tag t, pb::wire_type want, const char* field) {
    AMCTQ_CHECK(t.type == want, errc::parse, r.where(), field, " has wire type ", pb::to_string(t.type),
                ", expected ", pb::to_string(want));
  }
  static std::int64_t read_int(pb::reader& r, pb::tag t, const char* field) {
    expect(r, t, pb::wire_type::varint, field);
    return static_cast<std::int64_t>(r.read_varint());
  }
  static std::string read_string(pb::reader& r, pb::tag t, const char* field) {
    expect(r, t, pb::wire_type::len, field);
    return std::string(r.read_bytes());
  }
  static std::string_view read_message(pb::reader& r, pb::tag t, const char* field) {
    expect(r, t, pb::wire_type::len, field);
    return r.read_bytes();
  }

  /// Repeated varint field, packed or not; `check` validates the range of each value.
  template <class T>
  static void read_varints(pb::reader& r, pb::tag t, std::vector<T>& out, const char* field) {
    if (t.type == pb::wire_type::varint) {
      out.push_back(static_cast<T>(r.read_varint()));
      return;
    }
    expect(r, t, pb::wire_type::len, field);
    const std::string_view b = r.read_bytes();
    pb::reader packed(reinterpret_cast<const std::byte*>(b.data()), b.size(), field);
    packed.set_context(&pb_where, &r);
    // Every varint takes at least one byte: reserving the byte count bounds the allocation.
    out.reserve(out.size() + b.size());
    while (!packed.done()) out.push_back(static_cast<T>(packed.read_varint()));
  }
  /// Repeated fixed-width field (float or double), packed or not.
  template <class T>
  static void read_fixed(pb::reader& r, pb::tag t, std::vector<T>& out, const char* field) {
    constexpr pb::wire_type scalar = sizeof(T) == 4 ? pb::wire_type::fixed32 : pb::wire_type::fixed64;
    if (t.type == scalar) {
      if constexpr (sizeof(T) == 4) {
        out.push_back(r.read_float());
      } else {
        out.push_back(r.read_double());
      }
      return;
    }
    expect(r, t, pb::wire_type::len, field);
    const std::string_view b = r.read_bytes();
    AMCTQ_CHECK(b.size() % sizeof(T) == 0, errc::parse, r.where(), field, " packed length ", b.size(),
                " is not a multiple of ", sizeof(T));
    const std::size_t n = b.size() / sizeof(T);
    const std::size_t at = out.size();
    out.resize(at + n);
    if (n) std::memcpy(out.data() + at, b.data(), b.size());  // little-endian host, as the wire
  }
  static std::string pb_where(const void* r) { return static_cast<const pb::reader*>(r)->where(); }

  graph::opset_import parse_opset(std::string_view b, const onnx_path& path) {
    pb::reader r = open(b, "OperatorSetIdProto", path);
    graph::opset_import o;
    while (!r.done()) {
      const pb::tag t = r.read_tag();
      if (t.field == 1) o.domain = read_string(r, t, "OperatorSetIdProto.domain");
      else if (t.field == 2) o.version = read_int(r, t, "OperatorSetIdProto.version");
      else r.skip(t);
    }
    return o;
  }

  std::pair<std::string, std::string> parse_string_pair(std::string_view b, const onnx_path& path) {
    pb::reader r = open(b, "StringStringEntryProto", path);
    std::pair<std::string, std::string> kv;
    while (!r.done()) {
      const pb::tag t = r.read_tag();
      if (t.field == 1) kv.first = read_string(r, t, "StringStringEntryProto.key");
      else if (t.field == 2) kv.second = read_string(r, t, "StringStringEntryProto.value");
      else r.skip(t);
    }
    return kv;
  }

  graph::graph parse_graph(std::string_view b, const onnx_path& path, int depth) {
    AMCTQ_CHECK(depth <= onnx_max_graph_depth, errc::parse, path.str(), "subgraphs nested deeper than ",
                onnx_max_graph_depth);
    pb::reader r = open(b, "GraphProto", path);
    graph::graph g;
    std::int64_t n_node = 0, n_init = 0, n_in = 0, n_out = 0, n_vi = 0;
    while (!r.done()) {
      const std::byte* start = r.position();
      const pb::tag t = r.read_tag();
      switch (t.field) {
        case 1: {
          const std::string_view m = read_message(r, t, "GraphProto.node");
          const onnx_path p{&path, "node", n_node++};
          g.nodes.push_back(parse_node(m, p, depth));
          break;
        }
        case 2: g.name = read_string(r, t, "GraphProto.name"); break;
        case 5: {
          const std::string_view m = read_message(r, t, "GraphProto.initializer");
          const onnx_path p{&path, "initializer", n_init++};
          g.initializers.push_back(parse_initializer(m, p));
          break;
        }
        case 10: g.doc_string = read_string(r, t, "GraphProto.doc_string"); break;
        case 11: {
          const std::string_view m = read_message(r, t, "GraphProto.input");
          const onnx_path p{&path, "input", n_in++};
          g.inputs.push_back(parse_value_info(m, p));
          break;
        }
        case 12: {
          const std::string_view m = read_message(r, t, "GraphProto.output");
          const onnx_path p{&path, "output", n_out++};
          g.outputs.push_back(parse_value_info(m, p));
          break;
        }
        case 13: {
          const std::string_view m = read_message(r, t, "GraphProto.value_info");
          const onnx_path p{&path, "value_info", n_vi++};
          g.value_infos.push_back(parse_value_info(m, p));
          break;
        }
        default:
          r.skip(t);
          g.unparsed.append(reinterpret_cast<const char*>(start), static_cast<std::size_t>(r.position() - start));
      }
    }
    check_unique_names(g, errc::parse, path.str());
    return g;
  }

  graph::node parse_node(std::string_view b, const onnx_path& path, int depth) {
    pb::reader r = open(b, "NodeProto", path);
    graph::node n;
    std::int64_t n_attr = 0;
    while (!r.done()) {
      const std::byte* start = r.position();
      const pb::tag t = r.read_tag();
      switch (t.field) {
        case 1: n.inputs.push_back(read_string(r, t, "NodeProto.input")); break;
        case 2: n.outputs.push_back(read_string(r, t, "NodeProto.output")); break;
        case 3: n.name = read_string(r, t, "NodeProto.name"); break;
        case 4: n.op_type = read_string(r, t, "NodeProto.op_type"); break;
        case 7: n.domain = read_string(r, t, "NodeProto.domain"); break;
        case 6: n.doc_string = read_string(r, t, "NodeProto.doc_string"); break;
        case 5: {
          const std::string_view m = read_message(r, t, "NodeProto.attribute");
          const onnx_path p{&path, "attribute", n_attr++};
          n.attributes.push_back(parse_attribute(m, p, depth));
          break;
        }
        default:
          r.skip(t);
          n.unparsed.append(reinterpret_cast<const char*>(start), static_cast<std::size_t>(r.position() - start));
      }
    }
    return n;
  }

  graph::attribute parse_attribute(std::string_view b, const onnx_path& path, int depth) {
    using kind = graph::attribute::kind;
    pb::reader r = open(b, "AttributeProto", path);
    graph::attribute a;
    kind inferred = kind::undefined;  // for old files without the type field
    bool has_type = false;
    std::int64_t n_t = 0, n_g = 0;
    while (!r.done()) {
      const std::byte* start = r.position();
      const pb::tag t = r.read_tag();
      switch (t.field) {
        case 1: a.name = read_string(r, t, "AttributeProto.name"); break;
        case 21: a.ref_attr_name = read_string(r, t, "AttributeProto.ref_attr_name"); break;
        case 13: a.doc_string = read_string(r, t, "AttributeProto.doc_string"); break;
        case 20: {
          const std::int64_t k = read_int(r, t, "AttributeProto.type");
          AMCTQ_CHECK(k >= 0 && k <= 14, errc::parse, path.str(), "AttributeProto.type ", k, " is not a known type");
          a.type = static_cast<kind>(k);
          // An explicit UNDEFINED says no more than a missing field (and the writer omits
          // it), so both infer the kind from the value; otherwise a re-read would differ.
          has_type = k != 0;
          break;
        }
        case 2:
          expect(r, t, pb::wire_type::fixed32, "AttributeProto.f");
          a.f = r.read_float();
          inferred = kind::f;
          break;
        case 3: a.i = read_int(r, t, "AttributeProto.i"); inferred = kind::i; break;
        case 4: a.s = read_string(r, t, "AttributeProto.s"); inferred = kind::s; break;
        case 5: {
          const std::string_view m = read_message(r, t, "AttributeProto.t");
          const onnx_path p{&path, "t", -1};
          a.t = parse_initializer(m, p).value;
          inferred = kind::t;
          break;
        }
        case 6: {
          const std::string_view m = read_message(r, t, "AttributeProto.g");
          const onnx_path p{&path, "g", -1};
          a.g = std::make_shared<graph::graph>(parse_graph(m, p, depth + 1));
          inferred = kind::g;
          break;
        }
        case 7: read_fixed(r, t, a.floats, "AttributeProto.floats"); inferred = kind::floats; break;
        case 8: read_varints(r, t, a.ints, "AttributeProto.ints"); inferred = kind::ints; break;
        case 9: a.strings.push_back(read_string(r, t, "AttributeProto.strings")); inferred = kind::strings; break;
        case 10: {
          const std::string_view m = read_message(r, t, "AttributeProto.tensors");
          const onnx_path p{&path, "tensors", n_t++};
          a.tensors.push_back(parse_initializer(m, p).value);
          inferred = kind::tensors;
          break;
        }
        case 11: {
          const std::string_view m = read_message(r, t, "AttributeProto.graphs");
          const onnx_path p{&path, "graphs", n_g++};
          a.graphs.push_back(std::make_shared<graph::graph>(parse_graph(m, p, depth + 1)));
          inferred = kind::graphs;
          break;
        }
        default:
          // sparse_tensor(s) 22/23, tp 14, type_protos 15 and anything newer: kept raw.
          r.skip(t);
          a.unparsed.append(reinterpret_cast<const char*>(start), static_cast<std::size_t>(r.position() - start));
          if (t.field == 22) inferred = kind::sparse_tensor;
          else if (t.field == 23) inferred = kind::sparse_tensors;
          else if (t.field == 14) inferred = kind::type_proto;
          else if (t.field == 15) inferred = kind::type_protos;
      }
    }
    if (!has_type) a.type = inferred;
    // The type says which member holds the value; drop any other (a malformed file may set
    // several) so that what was read is exactly what gets written back.
    if (a.type != kind::f) a.f = 0.0f;
    if (a.type != kind::i) a.i = 0;
    if (a.type != kind::s) a.s.clear();
    if (a.type != kind::t) a.t = graph::tensor();
    if (a.type != kind::g) a.g.reset();
    if (a.type != kind::floats) a.floats.clear();
    if (a.type != kind::ints) a.ints.clear();
    if (a.type != kind::strings) a.strings.clear();
    if (a.type != kind::tensors) a.tensors.clear();
    if (a.type != kind::graphs) a.graphs.clear();
    return a;
  }

  graph::value_info parse_value_info(std::string_view b, const onnx_path& path) {
    pb::reader r = open(b, "ValueInfoProto", path);
    graph::value_info v;
    while (!r.done()) {
      const std::byte* start = r.position();
      const pb::tag t = r.read_tag();
      if (t.field == 1) {
        v.name = read_string(r, t, "ValueInfoProto.name");
      } else if (t.field == 3) {
        v.doc_string = read_string(r, t, "ValueInfoProto.doc_string");
      } else if (t.field == 2) {
        const std::string_view m = read_message(r, t, "ValueInfoProto.type");
        const onnx_path p{&path, "type", -1};
        if (!parse_tensor_type(m, p, v))
          v.unparsed.append(reinterpret_cast<const char*>(start), static_cast<std::size_t>(r.position() - start));
      } else {
        r.skip(t);
        v.unparsed.append(reinterpret_cast<const char*>(start), static_cast<std::size_t>(r.position() - start));
      }
    }
    return v;
  }

  /// Fills elem_type and shape from a TypeProto that holds only a tensor type; returns false
  /// (leaving `v` untouched) for anything else, which the caller keeps raw.
  bool parse_tensor_type(std::string_view b, const onnx_path& path, graph::value_info& v) {
    pb::reader r = open(b, "TypeProto", path);
    std::string_view tensor_type;
    bool only_tensor = false;
    while (!r.done()) {
      const pb::tag t = r.read_tag();
      if (t.field == 1 && t.type == pb::wire_type::len && !only_tensor) {
        tensor_type = r.read_bytes();
        only_tensor = true;
      } else {
        return false;  // sequence, map, optional, sparse, denotation: not amctq's to interpret
      }
    }
    if (!only_tensor) return false;
    const onnx_path tp{&path, "tensor_type", -1};
    pb::reader tr = open(tensor_type, "TypeProto.Tensor", tp);
    graph::dtype elem = graph::dtype::undefined;
    std::optional<std::vector<graph::dimension>> shape;
    while (!tr.done()) {
      const pb::tag t = tr.read_tag();
      if (t.field == 1) {
        const std::int64_t e = read_int(tr, t, "TypeProto.Tensor.elem_type");
        AMCTQ_CHECK(e == 0 || known_dtype(static_cast<int>(e)), errc::parse, tp.str(),
                    "TypeProto.Tensor.elem_type ", e, " is not an ONNX data type");
        elem = static_cast<graph::dtype>(e);
      } else if (t.field == 2) {
        const std::string_view m = read_message(tr, t, "TypeProto.Tensor.shape");
        const onnx_path sp{&tp, "shape", -1};
        shape = parse_shape(m, sp);
      } else {
        return false;
      }
    }
    v.elem_type = elem;
    v.shape = std::move(shape);
    return true;
  }

  std::vector<graph::dimension> parse_shape(std::string_view b, const onnx_path& path) {
    pb::reader r = open(b, "TensorShapeProto", path);
    std::vector<graph::dimension> dims;
    while (!r.done()) {
      const pb::tag t = r.read_tag();
      if (t.field != 1) {
        r.skip(t);
        continue;
      }
      const std::string_view m = read_message(r, t, "TensorShapeProto.dim");
      const onnx_path p{&path, "dim", static_cast<std::int64_t>(dims.size())};
      pb::reader d = open(m, "TensorShapeProto.Dimension", p);
      graph::dimension dim;
      while (!d.done()) {
        const pb::tag dt = d.read_tag();
        if (dt.field == 1) {
          dim.value = read_int(d, dt, "Dimension.dim_value");
          AMCTQ_CHECK(*dim.value >= 0, errc::parse, p.str(), "Dimension.dim_value ", *dim.value,
                      " is negative; an unknown size has no dim_value (or a dim_param name)");
        }
        else if (dt.field == 2) dim.param = read_string(d, dt, "Dimension.dim_param");
        else d.skip(dt);
      }
      dims.push_back(std::move(dim));
    }
    return dims;
  }

  tensor_fields read_tensor_fields(std::string_view b, const onnx_path& path) {
    pb::reader r = open(b, "TensorProto", path);
    tensor_fields f;
    while (!r.done()) {
      const pb::tag t = r.read_tag();
      switch (t.field) {
        case 1: read_varints(r, t, f.dims, "TensorProto.dims"); break;
        case 2: f.data_type = static_cast<int>(read_int(r, t, "TensorProto.data_type")); break;
        case 3: AMCTQ_THROW(errc::unsupported, path.str(), "TensorProto.segment (chunked tensors) is not supported");
        case 4: read_fixed(r, t, f.floats, "TensorProto.float_data"); break;
        case 5: read_varints(r, t, f.int32s, "TensorProto.int32_data"); break;
        case 6: f.strings.push_back(read_string(r, t, "TensorProto.string_data")); break;
        case 7: read_varints(r, t, f.int64s, "TensorProto.int64_data"); break;
        case 8: f.name = read_string(r, t, "TensorProto.name"); break;
        case 9:
          expect(r, t, pb::wire_type::len, "TensorProto.raw_data");
          f.raw = r.read_bytes();
          f.has_raw = true;
          break;
        case 10: read_fixed(r, t, f.doubles, "TensorProto.double_data"); break;
        case 11: read_varints(r, t, f.uint64s, "TensorProto.uint64_data"); break;
        case 12: f.doc_string = read_string(r, t, "TensorProto.doc_string"); break;
        case 13: {
          const std::string_view m = read_message(r, t, "TensorProto.external_data");
          const onnx_path p{&path, "external_data", static_cast<std::int64_t>(f.external_data.size())};
          f.external_data.push_back(parse_string_pair(m, p));
          break;
        }
        case 14: f.data_location = read_int(r, t, "TensorProto.data_location"); break;
        default: r.skip(t);
      }
    }
    return f;
  }

  graph::initializer parse_initializer(std::string_view b, const onnx_path& path) {
    tensor_fields f = read_tensor_fields(b, path);
    graph::initializer init;
    init.name = std::move(f.name);
    init.doc_string = std::move(f.doc_string);
    init.value = build_tensor(f, path, init.external);
    return init;
  }

  graph::tensor build_tensor(tensor_fields& f, const onnx_path& path, std::optional<graph::initializer::external_ref>& ext) {
    using graph::dtype;
    const std::string where = path.str();
    const int code = f.data_type;
    AMCTQ_CHECK(code == 0 || known_dtype(code), errc::parse, where, "TensorProto.data_type ", code,
                " is not an ONNX data type");
    const auto type = static_cast<dtype>(code);
    // Element count, guarding against dims whose product overflows.
    std::uint64_t count = 1;
    for (std::size_t i = 0; i < f.dims.size(); ++i) {
      const std::int64_t d = f.dims[i];
      AMCTQ_CHECK(d >= 0, errc::parse, where, "TensorProto.dims[", i, "] is negative (", d, ")");
      AMCTQ_CHECK(d == 0 || count <= (std::uint64_t{1} << 58) / static_cast<std::uint64_t>(d), errc::parse, where,
                  "TensorProto.dims ", format_dims(f.dims), " hold more elements than memory can");
      count *= static_cast<std::uint64_t>(d);
    }
    const std::string desc = "dims " + format_dims(f.dims) + " of " + graph::to_string(type);

    if (type == dtype::string) {
      AMCTQ_CHECK(!f.has_raw && f.data_location == 0, errc::parse, where,
                  "string tensors carry their data in TensorProto.string_data only");
      AMCTQ_CHECK(f.strings.size() == count, errc::parse, where, "TensorProto.string_data holds ", f.strings.size(),
                  " strings, ", desc, " needs ", count);
      return graph::tensor(std::move(f.dims), std::move(f.strings));
    }
    const std::uint64_t es = graph::element_size(type);
    const std::uint64_t need = graph::is_packed_4bit(type) ? (count + 1) / 2 : count * es;
    auto make = [&](std::vector<std::byte> bytes) { return graph::tensor(type, std::move(f.dims), std::move(bytes)); };

    if (f.data_location == 1) {
      AMCTQ_CHECK(type != dtype::undefined, errc::parse, where, "external TensorProto has no data_type");
      ext = resolve_external(f, where);
      std::vector<std::byte> bytes = read_external(*ext, need, desc, where);
      return make(std::move(bytes));
    }
    AMCTQ_CHECK(f.data_location == 0, errc::parse, where, "TensorProto.data_location ", f.data_location,
                " is neither DEFAULT (0) nor EXTERNAL (1)");
    if (type == dtype::undefined) {
      AMCTQ_CHECK(!f.has_raw && f.floats.empty() && f.int32s.empty() && f.int64s.empty() && f.doubles.empty() &&
                      f.uint64s.empty() && f.strings.empty(),
                  errc::parse, where, "TensorProto has data but no data_type");
      return graph::tensor();
    }
    if (f.has_raw) {
      AMCTQ_CHECK(f.raw.size() == need, errc::parse, where, "TensorProto.raw_data length ", f.raw.size(),
                  " does not match ", desc, " (", need, " bytes)");
      const auto* p = reinterpret_cast<const std::byte*>(f.raw.data());
      return make(copy_bytes(p, f.raw.size()));
    }

    // Typed fields. Which one carries which type follows onnx.proto's comments on each field.
    // The storage is allocated only once the value count has matched the dims, so hostile dims
    // cannot trigger a huge allocation.
    std::vector<std::byte> bytes;
    auto count_check = [&](std::size_t have, std::uint64_t want, const char* field) {
      AMCTQ_CHECK(have == want, errc::parse, where, "TensorProto.", field, " holds ", have, " values, ", desc,
                  " needs ", want);
      bytes.resize(static_cast<std::size_t>(need));
    };
    auto only = [&](const char* field, std::size_t own) {
      const std::size_t total = f.floats.size() + f.int32s.size() + f.int64s.size() + f.doubles.size() +
                                f.uint64s.size() + f.strings.size();
      AMCTQ_CHECK(total == own, errc::parse, where, "TensorProto of ", graph::to_string(type),
                  " has values in a field other than ", field);
    };
    auto narrow = [&](auto* out, std::int64_t lo, std::int64_t hi) {
      for (std::size_t i = 0; i < f.int32s.size(); ++i) {
        // int32_data is a 32-bit field: accept its sign-extended 64-bit varint form too.
        std::int64_t v = static_cast<std::int32_t>(f.int32s[i]);
        if (lo >= 0) v = static_cast<std::int64_t>(static_cast<std::uint32_t>(f.int32s[i]));
        AMCTQ_CHECK(v >= lo && v <= hi, errc::parse, where, "TensorProto.int32_data[", i, "] = ", v,
                    " is out of range for ", graph::to_string(type));
        out[i] = static_cast<std::remove_pointer_t<decltype(out)>>(v);
      }
    };
    switch (type) {
      case dtype::float32:
        only("float_data", f.floats.size());
        count_check(f.floats.size(), count, "float_data");
        if (need) std::memcpy(bytes.data(), f.floats.data(), need);
        break;
      case dtype::complex64:
        only("float_data", f.floats.size());
        count_check(f.floats.size(), count * 2, "float_data");
        if (need) std::memcpy(bytes.data(), f.floats.data(), need);
        break;
      case dtype::float64:
        only("double_data", f.doubles.size());
        count_check(f.doubles.size(), count, "double_data");
        if (need) std::memcpy(bytes.data(), f.doubles.data(), need);
        break;
      case dtype::complex128:
        only("double_data", f.doubles.size());
        count_check(f.doubles.size(), count * 2, "double_data");
        if (need) std::memcpy(bytes.data(), f.doubles.data(), need);
        break;
      case dtype::int64:
        only("int64_data", f.int64s.size());
        count_check(f.int64s.size(), count, "int64_data");
        if (need) std::memcpy(bytes.data(), f.int64s.data(), need);
        break;
      case dtype::uint32: {
        only("uint64_data", f.uint64s.size());
        count_check(f.uint64s.size(), count, "uint64_data");
        auto* out = reinterpret_cast<std::uint32_t*>(bytes.data());
        for (std::size_t i = 0; i < f.uint64s.size(); ++i) {
          AMCTQ_CHECK(f.uint64s[i] <= 0xffffffffu, errc::parse, where, "TensorProto.uint64_data[", i,
                      "] is out of range for uint32");
          out[i] = static_cast<std::uint32_t>(f.uint64s[i]);
        }
        break;
      }
      case dtype::uint64:
        only("uint64_data", f.uint64s.size());
        count_check(f.uint64s.size(), count, "uint64_data");
        if (need) std::memcpy(bytes.data(), f.uint64s.data(), need);
        break;
      case dtype::int32:
        only("int32_data", f.int32s.size());
        count_check(f.int32s.size(), count, "int32_data");
        narrow(reinterpret_cast<std::int32_t*>(bytes.data()), std::numeric_limits<std::int32_t>::min(),
               std::numeric_limits<std::int32_t>::max());
        break;
      case dtype::int8:
        only("int32_data", f.int32s.size());
        count_check(f.int32s.size(), count, "int32_data");
        narrow(reinterpret_cast<std::int8_t*>(bytes.data()), -128, 127);
        break;
      case dtype::int16:
        only("int32_data", f.int32s.size());
        count_check(f.int32s.size(), count, "int32_data");
        narrow(reinterpret_cast<std::int16_t*>(bytes.data()), -32768, 32767);
        break;
      case dtype::uint16: case dtype::float16: case dtype::bfloat16:
        // 16-bit floats travel as their bit patterns.
        only("int32_data", f.int32s.size());
        count_check(f.int32s.size(), count, "int32_data");
        narrow(reinterpret_cast<std::uint16_t*>(bytes.data()), 0, 0xffff);
        break;
      case dtype::uint8: case dtype::boolean: case dtype::float8e4m3fn: case dtype::float8e4m3fnuz:
      case dtype::float8e5m2: case dtype::float8e5m2fnuz:
        only("int32_data", f.int32s.size());
        count_check(f.int32s.size(), count, "int32_data");
        narrow(reinterpret_cast<std::uint8_t*>(bytes.data()), 0, type == dtype::boolean ? 1 : 0xff);
        break;
      case dtype::int4: case dtype::uint4: case dtype::float4e2m1:
        // Two 4-bit values per int32_data entry, first in the low nibble: one storage byte each.
        only("int32_data", f.int32s.size());
        count_check(f.int32s.size(), need, "int32_data");
        narrow(reinterpret_cast<std::uint8_t*>(bytes.data()), 0, 0xff);
        break;
      default:
        AMCTQ_THROW(errc::unsupported, where, "TensorProto of ", graph::to_string(type), " is not supported");
    }
    return make(std::move(bytes));
  }

  static bool parse_decimal(const std::string& s, std::int64_t& out) {
    if (s.empty() || s.size() > 18) return false;
    std::int64_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    out = v;
    return true;
  }

  graph::initializer::external_ref resolve_external(const tensor_fields& f, const std::string& where) {
    graph::initializer::external_ref ref;
    bool has_location = false;
    for (const auto& [k, v] : f.external_data) {
      if (k == "location") {
        ref.location = v;
        has_location = true;
      } else if (k == "offset") {
        AMCTQ_CHECK(parse_decimal(v, ref.offset), errc::parse, where, "external_data offset '", clip(v),
                    "' is not a non-negative integer");
      } else if (k == "length") {
        AMCTQ_CHECK(parse_decimal(v, ref.length), errc::parse, where, "external_data length '", clip(v),
                    "' is not a non-negative integer");
      }
      // "checksum" and unknown keys are informational.
    }
    AMCTQ_CHECK(has_location && !ref.location.empty(), errc::parse, where, "external tensor has no location");
    check_relative_path(ref.location, where);
    return ref;
  }

 public:
  /// Rejects locations that could leave the model's folder: absolute paths, '..' components,
  /// NUL bytes.
  static void check_relative_path(const std::string& loc, const std::string& where) {
    AMCTQ_CHECK(!loc.empty(), errc::io, where, "external data location is empty");
    AMCTQ_CHECK(loc.find('\0') == std::string::npos, errc::io, where, "external data location contains a NUL byte");
    AMCTQ_CHECK(loc.front() != '/' && loc.front() != '\\' && !(loc.size() > 1 && loc[1] == ':'), errc::io, where,
                "external data location '", clip(loc), "' is absolute; it must be relative to the model's folder");
    std::size_t i = 0;
    while (i <= loc.size()) {
      const std::size_t j = loc.find_first_of("/\\", i);
      const std::size_t e = j == std::string::npos ? loc.size() : j;
      AMCTQ_CHECK(loc.compare(i, e - i, "..") != 0 || e - i != 2, errc::io, where, "external data location '", clip(loc),
                  "' escapes the model's folder");
      if (j == std::string::npos) break;
      i = j + 1;
    }
  }

 private:
  std::vector<std::byte> read_external(const graph::initializer::external_ref& ref, std::uint64_t need,
                                       const std::string& desc, const std::string& where) {
    AMCTQ_CHECK(!base_dir_.empty(), errc::io, where, "tensor data is in external file '", clip(ref.location),
                "' but the model's folder is unknown (parse from memory): use read_onnx");
    const std::string full = resolve_inside(ref.location, where);
    auto it = files_.find(full);
    // Not populated, and each tensor's pages released once copied: the mapped pages count toward
    // the process's resident memory, and a model's external data would otherwise be held twice
    // until parsing ends.
    if (it == files_.end()) it = files_.emplace(full, mapped_file(full, /*populate=*/false)).first;
    const mapped_file& file = it->second;
    const std::uint64_t size = file.size();
    AMCTQ_CHECK(static_cast<std::uint64_t>(ref.offset) <= size, errc::io, where, "external data offset ", ref.offset,
                " is past the end of '", clip(ref.location), "' (", size, " bytes)");
    const std::uint64_t avail = size - static_cast<std::uint64_t>(ref.offset);
    const std::uint64_t len = ref.length < 0 ? avail : static_cast<std::uint64_t>(ref.length);
    AMCTQ_CHECK(len <= avail, errc::io, where, "external data offset ", ref.offset, " + length ", len,
                " is past the end of '", clip(ref.location), "' (", size, " bytes)");
    AMCTQ_CHECK(len == need, errc::parse, where, "external data length ", len, " does not match ", desc, " (", need,
                " bytes)");
    std::vector<std::byte> bytes = copy_bytes(file.data() + ref.offset, static_cast<std::size_t>(len));
    file.release(static_cast<std::size_t>(ref.offset), bytes.size());
    return bytes;
  }

  /// The canonical path of `location` under the model's folder: refused when it resolves
  /// outside that folder (through a symbolic link to a file or to a folder; the text of the
  /// location was checked already) or is not a regular file (a FIFO, a device, a folder).
  std::string resolve_inside(const std::string& location, const std::string& where) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (base_canonical_.empty()) {
      base_canonical_ = fs::canonical(base_dir_, ec);
      AMCTQ_CHECK(!ec, errc::io, where, "cannot resolve the model's folder '", base_dir_, "': ", ec.message());
    }
    const fs::path target = fs::canonical(fs::path(base_dir_) / location, ec);
    AMCTQ_CHECK(!ec, errc::io, where, "cannot open external data '", clip(location), "': ", ec.message());
    auto t = target.begin();
    for (auto b = base_canonical_.begin(); b != base_canonical_.end(); ++b, ++t)
      AMCTQ_CHECK(t != target.end() && *t == *b, errc::io, where, "external data location '", clip(location),
                  "' resolves to '", clip(target.string()), "', outside the model's folder '",
                  clip(base_canonical_.string()), "' (through a symbolic link)");
    const fs::file_status st = fs::status(target, ec);
    AMCTQ_CHECK(!ec && fs::is_regular_file(st), errc::io, where, "external data location '", clip(location),
                "' is not a regular file");
    return target.string();
  }

  std::string base_dir_;
  std::filesystem::path base_canonical_;
  std::map<std::string, mapped_file> files_;
};

inline std::string parent_dir(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace detail

/// Parses ModelProto bytes. External tensors are resolved relative to `base_dir` (the model's
/// folder); with an empty base_dir they are an error.
inline graph::model parse_onnx(const std::byte* data, std::size_t size, const std::string& base_dir = "") {
  detail::onnx_parser p(base_dir);
  return p.parse_model(data, size);
}

/// Reads an .onnx file, with its external-data tensors.
inline graph::model read_onnx(const std::string& path) {
  const detail::mapped_file file(path);
  try {
    return parse_onnx(file.data(), file.size(), detail::parent_dir(path));
  } catch (const error& e) {  // the parser names the field; the user also needs the file
    AMCTQ_THROW(e.code(), "read_onnx", "'", path, "': ", e.body());
  }
}

/// Parses one serialized TensorProto (name in .name, data in .value).
inline graph::initializer parse_onnx_tensor(const std::byte* data, std::size_t size, const std::string& base_dir = "") {
  detail::onnx_parser p(base_dir);
  return p.parse_tensor_proto(data, size);
}

/// Reads a .pb file holding one TensorProto (ONNX test data sets: test_data_set_0/input_0.pb).
inline graph::initializer read_onnx_tensor(const std::string& path) {
  const detail::mapped_file file(path);
  return parse_onnx_tensor(file.data(), file.size(), detail::parent_dir(path));
}

}  // namespace amctq::io

#endif  // AMCTQ_IO_ONNX_READER_HPP
