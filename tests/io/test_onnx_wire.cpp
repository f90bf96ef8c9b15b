// The protobuf wire codec under the ONNX reader/writer: varints at every width, zigzag,
// fixed32/64, length-delimited spans, skipping every wire type, and the bounds checks.
#include <doctest/doctest.h>

#include <cstring>
#include <limits>

#include "amctq/io/protobuf_wire.hpp"

namespace test_onnx_wire {

using namespace amctq::io::pb;

namespace {
std::vector<std::byte> encode(void (*f)(writer<vector_sink>&)) {
  std::vector<std::byte> out;
  vector_sink s{&out};
  writer<vector_sink> w(s);
  f(w);
  return out;
}
std::vector<std::byte> bytes(std::initializer_list<int> b) {
  std::vector<std::byte> v;
  for (int x : b) v.push_back(static_cast<std::byte>(x));
  return v;
}
}  // namespace

TEST_CASE("pb wire: varints round-trip at every width and match protobuf's encoding") {
  for (std::uint64_t v : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{127}, std::uint64_t{128},
                          std::uint64_t{300}, std::uint64_t{1} << 35, std::numeric_limits<std::uint64_t>::max()}) {
    std::vector<std::byte> out;
    vector_sink s{&out};
    writer<vector_sink> w(s);
    w.varint(v);
    CHECK(out.size() == varint_size(v));
    reader r(out.data(), out.size());
    CHECK(r.read_varint() == v);
    CHECK(r.done());
  }
  const auto b300 = encode([](writer<vector_sink>& w) { w.varint(300); });
  CHECK(b300 == bytes({0xac, 0x02}));
  // -1 as int64 takes the full 10 bytes.
  const auto minus1 = encode([](writer<vector_sink>& w) { w.varint(static_cast<std::uint64_t>(-1)); });
  CHECK(minus1.size() == 10);
  CHECK(std::to_integer<int>(minus1.back()) == 0x01);
}

TEST_CASE("pb wire: zigzag, fixed32/64 and floats") {
  for (std::int64_t v : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{1}, std::numeric_limits<std::int64_t>::min(),
                         std::numeric_limits<std::int64_t>::max()})
    CHECK(zigzag_decode(zigzag_encode(v)) == v);
  CHECK(zigzag_encode(-1) == 1);
  CHECK(zigzag_encode(1) == 2);
  const auto f = encode([](writer<vector_sink>& w) { w.float_field(2, -1.5f); });
  CHECK(f == bytes({0x15, 0x00, 0x00, 0xc0, 0xbf}));
  reader r(f.data(), f.size());
  const tag t = r.read_tag();
  CHECK(t.field == 2);
  CHECK(t.type == wire_type::fixed32);
  CHECK(r.read_float() == -1.5f);
  const auto d = encode([](writer<vector_sink>& w) { w.fixed64(0x0102030405060708ull); });
  reader rd(d.data(), d.size());
  CHECK(rd.read_fixed64() == 0x0102030405060708ull);
}

TEST_CASE("pb wire: skipping every wire type, groups included") {
  // field 1 varint, field 2 fixed64, field 3 bytes, field 4 group{field 5 varint}, field 6 fixed32
  const auto b = bytes({0x08, 0x96, 0x01, 0x11, 1, 2, 3, 4, 5, 6, 7, 8, 0x1a, 0x02, 'h', 'i', 0x23, 0x28, 0x01, 0x24,
                        0x35, 1, 2, 3, 4});
  reader r(b.data(), b.size());
  int fields = 0;
  while (!r.done()) {
    r.skip(r.read_tag());
    ++fields;
  }
  CHECK(fields == 5);
}

TEST_CASE("pb wire: bounds checks raise parse errors") {
  auto fails = [](std::vector<std::byte> b, auto op, const char* what) {
    reader r(b.data(), b.size());
    try {
      op(r);
    } catch (const amctq::error& e) {
      CHECK(e.code() == amctq::errc::parse);
      CHECK_MESSAGE(std::string(e.what()).find(what) != std::string::npos, e.what());
      return;
    }
    FAIL("no error for ", what);
  };
  fails(bytes({0x80, 0x80}), [](reader& r) { r.read_varint(); }, "truncated varint");
  fails(bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}), [](reader& r) { r.read_varint(); },
        "over 64 bits");
  fails(bytes({0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}), [](reader& r) { r.read_varint(); },
        "varint longer than 10 bytes");
  fails(bytes({0x05, 'a'}), [](reader& r) { r.read_bytes(); }, "length 5 runs past the end");
  fails(bytes({1, 2, 3}), [](reader& r) { r.read_fixed32(); }, "truncated fixed32");
  fails(bytes({0x0e}), [](reader& r) { r.read_tag(); }, "invalid wire type 6");
  fails(bytes({0x0c}), [](reader& r) { r.skip(r.read_tag()); }, "unexpected end-group");
  fails(bytes({0x0b, 0x14}), [](reader& r) { r.skip(r.read_tag()); }, "end-group 2 closes group 1");
  std::vector<std::byte> deep(70, std::byte{0x0b});  // 70 nested start-groups
  fails(deep, [](reader& r) { r.skip(r.read_tag()); }, "groups nested deeper than 64");
}

}  // namespace test_onnx_wire
