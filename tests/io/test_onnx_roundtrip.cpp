// ONNX reader/writer round trips: every model shipped in the onnx pip package's backend test
// data, a hand-built model that uses every attribute kind and IR field, typed TensorProto
// fields (packed and unpacked), external data, and atomic saves.
#include <doctest/doctest.h>

#include <cmath>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "amctq/io/onnx.hpp"
#include "io/onnx_test_util.hpp"

namespace test_onnx_roundtrip {

namespace fs = std::filesystem;
using namespace amctq;
using amctq_test::pb_builder;

namespace {

fs::path scratch_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("amctq_onnx_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

graph::value_info tensor_value(const std::string& name, graph::dtype t, std::vector<graph::dimension> dims) {
  graph::value_info v;
  v.name = name;
  v.elem_type = t;
  v.shape = std::move(dims);
  return v;
}

graph::graph small_graph(const std::string& name, int depth) {
  graph::graph g;
  g.name = name;
  g.doc_string = "subgraph at depth " + std::to_string(depth);
  graph::node n;
  n.op_type = "Identity";
  n.inputs = {"x"};
  n.outputs = {name + "_out"};
  g.nodes.push_back(n);
  g.outputs.push_back(tensor_value(name + "_out", graph::dtype::float32, {{3, ""}}));
  graph::initializer init;
  init.name = name + "_w";
  init.value = graph::tensor::from<float>({3}, {1.0f, -2.0f, 3.5f});
  g.initializers.push_back(init);
  return g;
}

/// A model that touches every IR member the writer emits.
graph::model everything_model() {
  using kind = graph::attribute::kind;
  graph::model m;
  m.ir_version = 9;
  m.producer_name = "amctq-test";
  m.producer_version = "0.1";
  m.domain = "ai.amctq.test";
  m.model_version = 7;
  m.doc_string = "doc with \0 byte";
  m.opset_imports = {{"", 17}, {"com.microsoft", 1}};
  m.metadata_props = {{"author", "me"}, {"empty", ""}};
  // An unknown ModelProto field (number 99, bytes) that must survive untouched.
  pb_builder unknown;
  unknown.bytes_field(99, "future field");
  m.unparsed = unknown.str();

  graph::graph& g = m.main;
  g.name = "main";
  g.doc_string = "the main graph";
  g.inputs.push_back(tensor_value("x", graph::dtype::float32, {{std::nullopt, "batch"}, {3, ""}, {std::nullopt, ""}}));
  graph::value_info unranked;
  unranked.name = "u";
  unranked.elem_type = graph::dtype::int64;
  g.inputs.push_back(unranked);
  g.outputs.push_back(tensor_value("y", graph::dtype::float16, {}));
  // A sequence-typed value kept raw: TypeProto{sequence_type(4){elem_type{tensor_type{elem_type 1}}}}.
  graph::value_info seq;
  seq.name = "seq";
  {
    pb_builder tt, tensor_type, elem, seq_type, type, field;
    tt.varint_field(1, 1);
    elem.message(1, tt);
    seq_type.message(1, elem);
    type.message(4, seq_type);
    field.message(2, type);
    seq.unparsed = field.str();
  }
  g.value_infos.push_back(seq);

  graph::node n;
  n.name = "all_attrs";
  n.op_type = "Custom";
  n.domain = "com.microsoft";
  n.inputs = {"x", "", "w_int4"};
  n.outputs = {"y"};
  n.doc_string = "node doc";
  auto add = [&](const char* name, kind k) -> graph::attribute& {
    graph::attribute a;
    a.name = name;
    a.type = k;
    n.attributes.push_back(a);
    return n.attributes.back();
  };
  add("f", kind::f).f = -0.0f;
  add("f2", kind::f).f = 1.5e-30f;
  add("i", kind::i).i = -123456789012345;
  add("i0", kind::i).i = 0;
  add("s", kind::s).s = std::string("bytes\0\xff", 7);
  add("t", kind::t).t = graph::tensor::from<std::int64_t>({2, 2}, {1, -2, 3, -4});
  add("g", kind::g).g = std::make_shared<graph::graph>(small_graph("then", 1));
  add("floats", kind::floats).floats = {0.5f, -1.0f, 3e38f};
  add("ints", kind::ints).ints = {-1, 0, 1, INT64_MAX, INT64_MIN};
  add("strings", kind::strings).strings = {"a", "", "ccc"};
  add("tensors", kind::tensors).tensors = {graph::tensor::from<double>({1}, {2.5}),
                                           graph::tensor({2}, std::vector<std::string>{"x", "yz"})};
  {
    auto& a = add("graphs", kind::graphs);
    a.graphs.push_back(std::make_shared<graph::graph>(small_graph("body0", 1)));
    auto nested = std::make_shared<graph::graph>(small_graph("body1", 1));
    graph::node inner;
    inner.op_type = "If";
    inner.inputs = {"c"};
    inner.outputs = {"o"};
    graph::attribute ga;
    ga.name = "then_branch";
    ga.type = kind::g;
    ga.g = std::make_shared<graph::graph>(small_graph("deep", 2));
    inner.attributes.push_back(ga);
    nested->nodes.push_back(inner);
    a.graphs.push_back(nested);
  }
  add("empty_ints", kind::ints);
  add("ref", kind::f).ref_attr_name = "outer_alpha";
  {
    // A sparse tensor attribute is kept raw.
    graph::attribute& a = add("sparse", kind::sparse_tensor);
    pb_builder sparse, field;
    sparse.varint_field(3, 4);
    field.message(22, sparse);
    a.unparsed = field.str();
  }
  pb_builder node_unknown;
  node_unknown.bytes_field(8, "overload");
  n.unparsed = node_unknown.str();
  g.nodes.push_back(n);

  graph::initializer w4;
  w4.name = "w_int4";
  w4.value = graph::tensor(graph::dtype::int4, {3}, {std::byte{0x21}, std::byte{0x0f}});
  w4.doc_string = "packed int4";
  g.initializers.push_back(w4);
  graph::initializer h;
  h.name = "half";
  h.value = graph::tensor(graph::dtype::float16, {2}, {std::byte{0x00}, std::byte{0x3c}, std::byte{0x00}, std::byte{0xc0}});
  g.initializers.push_back(h);
  graph::initializer s;
  s.name = "labels";
  s.value = graph::tensor({3}, std::vector<std::string>{"cat", "", "dog"});
  g.initializers.push_back(s);
  graph::initializer scalar;
  scalar.name = "scalar";
  scalar.value = graph::tensor::from<std::int32_t>({}, {42});
  g.initializers.push_back(scalar);
  graph::initializer empty;
  empty.name = "empty";
  empty.value = graph::tensor(graph::dtype::float32, {0, 4});
  g.initializers.push_back(empty);
  graph::initializer big;
  big.name = "big";
  std::vector<float> vals(5000);
  for (std::size_t i = 0; i < vals.size(); ++i) vals[i] = static_cast<float>(i) * 0.25f - 7.0f;
  big.value = graph::tensor::from<float>({50, 100}, vals);
  g.initializers.push_back(big);
  pb_builder graph_unknown;
  graph_unknown.bytes_field(14, "quantization annotation");
  g.unparsed = graph_unknown.str();
  return m;
}

}  // namespace

TEST_CASE("onnx: every backend test model reads, writes and reads back to the same IR") {
  const auto models = amctq_test::onnx_backend_models();
  REQUIRE_MESSAGE(models.size() >= 100, "onnx backend test data not found (run scripts/setup.sh or set "
                                        "AMCTQ_ONNX_TEST_DATA); found ", models.size(), " models");
  const fs::path dir = scratch_dir("backend");
  std::size_t with_initializers = 0;
  for (const auto& path : models) {
    CAPTURE(path);
    const graph::model a = io::read_onnx(path);
    CHECK(!a.main.nodes.empty());
    with_initializers += !a.main.initializers.empty();
    const auto bytes = io::serialize_onnx(a);
    const graph::model b = io::parse_onnx(bytes.data(), bytes.size());
    CHECK(amctq_test::ir_compare{}.models(a, b) == "");
    io::write_onnx(a, (dir / "m.onnx").string());
    const graph::model c = io::read_onnx((dir / "m.onnx").string());
    CHECK(amctq_test::ir_compare{}.models(a, c) == "");
    // The writer is deterministic: the same IR gives the same bytes.
    CHECK(io::serialize_onnx(c) == bytes);
  }
  CHECK(with_initializers > 50);
  fs::remove_all(dir);
}

TEST_CASE("onnx: a model using every attribute kind and IR field round-trips") {
  const graph::model m = everything_model();
  const auto bytes = io::serialize_onnx(m);
  const graph::model r = io::parse_onnx(bytes.data(), bytes.size());
  CHECK(amctq_test::ir_compare{}.models(m, r) == "");
  // Spot checks that the comparison itself looks at values.
  const auto& n = r.main.nodes.at(0);
  CHECK(n.find("i")->i == -123456789012345);
  CHECK(std::signbit(n.find("f")->f));
  CHECK(n.find("s")->s.size() == 7);
  CHECK(n.find("graphs")->graphs.at(1)->nodes.at(1).find("then_branch")->g->name == "deep");
  CHECK(n.find("sparse")->type == graph::attribute::kind::sparse_tensor);
  CHECK(r.main.find_initializer("labels")->value.strings() == std::vector<std::string>{"cat", "", "dog"});
  CHECK(r.main.inputs.at(0).shape->at(0).param == "batch");
  CHECK(!r.main.inputs.at(1).shape.has_value());
  CHECK(r.main.value_infos.at(0).elem_type == graph::dtype::undefined);
  CHECK(r.opset() == 17);
  CHECK(r.unparsed == m.unparsed);
  graph::model changed = r;
  changed.main.nodes[0].attributes[3].i = 1;
  CHECK(amctq_test::ir_compare{}.models(m, changed) != "");
}

TEST_CASE("onnx: typed TensorProto fields, packed and unpacked, become dense bytes") {
  auto tensor_proto = [](int dtype, std::vector<std::int64_t> dims, auto fill) {
    pb_builder t;
    for (auto d : dims) t.varint_field(1, static_cast<std::uint64_t>(d));  // unpacked dims
    t.varint_field(2, static_cast<std::uint64_t>(dtype));
    t.bytes_field(8, "t");
    fill(t);
    return io::parse_onnx_tensor(t.bytes.data(), t.bytes.size());
  };
  SUBCASE("float_data unpacked") {
    auto r = tensor_proto(1, {3}, [](pb_builder& t) {
      for (float f : {1.0f, -2.5f, 1e-3f}) t.fixed32_field(4, f);
    });
    CHECK(r.name == "t");
    CHECK(r.value.data<float>()[1] == -2.5f);
  }
  SUBCASE("float_data packed, split over two runs") {
    auto r = tensor_proto(1, {2, 2}, [](pb_builder& t) {
      t.w.packed_floats(4, {1.0f, 2.0f});
      t.w.packed_floats(4, {3.0f, 4.0f});
    });
    CHECK(r.value.data<float>()[3] == 4.0f);
  }
  SUBCASE("int32_data for int8, uint8, bool, float16, int32 (negative values as 10-byte varints)") {
    auto i8 = tensor_proto(3, {3}, [](pb_builder& t) { t.w.packed_varints(5, {-128, 0, 127}); });
    CHECK(i8.value.data<std::int8_t>()[0] == -128);
    CHECK(i8.value.data<std::int8_t>()[2] == 127);
    auto u8 = tensor_proto(2, {2}, [](pb_builder& t) { t.varint_field(5, 255).varint_field(5, 7); });
    CHECK(u8.value.data<std::uint8_t>()[0] == 255);
    auto b = tensor_proto(9, {2}, [](pb_builder& t) { t.w.packed_varints(5, {1, 0}); });
    CHECK(b.value.data<bool>()[0]);
    auto h = tensor_proto(10, {1}, [](pb_builder& t) { t.varint_field(5, 0x3c00); });
    CHECK(std::to_integer<int>(h.value.bytes()[1]) == 0x3c);
    auto i32 = tensor_proto(6, {2}, [](pb_builder& t) { t.w.packed_varints(5, {-5, 2147483647}); });
    CHECK(i32.value.data<std::int32_t>()[0] == -5);
    auto i4 = tensor_proto(22, {3}, [](pb_builder& t) { t.w.packed_varints(5, {0x21, 0x0f}); });
    CHECK(i4.value.bytes().size() == 2);
    CHECK(std::to_integer<int>(i4.value.bytes()[0]) == 0x21);
  }
  SUBCASE("int64_data, double_data, uint64_data, string_data") {
    auto i64 = tensor_proto(7, {2}, [](pb_builder& t) { t.varint_field(7, static_cast<std::uint64_t>(-9)).varint_field(7, 1); });
    CHECK(i64.value.data<std::int64_t>()[0] == -9);
    auto f64 = tensor_proto(11, {1}, [](pb_builder& t) {
      t.w.key(10, io::pb::wire_type::fixed64);
      double d = 0.125;
      std::uint64_t bits;
      std::memcpy(&bits, &d, 8);
      t.w.fixed64(bits);
    });
    CHECK(f64.value.data<double>()[0] == 0.125);
    auto u64 = tensor_proto(13, {1}, [](pb_builder& t) { t.varint_field(11, UINT64_MAX); });
    CHECK(u64.value.data<std::uint64_t>()[0] == UINT64_MAX);
    auto u32 = tensor_proto(12, {1}, [](pb_builder& t) { t.varint_field(11, 4000000000u); });
    CHECK(u32.value.bytes().size() == 4);
    auto s = tensor_proto(8, {2}, [](pb_builder& t) { t.bytes_field(6, "ab").bytes_field(6, ""); });
    CHECK(s.value.strings() == std::vector<std::string>{"ab", ""});
  }
  SUBCASE("packed dims") {
    pb_builder t;
    t.w.packed_varints(1, {2, 3});
    t.varint_field(2, 7);
    t.w.packed_varints(7, {1, 2, 3, 4, 5, 6});
    const auto r = io::parse_onnx_tensor(t.bytes.data(), t.bytes.size());
    CHECK(r.value.shape() == std::vector<std::int64_t>{2, 3});
    CHECK(r.value.data<std::int64_t>()[5] == 6);
  }
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool under_address_sanitizer = true;
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
constexpr bool under_address_sanitizer = true;
#  else
constexpr bool under_address_sanitizer = false;
#  endif
#else
constexpr bool under_address_sanitizer = false;
#endif

// VmHWM (peak resident memory) in bytes after resetting it to the current RSS, or -1 where
// /proc does not offer that.
long long reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  if (!(clear << "5" << std::flush)) return -1;
  return 0;
}
long long peak_rss() {
  std::ifstream status("/proc/self/status");
  std::string key;
  long long kib = -1;
  while (status >> key) {
    if (key == "VmHWM:") status >> kib;
    else status.ignore(1 << 12, '\n');
  }
  return kib < 0 ? -1 : kib * 1024;
}

TEST_CASE("onnx: reading external data holds the tensors, not also the file's pages") {
  // 32 tensors of 2 MiB: the file's pages stay resident until parsing ends when they are kept,
  // about twice the data at the peak; released as copied, the data and one tensor's pages.
  const fs::path dir = scratch_dir("external_memory");
  const std::string path = (dir / "big.onnx").string();
  constexpr std::int64_t tensors = 32, floats = std::int64_t{1} << 19;
  {
    graph::model m;
    m.opset_imports.push_back({"", 13});
    for (std::int64_t k = 0; k < tensors; ++k) {
      graph::initializer i;
      i.name = "w" + std::to_string(k);
      i.value = graph::tensor(graph::dtype::float32, {floats});
      for (std::int64_t e = 0; e < floats; ++e) i.value.data<float>()[e] = static_cast<float>(e % 977 + k);
      m.main.initializers.push_back(std::move(i));
    }
    io::onnx_write_options opt;
    opt.all_external = true;
    io::write_onnx(m, path, opt);
  }
  if (under_address_sanitizer) {
    MESSAGE("under AddressSanitizer (shadow memory, quarantined frees): not measured");
    return;
  }
  if (reset_peak_rss() < 0 || peak_rss() < 0) {
    MESSAGE("no /proc/self/clear_refs: not measured");
    return;
  }
  const long long before = peak_rss();
  const graph::model r = io::read_onnx(path);
  const long long grew = peak_rss() - before;
  const long long data = tensors * floats * 4;
  REQUIRE(r.main.initializers.size() == static_cast<std::size_t>(tensors));
  CHECK(r.main.initializers[5].value.data<float>()[1000] == static_cast<float>(1000 % 977 + 5));
  CAPTURE(grew);
  CHECK(grew < data + data / 4);
  fs::remove_all(dir);
}

TEST_CASE("onnx: external data — written by size or all, read back relative to the model's folder") {
  const fs::path dir = scratch_dir("external");
  graph::model m = everything_model();
  const std::string path = (dir / "model.onnx").string();

  SUBCASE("all_external") {
    io::onnx_write_options opt;
    opt.all_external = true;
    opt.external_file = "weights.bin";
    io::write_onnx(m, path, opt);
    REQUIRE(fs::exists(dir / "weights.bin"));
    const graph::model r = io::read_onnx(path);
    CHECK(amctq_test::ir_compare{true}.models(m, r).find(".external") != std::string::npos);  // refs now set
    for (const auto& init : r.main.initializers) {
      const bool can = init.value.type() != graph::dtype::string && init.value.storage_bytes() > 0;
      CHECK(init.external.has_value() == can);
      if (can) CHECK(init.external->location == "weights.bin");
      CHECK(init.value == m.main.find_initializer(init.name)->value);
    }
    // Subgraph initializers go external too.
    CHECK(r.main.nodes[0].find("g")->g->initializers[0].external.has_value());
    // Writing what was read keeps the layout: a fixed point, offsets included.
    io::write_onnx(r, (dir / "again.onnx").string(), {});
    const graph::model r2 = io::read_onnx((dir / "again.onnx").string());
    CHECK(amctq_test::ir_compare{}.models(r, r2) == "");
    // The big tensor is page-aligned.
    CHECK(r.main.find_initializer("big")->external->offset % 4096 == 0);
  }
  SUBCASE("by threshold: only tensors of at least the threshold move out") {
    io::onnx_write_options opt;
    opt.external_threshold = 1024;
    io::write_onnx(m, path, opt);
    REQUIRE(fs::exists(dir / "model.onnx.data"));
    const graph::model r = io::read_onnx(path);
    CHECK(r.main.find_initializer("big")->external.has_value());
    CHECK(!r.main.find_initializer("half")->external.has_value());
    CHECK(fs::file_size(dir / "model.onnx.data") == 20000);
    // Dropping the refs brings everything back inline.
    io::onnx_write_options inline_opt;
    inline_opt.keep_external = false;
    io::write_onnx(r, (dir / "inline.onnx").string(), inline_opt);
    const graph::model r2 = io::read_onnx((dir / "inline.onnx").string());
    CHECK(amctq_test::ir_compare{}.models(m, r2) == "");
  }
  SUBCASE("parse from memory cannot resolve external data") {
    io::onnx_write_options opt;
    opt.all_external = true;
    io::write_onnx(m, path, opt);
    std::ifstream f(path, std::ios::binary);
    std::vector<char> raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    CHECK_THROWS_WITH_AS(io::parse_onnx(reinterpret_cast<const std::byte*>(raw.data()), raw.size()),
                         doctest::Contains("model's folder is unknown"), amctq::error);
  }
  fs::remove_all(dir);
}

TEST_CASE("onnx: saves are atomic — a failed write leaves no file and keeps the old one") {
  const fs::path dir = scratch_dir("atomic");
  const std::string path = (dir / "m.onnx").string();
  graph::model m = everything_model();
  io::write_onnx(m, path);
  const auto before = fs::file_size(path);

  graph::model broken = m;
  graph::attribute a;
  a.name = "null_graph";
  a.type = graph::attribute::kind::g;  // but no graph: the writer rejects it mid-way
  broken.main.nodes[0].attributes.push_back(a);
  io::onnx_write_options opt;
  opt.all_external = true;
  CHECK_THROWS_AS(io::write_onnx(broken, path, opt), amctq::error);
  CHECK(fs::file_size(path) == before);
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  CHECK(files == 1);  // no temp files, no half-written external data
  CHECK(amctq_test::ir_compare{}.models(m, io::read_onnx(path)) == "");

  CHECK_THROWS_AS(io::write_onnx(m, (dir / "no_such_dir" / "m.onnx").string()), amctq::error);
  CHECK(!fs::exists(dir / "no_such_dir"));
  fs::remove_all(dir);
}

TEST_CASE("onnx: inputs the fuzzer once broke still parse or fail cleanly, and re-serialize stably") {
  // fuzz/regressions/ keeps every input libFuzzer found; replay the fuzz target's check.
  const fs::path dir = fs::path(AMCTQ_SOURCE_DIR) / "fuzz" / "regressions";
  std::size_t replayed = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".onnx") continue;
    CAPTURE(entry.path().string());
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto* bytes = reinterpret_cast<const std::byte*>(raw.data());
    ++replayed;
    graph::model m;
    try {
      m = io::parse_onnx(bytes, raw.size());
    } catch (const amctq::error&) {
      continue;
    }
    const auto once = io::serialize_onnx(m);
    const auto again = io::serialize_onnx(io::parse_onnx(once.data(), once.size()));
    CHECK(once == again);
  }
  CHECK(replayed >= 1);
}

}  // namespace test_onnx_roundtrip
