// Slice, Split, Expand, Tile, ScatterND and GatherElements where the ONNX node tests leave gaps:
// the INT64 sentinels torch exports for open-ended slices, whole reversal, the opset 11 split
// attribute and opset 18's uneven num_outputs, non-float element types, errors naming the node.
#include <doctest/doctest.h>

#include <limits>

#include "graph/builder.hpp"

namespace test_movement {

using namespace amctq;
using amctq::test::attr_i;
using amctq::test::attr_ints;
using amctq::test::check_close;
using amctq::test::ft;
using amctq::test::it64;
using amctq::test::single_node;

namespace {
std::vector<std::int64_t> ints(const graph::tensor& t) {
  return std::vector<std::int64_t>(t.data<std::int64_t>(), t.data<std::int64_t>() + t.size());
}
constexpr auto big = std::numeric_limits<std::int64_t>::max();
constexpr auto small = std::numeric_limits<std::int64_t>::min();
}  // namespace

TEST_CASE("Slice: torch's x[:, 1:] and x.flip via INT64 sentinels, steps, opset 1 attributes") {
  const auto x = ft({2, 3}, {1, 2, 3, 4, 5, 6});
  single_node tail("Slice", {"x", "s", "e", "a"}, {}, 13);
  tail.constant("s", it64({1}, {1})).constant("e", it64({1}, {big})).constant("a", it64({1}, {1}));
  check_close(tail.run({{"x", x}}), {2, 2}, {2, 3, 5, 6});
  single_node flip("Slice", {"x", "s", "e", "a", "st"}, {}, 13);
  flip.constant("s", it64({2}, {-1, -1})).constant("e", it64({2}, {small, small}))
      .constant("a", it64({2}, {0, -1})).constant("st", it64({2}, {-1, -1}));
  check_close(flip.run({{"x", x}}), {2, 3}, {6, 5, 4, 3, 2, 1});
  single_node step("Slice", {"x", "s", "e", "a", "st"}, {}, 13);
  step.constant("s", it64({1}, {0})).constant("e", it64({1}, {3})).constant("a", it64({1}, {1})).constant("st", it64({1}, {2}));
  check_close(step.run({{"x", x}}), {2, 2}, {1, 3, 4, 6});
  single_node empty("Slice", {"x", "s", "e"}, {}, 13);
  empty.constant("s", it64({1}, {2})).constant("e", it64({1}, {1}));
  CHECK(empty.run({{"x", x}}).shape() == std::vector<std::int64_t>{0, 3});
  single_node v1("Slice", {"x"}, {attr_ints("starts", {1}), attr_ints("ends", {3}), attr_ints("axes", {1})}, 1);
  CHECK(ints(v1.run({{"x", it64({2, 3}, {1, 2, 3, 4, 5, 6})}})) == std::vector<std::int64_t>{2, 3, 5, 6});
}

TEST_CASE("Split: opset 11 attribute, opset 13 input, opset 18 uneven num_outputs, bad sizes") {
  const auto x = it64({7}, {0, 1, 2, 3, 4, 5, 6});
  auto run_all = [&](single_node& s) {
    s.m.main.inputs = {amctq::test::info("x", graph::dtype::int64)};
    graph::executor ex(s.m);
    return ex.run({{"x", x}});
  };
  single_node s11("Split", {"x"}, {attr_ints("split", {2, 5})}, 11, {"a", "b"});
  auto o = run_all(s11);
  CHECK(ints(o.at("a")) == std::vector<std::int64_t>{0, 1});
  CHECK(ints(o.at("b")) == std::vector<std::int64_t>{2, 3, 4, 5, 6});
  single_node s13("Split", {"x", "sp"}, {}, 13, {"a", "b"});
  s13.constant("sp", it64({2}, {6, 1}));
  o = run_all(s13);
  CHECK(ints(o.at("b")) == std::vector<std::int64_t>{6});
  single_node s18("Split", {"x"}, {attr_i("num_outputs", 3)}, 18, {"a", "b", "c"});
  o = run_all(s18);
  CHECK(ints(o.at("a")) == std::vector<std::int64_t>{0, 1, 2});
  CHECK(ints(o.at("c")) == std::vector<std::int64_t>{6});
  single_node bad("Split", {"x", "sp"}, {}, 13, {"a", "b"});
  bad.constant("sp", it64({2}, {3, 3}));
  CHECK_THROWS_WITH_AS(run_all(bad), doctest::Contains("n0"), amctq::error);
}

TEST_CASE("Expand, Tile, ScatterND, GatherElements on int64 and bool-width data") {
  single_node ex("Expand", {"x", "shape"}, {}, 13);
  ex.constant("shape", it64({3}, {2, 1, 3}));
  const auto e = ex.run({{"x", it64({2, 1}, {7, 8})}});
  REQUIRE(e.shape() == std::vector<std::int64_t>{2, 2, 3});
  CHECK(ints(e) == std::vector<std::int64_t>{7, 7, 7, 8, 8, 8, 7, 7, 7, 8, 8, 8});
  single_node tile("Tile", {"x", "r"}, {}, 13);
  tile.constant("r", it64({2}, {2, 2}));
  CHECK(ints(tile.run({{"x", it64({1, 2}, {1, 2})}})) == std::vector<std::int64_t>{1, 2, 1, 2, 1, 2, 1, 2});
  single_node snd("ScatterND", {"x", "i", "u"}, {}, 13);
  snd.constant("i", it64({2, 1}, {2, -4})).constant("u", it64({2, 2}, {10, 11, 20, 21}));
  CHECK(ints(snd.run({{"x", it64({4, 2}, {0, 1, 2, 3, 4, 5, 6, 7})}})) ==
        std::vector<std::int64_t>{20, 21, 2, 3, 10, 11, 6, 7});
  single_node ge("GatherElements", {"x", "i"}, {attr_i("axis", 1)}, 13);
  ge.constant("i", it64({2, 2}, {2, 0, -1, 1}));
  CHECK(ints(ge.run({{"x", it64({2, 3}, {1, 2, 3, 4, 5, 6})}})) == std::vector<std::int64_t>{3, 1, 6, 5});
  single_node oob("GatherElements", {"x", "i"}, {}, 13);
  oob.constant("i", it64({1, 1}, {5}));
  CHECK_THROWS_WITH_AS(oob.run({{"x", it64({2, 1}, {1, 2})}}), doctest::Contains("out of range"), amctq::error);
}

}  // namespace test_movement
