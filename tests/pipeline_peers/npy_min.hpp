// Minimal little-endian float32 C-order .npy reader/writer for the peer driver (stand-in until
// io/npy.hpp is available).
#pragma once
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "amctq/graph/tensor.hpp"

inline amctq::graph::tensor npy_read_f32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  char magic[8];
  in.read(magic, 8);
  if (std::memcmp(magic, "\x93NUMPY", 6) != 0) throw std::runtime_error(path + ": not a .npy file");
  std::uint32_t hlen = 0;
  if (magic[6] == 1) {
    std::uint16_t h;
    in.read(reinterpret_cast<char*>(&h), 2);
    hlen = h;
  } else {
    in.read(reinterpret_cast<char*>(&hlen), 4);
  }
  std::string header(hlen, ' ');
  in.read(header.data(), hlen);
  if (header.find("'<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos)
    throw std::runtime_error(path + ": only little-endian float32 C-order arrays are supported");
  const auto a = header.find('('), b = header.find(')');
  std::vector<std::int64_t> shape;
  std::stringstream ss(header.substr(a + 1, b - a - 1));
  std::string item;
  while (std::getline(ss, item, ','))
    if (item.find_first_not_of(' ') != std::string::npos) shape.push_back(std::stoll(item));
  amctq::graph::tensor t(amctq::graph::dtype::float32, shape);
  in.read(reinterpret_cast<char*>(t.bytes().data()), static_cast<std::streamsize>(t.bytes().size()));
  if (!in) throw std::runtime_error(path + ": truncated");
  return t;
}

inline void npy_write_f32(const std::string& path, const amctq::graph::tensor& t) {
  std::string shape;
  for (auto d : t.shape()) shape += std::to_string(d) + ",";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const std::uint16_t h = static_cast<std::uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&h), 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(t.bytes().data()), static_cast<std::streamsize>(t.bytes().size()));
}

/// Rows [begin, end) of the first axis.
inline amctq::graph::tensor slice_rows(const amctq::graph::tensor& t, std::int64_t begin, std::int64_t end) {
  auto shape = t.shape();
  const std::size_t row = t.size() / static_cast<std::size_t>(shape[0]);
  shape[0] = end - begin;
  amctq::graph::tensor s(amctq::graph::dtype::float32, shape);
  std::memcpy(s.bytes().data(), t.bytes().data() + static_cast<std::size_t>(begin) * row * 4,
              static_cast<std::size_t>(end - begin) * row * 4);
  return s;
}
