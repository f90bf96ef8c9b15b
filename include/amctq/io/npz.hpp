// NumPy .npz archives as numpy.savez writes them: a zip of NAME.npy members, stored without
// compression (numpy.savez_compressed's deflated members are refused with a clear error, since
// amctq reads without zlib). Zip64 records, which numpy writes for every member, are read. Every
// offset and size is checked against the file, so a truncated or hostile archive is an
// amctq::error with errc::parse naming the file and the problem, never a read past the end.
#ifndef AMCTQ_IO_NPZ_HPP
#define AMCTQ_IO_NPZ_HPP

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "amctq/error.hpp"
#include "amctq/graph/tensor.hpp"
#include "amctq/io/detail/mapped_file.hpp"
#include "amctq/io/npy.hpp"

namespace amctq::io {

namespace detail {

inline std::uint64_t zip_le(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace detail

/// A stored member of a .npz archive: its array's .npy image lies at data + start, size bytes.
struct npz_member {
  std::string name;  ///< the member name without ".npy"
  std::string file;  ///< the member name as stored
  std::size_t start = 0, size = 0;
};

/// The members of a .npz archive held in memory (`data`, `size`); `what` names the archive in errors.
inline std::vector<npz_member> npz_members(const unsigned char* data, std::size_t size, const std::string& what = "npz") {
  using detail::zip_le;
  auto fail = [&](const std::string& msg) -> void { AMCTQ_THROW(errc::parse, "read_npz", what, ": ", msg); };
  auto need = [&](std::uint64_t at, std::uint64_t n, const char* item) {
    if (at > size || n > size - at) fail(std::string("truncated archive: the ") + item + " runs past the end");
  };
  // End of central directory: 22 bytes, found from the end (a comment of up to 64 KiB may follow).
  if (size < 22) fail("not a zip archive (shorter than 22 bytes)");
  std::size_t eocd = size - 22;
  const std::size_t lowest = size > 22 + 65535 ? size - 22 - 65535 : 0;
  while (zip_le(data + eocd, 4) != 0x06054b50) {
    if (eocd == lowest) fail("not a zip archive (no end of central directory record)");
    --eocd;
  }
  std::uint64_t entries = zip_le(data + eocd + 10, 2);
  std::uint64_t cd_size = zip_le(data + eocd + 12, 4), cd_offset = zip_le(data + eocd + 16, 4);
  if (entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    // Zip64: the locator (20 bytes) stands just before the end record and points at the zip64 end record.
    if (eocd < 20 || zip_le(data + eocd - 20, 4) != 0x07064b50) fail("zip64 archive without its locator");
    const std::uint64_t z = zip_le(data + eocd - 20 + 8, 8);
    need(z, 56, "zip64 end record");
    if (zip_le(data + z, 4) != 0x06064b50) fail("bad zip64 end record");
    entries = zip_le(data + z + 32, 8);
    cd_size = zip_le(data + z + 40, 8);
    cd_offset = zip_le(data + z + 48, 8);
  }
  need(cd_offset, cd_size, "central directory");
  std::vector<npz_member> out;
  std::uint64_t at = cd_offset;
  for (std::uint64_t e = 0; e < entries; ++e) {
    need(at, 46, "central directory entry");
    const unsigned char* c = data + at;
    if (zip_le(c, 4) != 0x02014b50) fail("bad central directory entry " + std::to_string(e));
    const auto method = zip_le(c + 10, 2);
    std::uint64_t csize = zip_le(c + 20, 4), usize = zip_le(c + 24, 4), local = zip_le(c + 42, 4);
    const auto name_len = zip_le(c + 28, 2), extra_len = zip_le(c + 30, 2), comment_len = zip_le(c + 32, 2);
    need(at + 46, name_len + extra_len + comment_len, "central directory entry");
    const std::string name(reinterpret_cast<const char*>(c + 46), name_len);
    // Zip64 extra field (id 1): the 8-byte values of the 32-bit fields set to 0xFFFFFFFF, in order.
    for (std::uint64_t x = 0; x + 4 <= extra_len;) {
      const unsigned char* f = c + 46 + name_len + x;
      const auto id = zip_le(f, 2), len = zip_le(f + 2, 2);
      if (x + 4 + len > extra_len) fail("member '" + name + "' has a malformed extra field");
      if (id == 1) {
        std::uint64_t k = 0;
        for (std::uint64_t* v : {&usize, &csize, &local})
          if (*v == 0xFFFFFFFF) {
            if (k + 8 > len) fail("member '" + name + "' has a short zip64 field");
            *v = zip_le(f + 4 + k, 8);
            k += 8;
          }
      }
      x += 4 + len;
    }
    at += 46 + name_len + extra_len + comment_len;
    if (method != 0)
      fail("member '" + name + "' is compressed (method " + std::to_string(method) +
           "); write the archive with numpy.savez, not numpy.savez_compressed");
    if (csize != usize) fail("member '" + name + "' is stored with differing sizes");
    need(local, 30, "local header");
    if (zip_le(data + local, 4) != 0x04034b50) fail("member '" + name + "' has a bad local header");
    const std::uint64_t start = local + 30 + zip_le(data + local + 26, 2) + zip_le(data + local + 28, 2);
    need(start, usize, "member data");
    std::string key = name;
    if (key.size() > 4 && key.compare(key.size() - 4, 4, ".npy") == 0) key.resize(key.size() - 4);
    for (const auto& m : out)
      if (m.name == key) fail("holds the array '" + key + "' twice");
    out.push_back({key, name, static_cast<std::size_t>(start), static_cast<std::size_t>(usize)});
  }
  return out;
}

/// The arrays of a .npz archive held in memory (`data`, `size`), by name (the member name
/// without ".npy"); `what` names the archive in errors.
inline std::map<std::string, graph::tensor> parse_npz(const unsigned char* data, std::size_t size,
                                                      const std::string& what = "npz") {
  std::map<std::string, graph::tensor> out;
  for (const auto& m : npz_members(data, size, what))
    out.emplace(m.name, parse_npy(data + m.start, m.size, what + " member '" + m.file + "'"));
  return out;
}

/// Reads a .npz archive (numpy.savez): its arrays by name.
inline std::map<std::string, graph::tensor> read_npz(const std::string& path) {
  const detail::mapped_file f(path);
  return parse_npz(reinterpret_cast<const unsigned char*>(f.data()), f.size(), "'" + path + "'");
}

}  // namespace amctq::io

#endif  // AMCTQ_IO_NPZ_HPP
