// Hostile ONNX input: truncation, lengths past the end, over-long varints, deep nesting, wrong
// wire types, escaping or short external data, counts that disagree with dims, random
// corruption. Each must raise amctq::error naming the field, never crash or over-allocate.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "amctq/io/onnx.hpp"
#include "io/onnx_test_util.hpp"

namespace test_onnx_hostile {

namespace fs = std::filesystem;
using namespace amctq;
using amctq_test::pb_builder;

namespace {

/// A minimal valid ModelProto around a graph body.
pb_builder model_with_graph(const pb_builder& g) {
  pb_builder m;
  m.varint_field(1, 8);
  m.message(7, g);
  pb_builder opset;
  opset.varint_field(2, 13);
  m.message(8, opset);
  return m;
}

/// A graph with one node whose attribute list is `attrs`.
pb_builder graph_with_node_attrs(const std::vector<const pb_builder*>& attrs) {
  pb_builder node;
  node.bytes_field(1, "x").bytes_field(2, "y").bytes_field(4, "Custom");
  for (const auto* a : attrs) node.message(5, *a);
  pb_builder g;
  g.message(1, node);
  return g;
}

template <class F>
std::string error_of(F&& f, errc want = errc::parse) {
  try {
    f();
  } catch (const amctq::error& e) {
    CHECK_MESSAGE(e.code() == want, e.what());
    return e.what();
  }
  FAIL("no amctq::error was thrown");
  return "";
}

std::string parse_error(const pb_builder& m, errc want = errc::parse) {
  return error_of([&] { (void)io::parse_onnx(m.bytes.data(), m.bytes.size()); }, want);
}

/// A graph holding one If node whose then_branch is `body`.
pb_builder wrap_in_if(const pb_builder& body) {
  pb_builder attr;
  attr.bytes_field(1, "then_branch").message(6, body).varint_field(20, 5);
  pb_builder node;
  node.bytes_field(4, "If").message(5, attr);
  pb_builder outer;
  outer.message(1, node);
  return outer;
}

/// Writes `path`: a model whose one initializer "w" (4 floats) is external data at `location`
/// with the given offset and length (an empty string leaves the key out).
std::string write_external_model(const fs::path& path, const std::string& location, const std::string& offset,
                                 const std::string& length) {
  pb_builder t;
  t.varint_field(1, 4).varint_field(2, 1).bytes_field(8, "w");
  for (auto [k, v] : {std::pair{"location", location}, std::pair{"offset", offset}, std::pair{"length", length}}) {
    if (v.empty()) continue;
    pb_builder e;
    e.bytes_field(1, k).bytes_field(2, v);
    t.message(13, e);
  }
  t.varint_field(14, 1);
  pb_builder g;
  g.message(5, t);
  amctq_test::write_bytes(path, model_with_graph(g).bytes);
  return path.string();
}

pb_builder float_tensor_attr(const char* name, std::vector<std::int64_t> dims, std::size_t raw_bytes) {
  pb_builder t;
  t.w.packed_varints(1, dims);
  t.varint_field(2, 1);
  t.bytes_field(9, std::string(raw_bytes, '\0'));
  pb_builder a;
  a.bytes_field(1, name).message(5, t).varint_field(20, 4);
  return a;
}

}  // namespace

TEST_CASE("onnx hostile: element counts that disagree with dims name the field") {
  pb_builder a0, a1;
  a0.bytes_field(1, "alpha").fixed32_field(2, 0.5f).varint_field(20, 1);
  a1.bytes_field(1, "k").varint_field(3, 3).varint_field(20, 2);
  const pb_builder bad = float_tensor_attr("value", {2, 3}, 12);
  const std::string msg = parse_error(model_with_graph(graph_with_node_attrs({&a0, &a1, &bad})));
  CHECK(msg == "[amctq.parse] ModelProto.graph.node[0].attribute[2].t: TensorProto.raw_data length 12 does not "
               "match dims [2,3] of float32 (24 bytes)");

  SUBCASE("typed field count") {
    pb_builder t;
    t.varint_field(1, 4).varint_field(2, 1);
    t.w.packed_floats(4, {1, 2, 3});
    pb_builder g;
    g.message(5, t);
    CHECK(parse_error(model_with_graph(g)).find("ModelProto.graph.initializer[0]: TensorProto.float_data holds 3 "
                                                "values, dims [4] of float32 needs 4") != std::string::npos);
  }
  SUBCASE("values in the wrong typed field") {
    pb_builder t;
    t.varint_field(1, 1).varint_field(2, 1).varint_field(7, 5);
    CHECK(error_of([&] { io::parse_onnx_tensor(t.bytes.data(), t.bytes.size()); })
              .find("TensorProto of float32 has values in a field other than float_data") != std::string::npos);
  }
  SUBCASE("negative dim, overflowing dims, unknown data type, out-of-range int8") {
    pb_builder neg;
    neg.varint_field(1, static_cast<std::uint64_t>(-2)).varint_field(2, 1);
    CHECK(error_of([&] { io::parse_onnx_tensor(neg.bytes.data(), neg.bytes.size()); }).find("dims[0] is negative") !=
          std::string::npos);
    pb_builder huge;
    huge.w.packed_varints(1, {1 << 30, 1 << 30, 1 << 30});
    huge.varint_field(2, 1);
    CHECK(error_of([&] { io::parse_onnx_tensor(huge.bytes.data(), huge.bytes.size()); }).find("more elements") !=
          std::string::npos);
    pb_builder big_no_data;  // 2^40 floats claimed, no data: rejected before allocating
    big_no_data.w.packed_varints(1, {1 << 20, 1 << 20});
    big_no_data.varint_field(2, 1);
    CHECK(error_of([&] { io::parse_onnx_tensor(big_no_data.bytes.data(), big_no_data.bytes.size()); })
              .find("float_data holds 0 values") != std::string::npos);
    pb_builder unknown;
    unknown.varint_field(2, 99);
    CHECK(error_of([&] { io::parse_onnx_tensor(unknown.bytes.data(), unknown.bytes.size()); })
              .find("data_type 99 is not an ONNX data type") != std::string::npos);
    pb_builder i8;
    i8.varint_field(1, 1).varint_field(2, 3).varint_field(5, 300);
    CHECK(error_of([&] { io::parse_onnx_tensor(i8.bytes.data(), i8.bytes.size()); })
              .find("int32_data[0] = 300 is out of range for int8") != std::string::npos);
  }
}

TEST_CASE("onnx hostile: truncation, lengths past the end, over-long varints, bad wire types") {
  SUBCASE("length past the end of the buffer") {
    pb_builder m;
    m.varint_field(1, 8).raw({0x3a, 0xe8, 0x07, 0x0a});  // field 7 (graph), length 1000, 1 byte present
    CHECK(parse_error(m).find("length 1000 runs past the end of the buffer (1 bytes left)") != std::string::npos);
  }
  SUBCASE("varint longer than 10 bytes") {
    pb_builder m;
    m.raw({0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01});
    CHECK(parse_error(m).find("varint longer than 10 bytes") != std::string::npos);
  }
  SUBCASE("truncated varint and fixed32") {
    pb_builder m;
    m.raw({0x08, 0x80});
    CHECK(parse_error(m).find("truncated varint") != std::string::npos);
    pb_builder a;
    a.bytes_field(1, "alpha").raw({0x15, 0x00, 0x00});  // f (fixed32) with 2 of 4 bytes
    const std::string msg = parse_error(model_with_graph(graph_with_node_attrs({&a})));
    CHECK(msg.find("ModelProto.graph.node[0].attribute[0]: AttributeProto: truncated fixed32") != std::string::npos);
  }
  SUBCASE("wrong wire type for a known field") {
    pb_builder m;
    m.bytes_field(1, "8");  // ir_version as bytes
    CHECK(parse_error(m).find("ModelProto.ir_version has wire type length-delimited, expected varint") !=
          std::string::npos);
    pb_builder t;
    t.varint_field(9, 3);  // raw_data as a varint
    CHECK(error_of([&] { io::parse_onnx_tensor(t.bytes.data(), t.bytes.size()); })
              .find("TensorProto.raw_data has wire type varint") != std::string::npos);
    pb_builder g;
    g.varint_field(1, 1);  // node as a varint
    CHECK(parse_error(model_with_graph(g)).find("ModelProto.graph: GraphProto.node has wire type varint") !=
          std::string::npos);
  }
  SUBCASE("not a model at all") {
    pb_builder m;
    m.varint_field(1, 8);
    CHECK(parse_error(m).find("no graph") != std::string::npos);
    pb_builder zero;
    zero.raw({0x00});  // field number 0
    CHECK(parse_error(zero).find("invalid field number 0") != std::string::npos);
  }
  SUBCASE("every truncation of a real model is an amctq::error or a shorter valid model") {
    const auto models = amctq_test::onnx_backend_models();
    REQUIRE(!models.empty());
    const auto bytes = io::serialize_onnx(io::read_onnx(models.front()));
    std::size_t rejected = 0;
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      try {
        (void)io::parse_onnx(bytes.data(), n);
      } catch (const amctq::error& e) {
        CHECK(e.code() == errc::parse);
        ++rejected;
      }
    }
    CHECK(rejected > bytes.size() * 9 / 10);
  }
}

TEST_CASE("onnx hostile: subgraph nesting is limited to 64") {
  auto nested = [](int depth) {
    pb_builder g;
    g.bytes_field(2, "leaf");
    for (int i = 0; i < depth; ++i) {
      pb_builder outer = wrap_in_if(g);
      g.bytes.swap(outer.bytes);
    }
    return model_with_graph(g);
  };
  const pb_builder ok = nested(64);
  CHECK_NOTHROW(io::parse_onnx(ok.bytes.data(), ok.bytes.size()));
  CHECK(parse_error(nested(65)).find("subgraphs nested deeper than 64") != std::string::npos);
  CHECK(parse_error(nested(5000)).find("subgraphs nested deeper than 64") != std::string::npos);
}

TEST_CASE("onnx hostile: external data that escapes the folder or runs past the file") {
  const fs::path dir = fs::temp_directory_path() / ("amctq_onnx_hostile_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "sub");
  amctq_test::write_bytes(dir / "w.bin", std::vector<std::byte>(16));
  auto model_path = [&](const std::string& location, const std::string& offset, const std::string& length) {
    return write_external_model(dir / "sub" / "m.onnx", location, offset, length);
  };
  auto read_error = [&](const std::string& p, errc code) { return error_of([&] { io::read_onnx(p); }, code); };

  const std::string up = read_error(model_path("../w.bin", "0", "16"), errc::io);
  CHECK(up.find("ModelProto.graph.initializer[0]: external data location '../w.bin' escapes the model's folder") !=
        std::string::npos);
  CHECK(read_error(model_path("a/../../w.bin", "", ""), errc::io).find("escapes") != std::string::npos);
  CHECK(read_error(model_path((dir / "w.bin").string(), "", ""), errc::io).find("is absolute") != std::string::npos);
  amctq_test::write_bytes(dir / "sub" / "w.bin", std::vector<std::byte>(16));
  CHECK(io::read_onnx(model_path("w.bin", "0", "16")).main.initializers.at(0).value.size() == 4);
  CHECK(io::read_onnx(model_path("w.bin", "", "")).main.initializers.at(0).external->length == -1);
  CHECK(read_error(model_path("w.bin", "8", "16"), errc::io).find("past the end of 'w.bin' (16 bytes)") !=
        std::string::npos);
  CHECK(read_error(model_path("w.bin", "32", ""), errc::io).find("offset 32 is past the end") != std::string::npos);
  CHECK(read_error(model_path("w.bin", "4", "12"), errc::parse).find("external data length 12 does not match dims [4]") !=
        std::string::npos);
  CHECK(read_error(model_path("w.bin", "-1", ""), errc::parse).find("offset '-1' is not a non-negative integer") !=
        std::string::npos);
  CHECK(read_error(model_path("missing.bin", "", ""), errc::io).find("cannot open") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("onnx hostile: external data through symbolic links, FIFOs and folders") {
  const fs::path dir = fs::temp_directory_path() / ("amctq_onnx_links_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "model");
  fs::create_directories(dir / "outside" / "sub");
  const std::vector<std::byte> outside_bytes(16, std::byte{0x41}), inside_bytes(16, std::byte{0x3f});
  amctq_test::write_bytes(dir / "outside" / "w.bin", outside_bytes);
  amctq_test::write_bytes(dir / "outside" / "sub" / "w.bin", outside_bytes);
  amctq_test::write_bytes(dir / "model" / "real.bin", inside_bytes);
  auto model_at = [&](const std::string& location) {
    return write_external_model(dir / "model" / "m.onnx", location, "0", "16");
  };
  auto read_error = [&](const std::string& p) { return error_of([&] { io::read_onnx(p); }, errc::io); };

  // A file symlink (absolute or relative target) and a folder symlink that lead outside.
  fs::create_symlink(dir / "outside" / "w.bin", dir / "model" / "abs.bin");
  fs::create_symlink(fs::path("..") / "outside" / "w.bin", dir / "model" / "rel.bin");
  fs::create_directory_symlink(dir / "outside" / "sub", dir / "model" / "sub");
  for (const char* loc : {"abs.bin", "rel.bin", "sub/w.bin", "./sub/w.bin"}) {
    CAPTURE(loc);
    const std::string msg = read_error(model_at(loc));
    CHECK(msg.find(std::string("external data location '") + loc + "' resolves to '" +
                   fs::canonical(dir / "outside").string()) != std::string::npos);
    CHECK(msg.find("outside the model's folder") != std::string::npos);
  }
  // A symlink that stays inside is read, and so is a model reached through a linked folder.
  fs::create_symlink("real.bin", dir / "model" / "inner.bin");
  const auto inner = io::read_onnx(model_at("inner.bin"));
  CHECK(inner.main.initializers.at(0).value.bytes() == inside_bytes);
  fs::create_directory_symlink(dir / "model", dir / "alias");
  (void)model_at("real.bin");
  CHECK(io::read_onnx((dir / "alias" / "m.onnx").string()).main.initializers.at(0).value.bytes() == inside_bytes);
  // Not regular files: a FIFO (reading it would block until a writer came) and a folder.
  REQUIRE(::mkfifo((dir / "model" / "fifo.bin").c_str(), 0600) == 0);
  CHECK(read_error(model_at("fifo.bin")).find("external data location 'fifo.bin' is not a regular file") !=
        std::string::npos);
  fs::create_directories(dir / "model" / "folder.bin");
  CHECK(read_error(model_at("folder.bin")).find("'folder.bin' is not a regular file") != std::string::npos);
  // The model file itself as a FIFO is refused without waiting for a writer.
  REQUIRE(::mkfifo((dir / "fifo.onnx").c_str(), 0600) == 0);
  CHECK(read_error((dir / "fifo.onnx").string()).find("is not a regular file") != std::string::npos);
  // A long location is quoted short.
  const std::string long_up = read_error(model_at(std::string(5000, 'a') + "/../../w.bin"));
  CHECK(long_up.find("escapes the model's folder") != std::string::npos);
  CHECK(long_up.size() < 400);
  fs::remove_all(dir);
}

TEST_CASE("onnx hostile: duplicate node or initializer names are refused on read and never written") {
  auto node = [](const char* in, const char* out, const char* name) {
    pb_builder n;
    n.bytes_field(1, in).bytes_field(2, out);
    if (*name) n.bytes_field(3, name);
    n.bytes_field(4, "Relu");
    return n;
  };
  pb_builder g;
  g.message(1, node("x", "y", "same")).message(1, node("y", "z", "other")).message(1, node("z", "u", "same"));
  CHECK(parse_error(model_with_graph(g)) ==
        "[amctq.parse] ModelProto.graph: node[0] and node[2] are both named 'same'; ONNX Runtime refuses such a model "
        "too: give each node its own name");
  pb_builder unnamed;  // unnamed nodes are legal, however many
  unnamed.message(1, node("x", "y", "")).message(1, node("y", "z", ""));
  const pb_builder ok = model_with_graph(unnamed);
  graph::model m = io::parse_onnx(ok.bytes.data(), ok.bytes.size());
  CHECK(m.main.nodes.size() == 2);

  pb_builder t;
  t.varint_field(1, 1).varint_field(2, 1).bytes_field(8, "w").bytes_field(9, std::string(4, '\0'));
  pb_builder inits;
  inits.message(5, t).message(5, t);
  CHECK(parse_error(model_with_graph(inits)).find("ModelProto.graph: initializer[0] and initializer[1] are both named 'w'") !=
        std::string::npos);

  // Inside a subgraph the path names it.
  pb_builder body;
  body.message(1, node("a", "b", "n")).message(1, node("b", "c", "n"));
  CHECK(parse_error(model_with_graph(wrap_in_if(body))).find("ModelProto.graph.node[0].attribute[0].g: node[0] and node[1] are both "
                                                  "named 'n'") != std::string::npos);

  // The writer refuses what the reader would (a pass that named two nodes alike, say).
  m.main.nodes[0].name = m.main.nodes[1].name = "twin";
  CHECK(error_of([&] { (void)io::serialize_onnx(m); }, errc::invalid_argument)
            .find("serialize_onnx: node[0] and node[1] are both named 'twin'") != std::string::npos);
  const fs::path out = fs::temp_directory_path() / ("amctq_dup_write_" + std::to_string(::getpid()) + ".onnx");
  CHECK(error_of([&] { io::write_onnx(m, out.string()); }, errc::invalid_argument).find("both named 'twin'") !=
        std::string::npos);
  CHECK(!fs::exists(out));
}

TEST_CASE("onnx hostile: negative dims in graph inputs, outputs and value_info") {
  auto vi_with_dim = [](std::int64_t d) {
    pb_builder dim;
    dim.varint_field(1, static_cast<std::uint64_t>(d));
    pb_builder shape;
    shape.message(1, dim);
    pb_builder tt;
    tt.varint_field(1, 1).message(2, shape);
    pb_builder type;
    type.message(1, tt);
    pb_builder vi;
    vi.bytes_field(1, "x").message(2, type);
    return vi;
  };
  pb_builder g;
  g.message(11, vi_with_dim(-3));
  CHECK(parse_error(model_with_graph(g)).find("ModelProto.graph.input[0].type.tensor_type.shape.dim[0]: "
                                              "Dimension.dim_value -3 is negative") != std::string::npos);
  pb_builder out;
  out.message(12, vi_with_dim(0)).message(12, vi_with_dim(-1));
  CHECK(parse_error(model_with_graph(out)).find("ModelProto.graph.output[1].type.tensor_type.shape.dim[0]: "
                                                "Dimension.dim_value -1 is negative") != std::string::npos);
}

TEST_CASE("onnx hostile: random corruption of real models never escapes as anything but amctq::error") {
  const auto models = amctq_test::onnx_backend_models();
  REQUIRE(models.size() >= 10);
  std::mt19937 rng(5);
  std::size_t parsed = 0, rejected = 0;
  for (std::size_t k = 0; k < models.size(); k += models.size() / 10) {
    const auto good = io::serialize_onnx(io::read_onnx(models[k]));
    for (int trial = 0; trial < 150; ++trial) {
      auto bad = good;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) bad[rng() % bad.size()] = static_cast<std::byte>(rng());
      try {
        const graph::model m = io::parse_onnx(bad.data(), bad.size());
        // Whatever parses must serialize and parse again.
        const auto again = io::serialize_onnx(m);
        CHECK(amctq_test::ir_compare{}.models(m, io::parse_onnx(again.data(), again.size())) == "");
        ++parsed;
      } catch (const amctq::error&) {
        ++rejected;
      }
    }
  }
  CHECK(parsed + rejected >= 1500);
  CHECK(rejected > 0);
}

}  // namespace test_onnx_hostile
