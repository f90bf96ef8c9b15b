// ONNX writer: graph::model -> ModelProto bytes in the protobuf wire format, and .onnx files
// written atomically, with large initializers optionally moved to an external data file (the
// only way to store a model over protobuf's 2 GB message limit).
#ifndef AMCTQ_IO_ONNX_WRITER_HPP
#define AMCTQ_IO_ONNX_WRITER_HPP

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/tensor.hpp"
#include "amctq/io/atomic_file.hpp"
#include "amctq/io/onnx_reader.hpp"
#include "amctq/io/protobuf_wire.hpp"

namespace amctq::io {

struct onnx_write_options {
  /// Initializers of at least this many bytes go to external data (max(): none by size).
  std::size_t external_threshold = std::numeric_limits<std::size_t>::max();
  /// Every (non-string, non-empty) initializer goes to external data.
  bool all_external = false;
  /// Initializers read from external data (initializer::external set) stay external, in the
  /// file their location names.
  bool keep_external = true;
  /// External data file for initializers moved out by size or all_external, relative to the
  /// model's folder; empty: "<model file name>.data".
  std::string external_file;
  /// Tensors of at least this many bytes start at an offset that is a multiple of it, so
  /// runtimes can map them; smaller ones are aligned to 64 bytes.
  std::size_t page_alignment = 4096;
  /// Keep a SHA-256 of every file staged (staged_onnx::files()), for a save manifest.
  bool hash_files = false;
};

/// Protobuf refuses messages of 2 GB and more.
constexpr std::uint64_t onnx_max_inline_bytes = (std::uint64_t{1} << 31) - 1;

namespace detail {

using external_plan = std::unordered_map<const graph::initializer*, graph::initializer::external_ref>;

template <class W>
void emit_tensor(W& w, const graph::tensor& t, const std::string& name, const std::string& doc,
                 const graph::initializer::external_ref* ext) {
  w.packed_varints(1, t.shape());
  w.int_field(2, static_cast<std::int64_t>(t.type()));
  if (t.type() == graph::dtype::string)
    for (const auto& s : t.strings()) w.string_field(6, s);
  w.string_if(8, name);
  if (ext) {
    w.message(13, [&](auto& e) { e.string_field(1, "location"); e.string_field(2, ext->location); });
    w.message(13, [&](auto& e) { e.string_field(1, "offset"); e.string_field(2, std::to_string(ext->offset)); });
    w.message(13, [&](auto& e) { e.string_field(1, "length"); e.string_field(2, std::to_string(ext->length)); });
    w.int_field(14, 1);
  } else if (t.type() != graph::dtype::string && t.type() != graph::dtype::undefined) {
    w.bytes_field(9, t.bytes().data(), t.bytes().size());
  }
  w.string_if(12, doc);
}

template <class W>
void emit_value_info(W& w, const graph::value_info& v) {
  w.string_field(1, v.name);
  if (v.elem_type != graph::dtype::undefined || v.shape) {
    w.message(2, [&](auto& type) {
      type.message(1, [&](auto& tt) {
        tt.int_field(1, static_cast<std::int64_t>(v.elem_type));
        if (v.shape) {
          tt.message(2, [&](auto& shape) {
            for (const auto& d : *v.shape) {
              shape.message(1, [&](auto& dim) {
                if (d.value) dim.int_field(1, *d.value);
                else dim.string_if(2, d.param);
              });
            }
          });
        }
      });
    });
  }
  w.string_if(3, v.doc_string);
  w.raw(v.unparsed);
}

template <class W>
void emit_graph(W& w, const graph::graph& g, const external_plan& plan);

template <class W>
void emit_attribute(W& w, const graph::attribute& a, const external_plan& plan) {
  using kind = graph::attribute::kind;
  w.string_field(1, a.name);
  switch (a.type) {
    case kind::f: w.float_field(2, a.f); break;
    case kind::i: w.int_field(3, a.i); break;
    case kind::s: w.string_field(4, a.s); break;
    case kind::t: w.message(5, [&](auto& t) { emit_tensor(t, a.t, "", "", nullptr); }); break;
    case kind::g:
      AMCTQ_CHECK(a.g != nullptr, errc::invalid_argument, "write_onnx", "attribute '", a.name,
                  "' is a graph but holds none");
      w.message(6, [&](auto& g) { emit_graph(g, *a.g, plan); });
      break;
    case kind::floats: w.packed_floats(7, a.floats); break;
    case kind::ints: w.packed_varints(8, a.ints); break;
    case kind::strings:
      for (const auto& s : a.strings) w.string_field(9, s);
      break;
    case kind::tensors:
      for (const auto& t : a.tensors) w.message(10, [&](auto& m) { emit_tensor(m, t, "", "", nullptr); });
      break;
    case kind::graphs:
      for (const auto& sub : a.graphs) {
        AMCTQ_CHECK(sub != nullptr, errc::invalid_argument, "write_onnx", "attribute '", a.name, "' holds a null graph");
        w.message(11, [&](auto& m) { emit_graph(m, *sub, plan); });
      }
      break;
    default: break;  // sparse and type-proto kinds live in `unparsed`
  }
  w.string_if(13, a.doc_string);
  if (a.type != kind::undefined) w.int_field(20, static_cast<std::int64_t>(a.type));
  w.string_if(21, a.ref_attr_name);
  w.raw(a.unparsed);
}

template <class W>
void emit_node(W& w, const graph::node& n, const external_plan& plan) {
  for (const auto& s : n.inputs) w.string_field(1, s);
  for (const auto& s : n.outputs) w.string_field(2, s);
  w.string_if(3, n.name);
  w.string_field(4, n.op_type);
  for (const auto& a : n.attributes) w.message(5, [&](auto& m) { emit_attribute(m, a, plan); });
  w.string_if(6, n.doc_string);
  w.string_if(7, n.domain);
  w.raw(n.unparsed);
}

template <class W>
void emit_graph(W& w, const graph::graph& g, const external_plan& plan) {
  for (const auto& n : g.nodes) w.message(1, [&](auto& m) { emit_node(m, n, plan); });
  w.string_if(2, g.name);
  for (const auto& init : g.initializers) {
    const auto it = plan.find(&init);
    const graph::initializer::external_ref* ext = it == plan.end() ? nullptr : &it->second;
    w.message(5, [&](auto& m) { emit_tensor(m, init.value, init.name, init.doc_string, ext); });
  }
  w.string_if(10, g.doc_string);
  for (const auto& v : g.inputs) w.message(11, [&](auto& m) { emit_value_info(m, v); });
  for (const auto& v : g.outputs) w.message(12, [&](auto& m) { emit_value_info(m, v); });
  for (const auto& v : g.value_infos) w.message(13, [&](auto& m) { emit_value_info(m, v); });
  w.raw(g.unparsed);
}

template <class W>
void emit_model(W& w, const graph::model& m, const external_plan& plan) {
  w.int_field(1, m.ir_version);
  w.string_if(2, m.producer_name);
  w.string_if(3, m.producer_version);
  w.string_if(4, m.domain);
  if (m.model_version != 0) w.int_field(5, m.model_version);
  w.string_if(6, m.doc_string);
  w.message(7, [&](auto& g) { emit_graph(g, m.main, plan); });
  for (const auto& o : m.opset_imports)
    w.message(8, [&](auto& e) {
      e.string_if(1, o.domain);
      e.int_field(2, o.version);
    });
  for (const auto& kv : m.metadata_props)  // (clang 14 cannot capture structured bindings)
    w.message(14, [&](auto& e) {
      e.string_field(1, kv.first);
      e.string_field(2, kv.second);
    });
  w.raw(m.unparsed);
}

inline std::uint64_t serialized_size(const graph::model& m, const external_plan& plan) {
  pb::counting_sink c;
  pb::writer<pb::counting_sink> w(c);
  emit_model(w, m, plan);
  return c.size;
}

/// Every initializer of `g` and its subgraphs, in file order.
inline void collect_initializers(const graph::graph& g, std::vector<const graph::initializer*>& out, int depth = 0) {
  AMCTQ_CHECK(depth <= onnx_max_graph_depth, errc::invalid_argument, "write_onnx", "subgraphs nested deeper than ",
              onnx_max_graph_depth);
  for (const auto& i : g.initializers) out.push_back(&i);
  for (const auto& n : g.nodes)
    for (const auto& a : n.attributes) {
      if (a.g) collect_initializers(*a.g, out, depth + 1);
      for (const auto& sub : a.graphs)
        if (sub) collect_initializers(*sub, out, depth + 1);
    }
}

inline std::string file_name(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// Chooses which initializers go external and where: one file per location, tensors laid
/// out in file order at aligned offsets.
inline external_plan plan_external(const graph::model& m, const std::string& model_path, const onnx_write_options& opt,
                                   std::size_t threshold) {
  std::vector<const graph::initializer*> inits;
  collect_initializers(m.main, inits);
  const std::string default_file = opt.external_file.empty() ? file_name(model_path) + ".data" : opt.external_file;
  std::map<std::string, std::uint64_t> ends;
  external_plan plan;
  for (const graph::initializer* init : inits) {
    const graph::tensor& t = init->value;
    const std::size_t n = t.bytes().size();
    if (t.type() == graph::dtype::string || t.type() == graph::dtype::undefined || n == 0) continue;
    std::string location;
    if (opt.keep_external && init->external) location = init->external->location;
    else if (opt.all_external || n >= threshold) location = default_file;
    else continue;
    onnx_parser::check_relative_path(location, "write_onnx: initializer '" + init->name + "'");
    std::uint64_t& end = ends[location];
    const std::uint64_t align = n >= opt.page_alignment ? opt.page_alignment : 64;
    const std::uint64_t offset = (end + align - 1) / align * align;
    plan.emplace(init, graph::initializer::external_ref{location, static_cast<std::int64_t>(offset),
                                                         static_cast<std::int64_t>(n)});
    end = offset + n;
  }
  return plan;
}

/// What no reader accepts is never written: two nodes or two initializers of the main graph
/// sharing a name (ONNX Runtime refuses the file).
inline void check_writable(const graph::model& m, const char* where) {
  check_unique_names(m.main, errc::invalid_argument, where);
}

}  // namespace detail

/// The model as one in-memory ModelProto; every tensor inline (external refs are ignored).
inline std::vector<std::byte> serialize_onnx(const graph::model& m) {
  detail::check_writable(m, "serialize_onnx");
  const detail::external_plan none;
  const std::uint64_t size = detail::serialized_size(m, none);
  AMCTQ_CHECK(size <= onnx_max_inline_bytes, errc::unsupported, "serialize_onnx", "model is ", size,
              " bytes, over protobuf's 2 GB limit: save it with write_onnx, which moves tensors to external data");
  std::vector<std::byte> out;
  out.reserve(static_cast<std::size_t>(size));
  pb::vector_sink sink{&out};
  pb::writer<pb::vector_sink> w(sink);
  detail::emit_model(w, m, none);
  return out;
}

/// A model written to temp files (the model and its external data files), renamed into place
/// by commit(); dropped uncommitted, it leaves nothing behind. Lets a caller write several
/// files and rename them only once all of them are complete (io/save_model.hpp).
class staged_onnx {
 public:
  void prepare() {
    for (auto& f : data_files_) f->prepare();
    model_file_->prepare();
  }
  void commit() {
    for (auto& f : data_files_) f->commit();
    model_file_->commit();
  }
  /// The files staged: external data files first, the model last.
  std::vector<atomic_file*> files() {
    std::vector<atomic_file*> out;
    for (auto& f : data_files_) out.push_back(f.get());
    out.push_back(model_file_.get());
    return out;
  }

 private:
  friend staged_onnx stage_onnx(const graph::model&, const std::string&, const onnx_write_options&);
  std::vector<std::unique_ptr<atomic_file>> data_files_;
  std::unique_ptr<atomic_file> model_file_;
};

/// Serialises `m` for `path` (and its external data files next to it) into temp files. A
/// model that would exceed 2 GB inline gets its initializers of 1 KiB and more moved to
/// external data automatically.
inline staged_onnx stage_onnx(const graph::model& m, const std::string& path, const onnx_write_options& opt = {}) {
  detail::check_writable(m, "write_onnx");
  detail::external_plan plan = detail::plan_external(m, path, opt, opt.external_threshold);
  if (detail::serialized_size(m, plan) > onnx_max_inline_bytes) {
    plan = detail::plan_external(m, path, opt, std::min<std::size_t>(opt.external_threshold, 1024));
    const std::uint64_t size = detail::serialized_size(m, plan);
    AMCTQ_CHECK(size <= onnx_max_inline_bytes, errc::unsupported, "write_onnx", "model is ", size,
                " bytes even with its tensors in external data, over protobuf's 2 GB limit");
  }
  // Group the external tensors by file, in offset order.
  std::map<std::string, std::vector<std::pair<std::int64_t, const graph::initializer*>>> files;
  for (const auto& [init, ref] : plan) files[ref.location].emplace_back(ref.offset, init);

  staged_onnx staged;
  const std::string dir = detail::parent_dir(path);
  for (auto& [location, entries] : files) {
    std::sort(entries.begin(), entries.end());
    auto f = std::make_unique<atomic_file>(dir + "/" + location);
    if (opt.hash_files) f->hash_contents();
    static const char zeros[4096] = {};
    std::uint64_t at = 0;
    for (const auto& [offset, init] : entries) {
      for (std::uint64_t pad = static_cast<std::uint64_t>(offset) - at; pad > 0;) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(pad, sizeof zeros));
        f->write(zeros, n);
        pad -= n;
      }
      const auto& bytes = init->value.bytes();
      f->write(bytes.data(), bytes.size());
      at = static_cast<std::uint64_t>(offset) + bytes.size();
    }
    staged.data_files_.push_back(std::move(f));
  }
  staged.model_file_ = std::make_unique<atomic_file>(path);
  if (opt.hash_files) staged.model_file_->hash_contents();
  pb::writer<atomic_file> w(*staged.model_file_);
  detail::emit_model(w, m, plan);
  return staged;
}

/// Writes `m` to `path` (and its external data files next to it), each atomically; nothing is
/// renamed into place until every file is complete.
inline void write_onnx(const graph::model& m, const std::string& path, const onnx_write_options& opt = {}) {
  stage_onnx(m, path, opt).commit();
}

}  // namespace amctq::io

#endif  // AMCTQ_IO_ONNX_WRITER_HPP
