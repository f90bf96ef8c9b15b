// NumPy .npy files: read format versions 1.0, 2.0 and 3.0, little- and big-endian, C and
// Fortran order, dtypes float32, float64, float16, int8, uint8, int16, uint16, int32, int64 and
// bool; write version 1.0 (2.0 when
// the header needs it), little-endian, C order, atomically (temp file + rename). Every
// malformed or hostile file (bad magic, truncated header or data, header length past the end,
// unknown keys, unsupported dtype, negative or overflowing shape) is an amctq::error with
// errc::parse naming the file and the problem.
#ifndef AMCTQ_IO_NPY_HPP
#define AMCTQ_IO_NPY_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/tensor.hpp"
#include "amctq/io/atomic_file.hpp"
#include "amctq/io/detail/quote.hpp"

namespace amctq::io {

namespace detail {

struct npy_header {
  graph::dtype type = graph::dtype::float32;
  bool big_endian = false;
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
};

// A cursor over the header's Python dict literal.
class npy_dict_parser {
 public:
  npy_dict_parser(const std::string& text, const std::string& what) : s_(text), what_(what) {}

  npy_header parse() {
    npy_header h;
    bool has_descr = false, has_order = false, has_shape = false;
    expect('{');
    for (;;) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = quoted();
      expect(':');
      if (key == "descr") {
        parse_descr(quoted(), h);
        has_descr = true;
      } else if (key == "fortran_order") {
        skip_space();
        if (s_.compare(pos_, 4, "True") == 0) {
          h.fortran_order = true;
          pos_ += 4;
        } else if (s_.compare(pos_, 5, "False") == 0) {
          pos_ += 5;
        } else {
          fail("fortran_order must be True or False");
        }
        has_order = true;
      } else if (key == "shape") {
        h.shape = tuple();
        has_shape = true;
      } else {
        fail("unknown header key '" + clip(key) + "'");
      }
      skip_space();
      if (peek() == ',') ++pos_;
    }
    AMCTQ_CHECK(has_descr && has_order && has_shape, errc::parse, "read_npy", what_,
                ": header lacks ", !has_descr ? "'descr'" : !has_order ? "'fortran_order'" : "'shape'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    // Quote the header from a little before the offset, at most quote_limit characters of it.
    const std::size_t from = pos_ > quote_limit / 2 ? pos_ - quote_limit / 2 : 0;
    AMCTQ_THROW(errc::parse, "read_npy", what_, ": header ", msg, " (at offset ", pos_, " of '", from ? "..." : "",
                clip(std::string_view(s_).substr(std::min(from, s_.size()))), "')");
  }
  char peek() {
    if (pos_ >= s_.size()) fail("ends early");
    return s_[pos_];
  }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string quoted() {
    skip_space();
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    const std::size_t end = s_.find(q, pos_ + 1);
    if (end == std::string::npos) fail("has an unterminated string");
    std::string out = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return out;
  }
  std::vector<std::int64_t> tuple() {
    expect('(');
    std::vector<std::int64_t> dims;
    for (;;) {
      skip_space();
      if (peek() == ')') {
        ++pos_;
        return dims;
      }
      if (!(peek() >= '0' && peek() <= '9')) fail("shape entries must be non-negative integers");
      std::int64_t v = 0;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
        if (v > (std::numeric_limits<std::int64_t>::max() - 9) / 10) fail("has a shape entry that overflows");
        v = v * 10 + (s_[pos_++] - '0');
      }
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == 'L') ++pos_;  // Python 2 longs
      dims.push_back(v);
      if (dims.size() > 32) fail("has more than 32 dimensions");
      skip_space();
      if (peek() == ',') ++pos_;
      else if (peek() != ')') fail("expected ',' or ')' in shape");
    }
  }
  void parse_descr(const std::string& d, npy_header& h) {
    if (d.size() < 3) fail("has an unsupported descr '" + clip(d) + "'");
    const char order = d[0];
    if (order != '<' && order != '>' && order != '|' && order != '=') fail("descr '" + clip(d) + "' has no byte order");
    h.big_endian = order == '>';
    const std::string t = d.substr(1);
    if (t == "f4") h.type = graph::dtype::float32;
    else if (t == "f2") h.type = graph::dtype::float16;
    else if (t == "i1") h.type = graph::dtype::int8;
    else if (t == "u1") h.type = graph::dtype::uint8;
    else if (t == "i4") h.type = graph::dtype::int32;
    else if (t == "i8") h.type = graph::dtype::int64;
    else if (t == "f8") h.type = graph::dtype::float64;
    else if (t == "i2") h.type = graph::dtype::int16;
    else if (t == "u2") h.type = graph::dtype::uint16;
    else if (t == "b1") h.type = graph::dtype::boolean;
    else fail("dtype '" + clip(d) + "' is not supported (float32, float64, float16, int8, uint8, int16, uint16, int32, int64, bool)");
  }

  const std::string& s_;
  const std::string& what_;
  std::size_t pos_ = 0;
};

inline const char* npy_descr(graph::dtype t) {
  switch (t) {
    case graph::dtype::float32: return "<f4";
    case graph::dtype::float16: return "<f2";
    case graph::dtype::int8: return "|i1";
    case graph::dtype::uint8: return "|u1";
    case graph::dtype::int32: return "<i4";
    case graph::dtype::int64: return "<i8";
    case graph::dtype::float64: return "<f8";
    case graph::dtype::int16: return "<i2";
    case graph::dtype::uint16: return "<u2";
    case graph::dtype::boolean: return "|b1";
    default: return nullptr;
  }
}

inline std::uint32_t read_le(const unsigned char* p, int bytes) {
  std::uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace detail

/// Parses the bytes of a .npy file; `what` names it in errors.
/// Where a .npy image's array lies: its header, and its bytes at data + data_start.
struct npy_layout {
  detail::npy_header header;
  std::size_t data_start = 0;
  std::size_t count = 0;   ///< elements
  std::size_t nbytes = 0;  ///< count * element size
};

/// Checks a .npy image's magic, header and size; `what` names it in errors.
inline npy_layout parse_npy_layout(const unsigned char* data, std::size_t size, const std::string& what = "npy") {
  static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  AMCTQ_CHECK(size >= 10 && std::memcmp(data, magic, 6) == 0, errc::parse, "read_npy", what,
              ": not a .npy file (bad magic or shorter than 10 bytes)");
  const int major = data[6];
  AMCTQ_CHECK(major >= 1 && major <= 3, errc::parse, "read_npy", what, ": unsupported format version ", major, ".",
              static_cast<int>(data[7]));
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  AMCTQ_CHECK(size >= 8 + len_bytes, errc::parse, "read_npy", what, ": truncated header length");
  const std::size_t header_len = detail::read_le(data + 8, static_cast<int>(len_bytes));
  const std::size_t header_start = 8 + len_bytes;
  AMCTQ_CHECK(header_len <= size - header_start, errc::parse, "read_npy", what, ": header length ", header_len,
              " runs past the end of the file (", size, " bytes)");
  const std::string text(reinterpret_cast<const char*>(data + header_start), header_len);
  npy_layout l;
  l.header = detail::npy_dict_parser(text, what).parse();
  const std::size_t esize = graph::element_size(l.header.type);
  l.count = 1;
  for (std::int64_t d : l.header.shape) {
    AMCTQ_CHECK(d == 0 || l.count <= std::numeric_limits<std::size_t>::max() / esize / static_cast<std::size_t>(d),
                errc::parse, "read_npy", what, ": shape is too large");
    l.count *= static_cast<std::size_t>(d);
  }
  l.data_start = header_start + header_len;
  l.nbytes = l.count * esize;
  AMCTQ_CHECK(size - l.data_start >= l.nbytes, errc::parse, "read_npy", what, ": data is truncated: shape needs ",
              l.nbytes, " bytes, the file has ", size - l.data_start);
  return l;
}

/// Whether rows (first-axis slices) of the array are contiguous in the file.
inline bool npy_rows_contiguous(const npy_layout& l) { return !l.header.fortran_order || l.header.shape.size() < 2; }

/// Elements [first, first + count) of a C-order array (rows_contiguous) as a tensor of `shape`,
/// byte order fixed.
inline graph::tensor npy_elements(const unsigned char* data, const npy_layout& l, std::size_t first, std::size_t count,
                                  std::vector<std::int64_t> shape) {
  const std::size_t esize = graph::element_size(l.header.type);
  std::vector<std::byte> bytes(count * esize);
  if (!bytes.empty()) std::memcpy(bytes.data(), data + l.data_start + first * esize, bytes.size());
  if (l.header.big_endian && esize > 1)
    for (std::size_t c = 0; c < count; ++c) std::reverse(bytes.begin() + c * esize, bytes.begin() + (c + 1) * esize);
  return graph::tensor(l.header.type, std::move(shape), std::move(bytes));
}

inline graph::tensor parse_npy(const unsigned char* data, std::size_t size, const std::string& what = "npy") {
  const npy_layout l = parse_npy_layout(data, size, what);
  const detail::npy_header& h = l.header;
  if (npy_rows_contiguous(l)) return npy_elements(data, l, 0, l.count, h.shape);
  // Fortran order: element (i0, .., ik) sits at i0 + d0 * (i1 + d1 * ...); walk C order.
  const std::size_t esize = graph::element_size(h.type), rank = h.shape.size();
  std::vector<std::byte> bytes(l.nbytes);
  const unsigned char* src = data + l.data_start;
  std::vector<std::size_t> fstride(rank), idx(rank, 0);
  std::size_t acc = 1;
  for (std::size_t r = 0; r < rank; ++r) {
    fstride[r] = acc;
    acc *= static_cast<std::size_t>(h.shape[r]);
  }
  std::size_t off = 0;
  for (std::size_t c = 0; c < l.count; ++c) {
    std::memcpy(bytes.data() + c * esize, src + off * esize, esize);
    for (std::size_t r = rank; r-- > 0;) {
      ++idx[r];
      off += fstride[r];
      if (idx[r] < static_cast<std::size_t>(h.shape[r])) break;
      off -= fstride[r] * idx[r];
      idx[r] = 0;
    }
  }
  if (h.big_endian && esize > 1)
    for (std::size_t c = 0; c < l.count; ++c) std::reverse(bytes.begin() + c * esize, bytes.begin() + (c + 1) * esize);
  return graph::tensor(h.type, h.shape, std::move(bytes));
}

/// Reads a .npy file. Throws io when it cannot be read, parse when it is malformed.
inline graph::tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  AMCTQ_CHECK(in.good(), errc::io, "read_npy", "cannot open '", path, "'");
  std::vector<unsigned char> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  AMCTQ_CHECK(!in.bad(), errc::io, "read_npy", "cannot read '", path, "'");
  return parse_npy(buf.data(), buf.size(), "'" + path + "'");
}

/// The bytes of a version 1.0 (2.0 if the header needs it) little-endian C-order .npy file.
inline std::vector<unsigned char> serialize_npy(const graph::tensor& t) {
  const char* descr = detail::npy_descr(t.type());
  AMCTQ_CHECK(descr != nullptr, errc::unsupported, "write_npy", "dtype ", graph::to_string(t.type()),
              " cannot be written (float32, float16, int8, uint8, int32, int64)");
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (";
  for (std::size_t r = 0; r < t.rank(); ++r) header += std::to_string(t.dim(r)) + (t.rank() == 1 ? "," : r + 1 < t.rank() ? ", " : "");
  header += "), }";
  const bool v2 = header.size() + 1 + 10 > 65535;
  const std::size_t prefix = v2 ? 12 : 10;
  const std::size_t padded = (prefix + header.size() + 1 + 63) / 64 * 64;  // 64-byte alignment of the data
  header.append(padded - prefix - header.size() - 1, ' ');
  header.push_back('\n');
  std::vector<unsigned char> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<unsigned char>(v2 ? 2 : 1), 0};
  const std::size_t hl = header.size();
  for (std::size_t i = 0; i < (v2 ? 4u : 2u); ++i) out.push_back(static_cast<unsigned char>((hl >> (8 * i)) & 0xffu));
  out.insert(out.end(), header.begin(), header.end());
  const auto* b = reinterpret_cast<const unsigned char*>(t.bytes().data());
  AMCTQ_CHECK(t.bytes().size() == t.size() * graph::element_size(t.type()), errc::invalid_argument, "write_npy",
              "tensor holds ", t.bytes().size(), " bytes for ", t.size(), " elements");
  out.insert(out.end(), b, b + t.bytes().size());
  return out;
}

/// Writes t atomically: a failed write never leaves a partial file at `path`.
inline void write_npy(const std::string& path, const graph::tensor& t) {
  const auto bytes = serialize_npy(t);
  write_file_atomic(path, bytes.data(), bytes.size());
}

/// The elements of t as float32 (float16, int8, uint8, int32, int64 converted).
inline std::vector<float> npy_to_float(const graph::tensor& t) {
  std::vector<float> out(t.size());
  const auto* b = reinterpret_cast<const unsigned char*>(t.bytes().data());
  for (std::size_t i = 0; i < out.size(); ++i) {
    switch (t.type()) {
      case graph::dtype::float32: std::memcpy(&out[i], b + 4 * i, 4); break;
      case graph::dtype::float16: {
        const unsigned h = b[2 * i] | (static_cast<unsigned>(b[2 * i + 1]) << 8);
        const int e = static_cast<int>((h >> 10) & 0x1f);
        const float m = static_cast<float>(h & 0x3ff);
        const float v = e == 0 ? std::ldexp(m, -24) : e == 31 ? (m == 0 ? INFINITY : NAN) : std::ldexp(m + 1024.0f, e - 25);
        out[i] = (h & 0x8000) ? -v : v;
        break;
      }
      case graph::dtype::int8: out[i] = static_cast<float>(static_cast<std::int8_t>(b[i])); break;
      case graph::dtype::uint8: out[i] = static_cast<float>(b[i]); break;
      case graph::dtype::int32: {
        std::int32_t v;
        std::memcpy(&v, b + 4 * i, 4);
        out[i] = static_cast<float>(v);
        break;
      }
      case graph::dtype::int64: {
        std::int64_t v;
        std::memcpy(&v, b + 8 * i, 8);
        out[i] = static_cast<float>(v);
        break;
      }
      default:
        AMCTQ_THROW(errc::unsupported, "npy_to_float", "dtype ", graph::to_string(t.type()), " has no float view");
    }
  }
  return out;
}

}  // namespace amctq::io

#endif  // AMCTQ_IO_NPY_HPP
