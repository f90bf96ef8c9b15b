// Test helpers: build one-node and small models in C++ without the ONNX reader.
#ifndef AMCTQ_TESTS_GRAPH_BUILDER_HPP
#define AMCTQ_TESTS_GRAPH_BUILDER_HPP

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "amctq/graph/executor.hpp"

namespace amctq::test {

/// Signal-to-quantization-noise ratio in dB of y against the float reference ref.
inline double sqnr_db(const graph::tensor& ref, const graph::tensor& y) {
  double s = 0, e = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double r = ref.data<float>()[i], d = r - y.data<float>()[i];
    s += r * r;
    e += d * d;
  }
  return 10.0 * std::log10(s / std::max(e, 1e-30));
}

/// n floats uniform in [lo, hi) from the test's own generator (each test file seeds its own).
inline std::vector<float> uniform_floats(std::mt19937& rng, std::size_t n, float lo = -1, float hi = 1) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& e : v) e = u(rng);
  return v;
}

inline graph::attribute attr_i(const std::string& n, std::int64_t v) {
  graph::attribute a;
  a.name = n;
  a.type = graph::attribute::kind::i;
  a.i = v;
  return a;
}
inline graph::attribute attr_f(const std::string& n, float v) {
  graph::attribute a;
  a.name = n;
  a.type = graph::attribute::kind::f;
  a.f = v;
  return a;
}
inline graph::attribute attr_s(const std::string& n, const std::string& v) {
  graph::attribute a;
  a.name = n;
  a.type = graph::attribute::kind::s;
  a.s = v;
  return a;
}
inline graph::attribute attr_ints(const std::string& n, std::vector<std::int64_t> v) {
  graph::attribute a;
  a.name = n;
  a.type = graph::attribute::kind::ints;
  a.ints = std::move(v);
  return a;
}
inline graph::attribute attr_t(const std::string& n, graph::tensor t) {
  graph::attribute a;
  a.name = n;
  a.type = graph::attribute::kind::t;
  a.t = std::move(t);
  return a;
}

inline graph::tensor ft(std::vector<std::int64_t> shape, std::vector<float> v) {
  return graph::tensor::from<float>(std::move(shape), v);
}
inline graph::tensor it64(std::vector<std::int64_t> shape, std::vector<std::int64_t> v) {
  return graph::tensor::from<std::int64_t>(std::move(shape), v);
}

inline graph::value_info info(const std::string& name, graph::dtype t) {
  graph::value_info v;
  v.name = name;
  v.elem_type = t;
  return v;
}

inline graph::node make_node(const std::string& name, const std::string& op, std::vector<std::string> in,
                             std::vector<std::string> out, std::vector<graph::attribute> attrs = {}) {
  graph::node n;
  n.name = name;
  n.op_type = op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.attributes = std::move(attrs);
  return n;
}

/// A model whose graph is one node; inputs named in `inputs` are graph inputs unless a constant
/// of that name is given, in which case it becomes an initializer.
struct single_node {
  graph::model m;
  explicit single_node(const std::string& op, std::vector<std::string> inputs, std::vector<graph::attribute> attrs = {},
                       std::int64_t opset = 13, std::vector<std::string> outputs = {"y"}) {
    m.opset_imports.push_back({"", opset});
    graph::node n;
    n.name = "n0";
    n.op_type = op;
    n.inputs = std::move(inputs);
    n.outputs = outputs;
    n.attributes = std::move(attrs);
    m.main.nodes.push_back(n);
    for (const auto& o : outputs)
      if (!o.empty()) m.main.outputs.push_back(info(o, graph::dtype::undefined));
  }
  single_node& constant(const std::string& name, graph::tensor t) {
    graph::initializer i;
    i.name = name;
    i.value = std::move(t);
    m.main.initializers.push_back(std::move(i));
    return *this;
  }
  /// Runs with the given graph inputs (declared on the fly) and returns output 0.
  graph::tensor run(std::map<std::string, graph::tensor> feeds, int intra_op_threads = 1) {
    m.main.inputs.clear();
    for (const auto& f : feeds) m.main.inputs.push_back(info(f.first, f.second.type()));
    graph::executor ex(m);
    ex.set_intra_op_threads(intra_op_threads);
    return ex.run(feeds).at(m.main.outputs[0].name);
  }
};

/// Same shape and the same bytes: for results that must not change by a bit.
inline bool same_bytes(const graph::tensor& a, const graph::tensor& b) {
  return a.shape() == b.shape() && a.bytes() == b.bytes();
}

inline std::vector<float> values(const graph::tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.size());
}

inline void check_close(const graph::tensor& got, const std::vector<std::int64_t>& shape, const std::vector<float>& want,
                        float tol = 1e-5f) {
  REQUIRE(got.shape() == shape);
  REQUIRE(got.size() == want.size());
  const float* g = got.data<float>();
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO("element " << i);
    CHECK(std::abs(g[i] - want[i]) <= tol * std::max(1.0f, std::abs(want[i])));
  }
}

}  // namespace amctq::test

#endif  // AMCTQ_TESTS_GRAPH_BUILDER_HPP
