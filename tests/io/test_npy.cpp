// .npy reader/writer: round trips of every dtype, versions 1-3, both byte orders, Fortran
// order, and every kind of malformed header or data as a parse error naming the problem.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "amctq/io/npy.hpp"

namespace test_npy {

using namespace amctq;
using amctq::graph::dtype;

namespace {

// A hand-made .npy: header text padded to 64 bytes, then raw data bytes.
std::vector<unsigned char> make_npy(int major, const std::string& dict, const std::vector<unsigned char>& data) {
  std::vector<unsigned char> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<unsigned char>(major), 0};
  const std::size_t prefix = major == 1 ? 10 : 12;
  std::string h = dict;
  while ((prefix + h.size() + 1) % 64) h.push_back(' ');
  h.push_back('\n');
  for (std::size_t i = 0; i < (major == 1 ? 2u : 4u); ++i) out.push_back(static_cast<unsigned char>((h.size() >> (8 * i)) & 0xff));
  out.insert(out.end(), h.begin(), h.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::vector<unsigned char> bytes_of(const std::vector<float>& v, bool big_endian) {
  std::vector<unsigned char> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  if (big_endian)
    for (std::size_t i = 0; i < v.size(); ++i) std::reverse(b.begin() + 4 * i, b.begin() + 4 * i + 4);
  return b;
}

std::string parse_error(const std::vector<unsigned char>& b) {
  try {
    io::parse_npy(b.data(), b.size(), "x.npy");
  } catch (const amctq::error& e) {
    CHECK(e.code() == errc::parse);
    return e.what();
  }
  return "no error";
}

std::string temp_path(const char* name) { return "/tmp/amctq_test_npy_" + std::to_string(::getpid()) + "_" + name; }

}  // namespace

TEST_CASE("npy: versions 1-3, both byte orders, C and Fortran order") {
  const std::vector<float> v{1, 2, 3, 4, 5, 6};  // C order of [[1,2,3],[4,5,6]]
  for (int major : {1, 2, 3}) {
    for (bool big : {false, true}) {
      const std::string descr = big ? "'>f4'" : "'<f4'";
      auto t = io::parse_npy(make_npy(major, "{'descr': " + descr + ", 'fortran_order': False, 'shape': (2, 3), }", bytes_of(v, big)).data(),
                             make_npy(major, "{'descr': " + descr + ", 'fortran_order': False, 'shape': (2, 3), }", bytes_of(v, big)).size());
      CHECK(t.type() == dtype::float32);
      CHECK(t.shape() == std::vector<std::int64_t>{2, 3});
      CHECK(io::npy_to_float(t) == v);
    }
  }
  // Fortran order stores columns first: 1 4 2 5 3 6.
  const auto f = make_npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", bytes_of({1, 4, 2, 5, 3, 6}, false));
  CHECK(io::npy_to_float(io::parse_npy(f.data(), f.size())) == v);
  const auto f3 = make_npy(1, "{'fortran_order': True, 'shape': (2, 2, 2), 'descr': '<f4'}", bytes_of({0, 4, 2, 6, 1, 5, 3, 7}, false));
  CHECK(io::npy_to_float(io::parse_npy(f3.data(), f3.size())) == std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7});
  const auto scalar = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", bytes_of({2.5f}, false));
  const auto ts = io::parse_npy(scalar.data(), scalar.size());
  CHECK(ts.rank() == 0);
  CHECK(io::npy_to_float(ts) == std::vector<float>{2.5f});
}

TEST_CASE("npy: every dtype round-trips through an atomic write") {
  const std::string path = temp_path("rt.npy");
  auto check = [&](graph::tensor t) {
    io::write_npy(path, t);
    const auto back = io::read_npy(path);
    CHECK(back.type() == t.type());
    CHECK(back.shape() == t.shape());
    CHECK(back.bytes() == t.bytes());
  };
  check(graph::tensor::from<float>({2, 2}, {1.5f, -2.0f, 0.0f, 1e30f}));
  check(graph::tensor::from<std::int8_t>({3}, {-128, 0, 127}));
  check(graph::tensor::from<std::uint8_t>({1, 3}, {0, 7, 255}));
  check(graph::tensor::from<std::int32_t>({2}, {-5, 1 << 30}));
  check(graph::tensor::from<std::int64_t>({2, 1, 1}, {-1, std::int64_t{1} << 40}));
  check(graph::tensor::from<float>({0, 4}, {}));
  // float16: 1.0 = 0x3c00, -2.0 = 0xc000, 65504 = 0x7bff, smallest subnormal 0x0001
  std::vector<std::byte> h = {std::byte{0x00}, std::byte{0x3c}, std::byte{0x00}, std::byte{0xc0},
                              std::byte{0xff}, std::byte{0x7b}, std::byte{0x01}, std::byte{0x00}};
  graph::tensor half(dtype::float16, {4}, h);
  check(half);
  CHECK(io::npy_to_float(io::read_npy(path)) == std::vector<float>{1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24)});
  check(graph::tensor::from<double>({2}, {-0.5, 1e300}));
  check(graph::tensor::from<std::int16_t>({2}, {-32768, 7}));
  check(graph::tensor::from<std::uint16_t>({2}, {65535, 7}));
  check(graph::tensor(dtype::boolean, {3}, {std::byte{1}, std::byte{0}, std::byte{1}}));
  check(half);
  // A write that fails leaves the previous file intact.
  CHECK_THROWS_AS(io::write_npy(path, graph::tensor(dtype::complex64, {1}, std::vector<std::byte>(8))), amctq::error);
  CHECK(io::read_npy(path).type() == dtype::float16);
  CHECK_THROWS_AS(io::write_npy("/nonexistent-dir/x.npy", half), amctq::error);
  std::remove(path.c_str());
  CHECK_THROWS_AS(io::read_npy(path), amctq::error);
}

TEST_CASE("npy: malformed and hostile files are parse errors naming the problem") {
  const auto good = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", bytes_of({1, 2}, false));
  CHECK(parse_error(good) == "no error");
  auto bad_magic = good;
  bad_magic[1] = 'X';
  CHECK(parse_error(bad_magic).find("magic") != std::string::npos);
  CHECK(parse_error({0x93, 'N', 'U'}).find("magic") != std::string::npos);
  auto bad_version = good;
  bad_version[6] = 9;
  CHECK(parse_error(bad_version).find("version 9") != std::string::npos);
  auto long_header = good;
  long_header[8] = 0xff;
  long_header[9] = 0xff;
  CHECK(parse_error(long_header).find("past the end") != std::string::npos);
  std::vector<unsigned char> truncated(good.begin(), good.end() - 3);
  CHECK(parse_error(truncated).find("truncated") != std::string::npos);
  auto hdr = [](const std::string& d) { return make_npy(1, d, bytes_of({1, 2}, false)); };
  CHECK(parse_error(hdr("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }")).find("not supported") != std::string::npos);
  CHECK(parse_error(hdr("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }")).find("descr") != std::string::npos);
  CHECK(parse_error(hdr("{'descr': '<f4', 'shape': (2,), }")).find("fortran_order") != std::string::npos);
  CHECK(parse_error(hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}")).find("unknown header key 'x'") != std::string::npos);
  CHECK(parse_error(hdr("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }")).find("True or False") != std::string::npos);
  CHECK(parse_error(hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }")).find("non-negative") != std::string::npos);
  CHECK(parse_error(hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }")).find("overflows") != std::string::npos);
  CHECK(parse_error(hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }")).find("too large") != std::string::npos);
  CHECK(parse_error(hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (2,")).find("ends early") != std::string::npos);
  CHECK(parse_error(hdr("{'descr: '<f4'")).find("header") != std::string::npos);
}

TEST_CASE("npy: errors quote at most about 100 characters of a hostile header") {
  // A version 2 header can be 4 GB; a 200 kB one with a huge key, a huge descr, a late error.
  const std::string pad(200000, ' ');
  const std::string huge_key = parse_error(make_npy(2, "{'" + std::string(100000, 'k') + "': 1}", {}));
  CHECK(huge_key.find("unknown header key 'kkk") != std::string::npos);
  CHECK(huge_key.find("...(100000 bytes)'") != std::string::npos);
  CHECK(huge_key.size() < 400);
  const std::string huge_descr =
      parse_error(make_npy(2, "{'descr': '<" + std::string(100000, 'f') + "', 'fortran_order': False, 'shape': (2,)}", {}));
  CHECK(huge_descr.find("dtype '<fff") != std::string::npos);
  CHECK(huge_descr.size() < 400);
  const std::string late = parse_error(make_npy(2, "{'descr': '<f4', 'fortran_order': False," + pad + "'shape': (2; }", {}));
  CHECK(late.find("expected ',' or ')' in shape (at offset 200051 of '...") != std::string::npos);
  CHECK(late.find("'shape': (2; }") != std::string::npos);  // the quote starts shortly before the offset
  CHECK(late.size() < 400);
}

}  // namespace test_npy
