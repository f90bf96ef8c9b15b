// Helpers for the ONNX reader/writer tests: a deep IR comparison that names the first
// difference, a hand-built protobuf encoder for hostile and typed-field inputs, and where the
// onnx pip package's backend test models live.
#ifndef AMCTQ_TESTS_IO_ONNX_TEST_UTIL_HPP
#define AMCTQ_TESTS_IO_ONNX_TEST_UTIL_HPP

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "amctq/graph/ir.hpp"
#include "amctq/io/protobuf_wire.hpp"

namespace amctq_test {

/// Compares two IRs field by field; returns "" when equal, else the path of the first
/// difference. `ignore_external_offsets`: external refs compare by location only (a writer
/// may lay out a data file differently from the tool that made the original).
struct ir_compare {
  bool ignore_external_offsets = false;

  std::string models(const amctq::graph::model& a, const amctq::graph::model& b) const {
    if (a.ir_version != b.ir_version) return "ir_version";
    if (a.producer_name != b.producer_name) return "producer_name";
    if (a.producer_version != b.producer_version) return "producer_version";
    if (a.domain != b.domain) return "domain";
    if (a.model_version != b.model_version) return "model_version";
    if (a.doc_string != b.doc_string) return "doc_string";
    if (a.metadata_props != b.metadata_props) return "metadata_props";
    if (a.unparsed != b.unparsed) return "unparsed";
    if (a.opset_imports.size() != b.opset_imports.size()) return "opset_import.size";
    for (std::size_t i = 0; i < a.opset_imports.size(); ++i)
      if (a.opset_imports[i].domain != b.opset_imports[i].domain ||
          a.opset_imports[i].version != b.opset_imports[i].version)
        return "opset_import[" + std::to_string(i) + "]";
    return graphs(a.main, b.main, "graph");
  }

  std::string graphs(const amctq::graph::graph& a, const amctq::graph::graph& b, const std::string& at) const {
    if (a.name != b.name) return at + ".name";
    if (a.doc_string != b.doc_string) return at + ".doc_string";
    if (a.unparsed != b.unparsed) return at + ".unparsed";
    if (a.nodes.size() != b.nodes.size()) return at + ".node.size";
    for (std::size_t i = 0; i < a.nodes.size(); ++i) {
      const auto r = nodes(a.nodes[i], b.nodes[i], at + ".node[" + std::to_string(i) + "]");
      if (!r.empty()) return r;
    }
    if (a.initializers.size() != b.initializers.size()) return at + ".initializer.size";
    for (std::size_t i = 0; i < a.initializers.size(); ++i) {
      const auto& x = a.initializers[i];
      const auto& y = b.initializers[i];
      const std::string p = at + ".initializer[" + std::to_string(i) + "]";
      if (x.name != y.name || x.doc_string != y.doc_string) return p + ".name";
      if (x.value != y.value) return p + ".value";
      if (x.external.has_value() != y.external.has_value()) return p + ".external";
      if (x.external && (x.external->location != y.external->location ||
                         (!ignore_external_offsets &&
                          (x.external->offset != y.external->offset || x.external->length != y.external->length))))
        return p + ".external";
    }
    for (auto [va, vb, name] : {std::tuple{&a.inputs, &b.inputs, "input"}, std::tuple{&a.outputs, &b.outputs, "output"},
                                std::tuple{&a.value_infos, &b.value_infos, "value_info"}}) {
      if (va->size() != vb->size()) return at + "." + name + ".size";
      for (std::size_t i = 0; i < va->size(); ++i) {
        const auto& x = (*va)[i];
        const auto& y = (*vb)[i];
        bool same = x.name == y.name && x.elem_type == y.elem_type && x.doc_string == y.doc_string &&
                    x.unparsed == y.unparsed && x.shape.has_value() == y.shape.has_value();
        if (same && x.shape) {
          same = x.shape->size() == y.shape->size();
          for (std::size_t d = 0; same && d < x.shape->size(); ++d)
            same = (*x.shape)[d].value == (*y.shape)[d].value && (*x.shape)[d].param == (*y.shape)[d].param;
        }
        if (!same) return at + "." + name + "[" + std::to_string(i) + "]";
      }
    }
    return "";
  }

  std::string nodes(const amctq::graph::node& a, const amctq::graph::node& b, const std::string& at) const {
    if (a.name != b.name || a.op_type != b.op_type || a.domain != b.domain) return at + ".name/op_type/domain";
    if (a.inputs != b.inputs) return at + ".input";
    if (a.outputs != b.outputs) return at + ".output";
    if (a.doc_string != b.doc_string) return at + ".doc_string";
    if (a.unparsed != b.unparsed) return at + ".unparsed";
    if (a.attributes.size() != b.attributes.size()) return at + ".attribute.size";
    for (std::size_t i = 0; i < a.attributes.size(); ++i) {
      const auto& x = a.attributes[i];
      const auto& y = b.attributes[i];
      const std::string p = at + ".attribute[" + std::to_string(i) + "]";
      if (x.name != y.name || x.type != y.type || x.ref_attr_name != y.ref_attr_name || x.doc_string != y.doc_string ||
          x.unparsed != y.unparsed)
        return p + ".name/type";
      if (std::memcmp(&x.f, &y.f, sizeof x.f) != 0 || x.i != y.i || x.s != y.s || x.t != y.t || x.ints != y.ints ||
          x.strings != y.strings || x.tensors != y.tensors)
        return p + ".value";
      if (x.floats.size() != y.floats.size() ||
          (!x.floats.empty() && std::memcmp(x.floats.data(), y.floats.data(), x.floats.size() * 4) != 0))
        return p + ".floats";
      if ((x.g == nullptr) != (y.g == nullptr)) return p + ".g";
      if (x.g) {
        const auto r = graphs(*x.g, *y.g, p + ".g");
        if (!r.empty()) return r;
      }
      if (x.graphs.size() != y.graphs.size()) return p + ".graphs.size";
      for (std::size_t k = 0; k < x.graphs.size(); ++k) {
        const auto r = graphs(*x.graphs[k], *y.graphs[k], p + ".graphs[" + std::to_string(k) + "]");
        if (!r.empty()) return r;
      }
    }
    return "";
  }
};

/// The onnx pip package's backend test data (light, pytorch-converted, ...): from
/// AMCTQ_ONNX_TEST_DATA, else the repo's .venv (scripts/setup.sh makes it). Empty if absent.
inline std::filesystem::path onnx_backend_data() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("AMCTQ_ONNX_TEST_DATA")) return env;
  const fs::path root = fs::path(__FILE__).parent_path().parent_path().parent_path();
  std::error_code ec;
  for (const auto& lib : fs::directory_iterator(root / ".venv" / "lib", ec)) {
    const fs::path d = lib.path() / "site-packages" / "onnx" / "backend" / "test" / "data";
    if (fs::is_directory(d)) return d;
  }
  return {};
}

inline std::vector<std::string> onnx_backend_models() {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  const fs::path root = onnx_backend_data();
  if (root.empty()) return out;
  for (const char* sub : {"light", "pytorch-converted", "pytorch-operator", "simple", "real", "node"}) {
    std::error_code ec;
    if (!fs::is_directory(root / sub, ec)) continue;
    for (const auto& e : fs::recursive_directory_iterator(root / sub, ec))
      if (e.path().extension() == ".onnx") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// Builds protobuf messages by hand, including malformed ones.
struct pb_builder {
  std::vector<std::byte> bytes;
  amctq::io::pb::vector_sink sink{&bytes};
  amctq::io::pb::writer<amctq::io::pb::vector_sink> w{sink};

  pb_builder() = default;
  // The sink and writer point into this object: copies rebind them.
  pb_builder(const pb_builder& o) : bytes(o.bytes) {}
  pb_builder(pb_builder&& o) noexcept : bytes(std::move(o.bytes)) {}
  pb_builder& operator=(const pb_builder&) = delete;

  pb_builder& varint_field(std::uint32_t f, std::uint64_t v) {
    w.key(f, amctq::io::pb::wire_type::varint);
    w.varint(v);
    return *this;
  }
  pb_builder& bytes_field(std::uint32_t f, const std::string& s) {
    w.string_field(f, s);
    return *this;
  }
  pb_builder& message(std::uint32_t f, const pb_builder& m) {
    w.bytes_field(f, m.bytes.data(), m.bytes.size());
    return *this;
  }
  pb_builder& fixed32_field(std::uint32_t f, float v) {
    w.float_field(f, v);
    return *this;
  }
  pb_builder& raw(std::initializer_list<int> b) {
    for (int x : b) bytes.push_back(static_cast<std::byte>(x));
    return *this;
  }
  std::string str() const { return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()); }
};

inline void write_bytes(const std::filesystem::path& p, const std::vector<std::byte>& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

}  // namespace amctq_test

#endif
