// The protobuf wire format, by hand: a bounds-checked reader over a byte span (varint, zigzag,
// fixed32/64, length-delimited) and an appending writer. No libprotobuf, no schema: the ONNX
// reader and writer (io/onnx.hpp) drive these field by field.
#ifndef AMCTQ_IO_PROTOBUF_WIRE_HPP
#define AMCTQ_IO_PROTOBUF_WIRE_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "amctq/error.hpp"

namespace amctq::io::pb {

enum class wire_type : std::uint32_t { varint = 0, fixed64 = 1, len = 2, start_group = 3, end_group = 4, fixed32 = 5 };

inline const char* to_string(wire_type w) noexcept {
  switch (w) {
    case wire_type::varint: return "varint";
    case wire_type::fixed64: return "fixed64";
    case wire_type::len: return "length-delimited";
    case wire_type::start_group: return "start-group";
    case wire_type::end_group: return "end-group";
    case wire_type::fixed32: return "fixed32";
  }
  return "invalid";
}

constexpr std::int64_t zigzag_decode(std::uint64_t v) noexcept {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}
constexpr std::uint64_t zigzag_encode(std::int64_t v) noexcept {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}

/// A field key as read from the wire.
struct tag {
  std::uint32_t field = 0;
  wire_type type = wire_type::varint;
};

/// Reads one message's bytes. Every read checks the remaining length and throws
/// amctq::error(errc::parse) naming `what` (the message being read) on truncation or overflow.
class reader {
 public:
  reader(const std::byte* data, std::size_t size, const char* what = "message") noexcept
      : p_(reinterpret_cast<const std::uint8_t*>(data)),
        end_(reinterpret_cast<const std::uint8_t*>(data) + size),
        what_(what) {}

  bool done() const noexcept { return p_ == end_; }
  std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }
  const std::byte* position() const noexcept { return reinterpret_cast<const std::byte*>(p_); }
  const char* what() const noexcept { return what_; }

  /// Names where this message sits (e.g. "ModelProto.graph.node[3]") in error messages;
  /// called only when an error is raised.
  using describer = std::string (*)(const void*);
  void set_context(describer d, const void* ctx) noexcept {
    describe_ = d;
    ctx_ = ctx;
  }
  std::string where() const { return describe_ ? describe_(ctx_) : std::string(what_); }

  std::uint64_t read_varint() {
    std::uint64_t v = 0;
    // At most 10 bytes; the 10th may carry only the top bit of a 64-bit value.
    for (int i = 0; i < 10; ++i) {
      AMCTQ_CHECK(p_ != end_, errc::parse, where(), what_, ": truncated varint");
      const std::uint8_t b = *p_++;
      if (i == 9) AMCTQ_CHECK(b <= 1, errc::parse, where(), what_, ": varint longer than 10 bytes or over 64 bits");
      v |= static_cast<std::uint64_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) return v;
    }
    AMCTQ_THROW(errc::parse, where(), what_, ": varint longer than 10 bytes");
  }

  tag read_tag() {
    const std::uint64_t key = read_varint();
    const std::uint64_t field = key >> 3;
    const auto type = static_cast<std::uint32_t>(key & 7);
    AMCTQ_CHECK(field >= 1 && field <= 0x1fffffff, errc::parse, where(), what_, ": invalid field number ", field);
    AMCTQ_CHECK(type <= 5, errc::parse, where(), what_, ": invalid wire type ", type, " for field ", field);
    return tag{static_cast<std::uint32_t>(field), static_cast<wire_type>(type)};
  }

  std::uint32_t read_fixed32() {
    AMCTQ_CHECK(remaining() >= 4, errc::parse, where(), what_, ": truncated fixed32");
    std::uint32_t v;
    std::memcpy(&v, p_, 4);
    p_ += 4;
    return from_le(v);
  }
  std::uint64_t read_fixed64() {
    AMCTQ_CHECK(remaining() >= 8, errc::parse, where(), what_, ": truncated fixed64");
    std::uint64_t v;
    std::memcpy(&v, p_, 8);
    p_ += 8;
    return from_le(v);
  }
  float read_float() {
    const std::uint32_t bits = read_fixed32();
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  double read_double() {
    const std::uint64_t bits = read_fixed64();
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }

  /// A length-delimited payload as a span into the buffer (no copy).
  std::string_view read_bytes() {
    const std::uint64_t n = read_varint();
    AMCTQ_CHECK(n <= remaining(), errc::parse, where(), what_, ": length ", n, " runs past the end of the buffer (", remaining(),
                " bytes left)");
    std::string_view s(reinterpret_cast<const char*>(p_), static_cast<std::size_t>(n));
    p_ += n;
    return s;
  }

  /// Skips a field of any wire type; groups (deprecated) are skipped up to their matching end.
  void skip(tag t, int depth = 0) {
    switch (t.type) {
      case wire_type::varint: (void)read_varint(); return;
      case wire_type::fixed64: (void)read_fixed64(); return;
      case wire_type::fixed32: (void)read_fixed32(); return;
      case wire_type::len: (void)read_bytes(); return;
      case wire_type::start_group: {
        AMCTQ_CHECK(depth < 64, errc::parse, where(), what_, ": groups nested deeper than 64");
        for (;;) {
          const tag inner = read_tag();
          if (inner.type == wire_type::end_group) {
            AMCTQ_CHECK(inner.field == t.field, errc::parse, where(), what_, ": end-group ", inner.field, " closes group ",
                        t.field);
            return;
          }
          skip(inner, depth + 1);
        }
      }
      case wire_type::end_group: AMCTQ_THROW(errc::parse, where(), what_, ": unexpected end-group for field ", t.field);
    }
  }

 private:
  static std::uint32_t from_le(std::uint32_t v) noexcept {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return __builtin_bswap32(v);
#else
    return v;
#endif
  }
  static std::uint64_t from_le(std::uint64_t v) noexcept {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return __builtin_bswap64(v);
#else
    return v;
#endif
  }

  const std::uint8_t* p_;
  const std::uint8_t* end_;
  const char* what_;
  describer describe_ = nullptr;
  const void* ctx_ = nullptr;
};

/// Bytes a varint of v takes on the wire.
constexpr std::size_t varint_size(std::uint64_t v) noexcept {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

/// Encodes into any sink with `void put(const void*, size_t)`. A counting sink and a
/// buffer/file sink share the same encoder, so nested message lengths come from a dry run.
template <class Sink>
class writer {
 public:
  explicit writer(Sink& sink) noexcept : sink_(sink) {}
  Sink& sink() noexcept { return sink_; }

  void varint(std::uint64_t v) {
    std::uint8_t buf[10] = {};
    std::size_t n = 0;
    while (v >= 0x80) {
      buf[n++] = static_cast<std::uint8_t>(v | 0x80);
      v >>= 7;
    }
    buf[n++] = static_cast<std::uint8_t>(v);
    sink_.put(buf, n);
  }
  void key(std::uint32_t field, wire_type t) { varint((static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint32_t>(t)); }
  void fixed32(std::uint32_t v) {
    std::uint8_t b[4];
    for (int i = 0; i < 4; ++i) b[i] = static_cast<std::uint8_t>(v >> (8 * i));
    sink_.put(b, 4);
  }
  void fixed64(std::uint64_t v) {
    std::uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<std::uint8_t>(v >> (8 * i));
    sink_.put(b, 8);
  }

  // Field helpers. Proto3 semantics: callers decide whether a default value is written.
  void int_field(std::uint32_t field, std::int64_t v) {
    key(field, wire_type::varint);
    varint(static_cast<std::uint64_t>(v));
  }
  void float_field(std::uint32_t field, float f) {
    std::uint32_t bits;
    std::memcpy(&bits, &f, 4);
    key(field, wire_type::fixed32);
    fixed32(bits);
  }
  void bytes_field(std::uint32_t field, const void* data, std::size_t n) {
    key(field, wire_type::len);
    varint(n);
    if (n) sink_.put(data, n);
  }
  void string_field(std::uint32_t field, std::string_view s) { bytes_field(field, s.data(), s.size()); }
  /// Writes `s` only when non-empty (proto3 default elision).
  void string_if(std::uint32_t field, std::string_view s) {
    if (!s.empty()) string_field(field, s);
  }
  void packed_varints(std::uint32_t field, const std::vector<std::int64_t>& v) {
    if (v.empty()) return;
    std::size_t n = 0;
    for (auto x : v) n += varint_size(static_cast<std::uint64_t>(x));
    key(field, wire_type::len);
    varint(n);
    for (auto x : v) varint(static_cast<std::uint64_t>(x));
  }
  void packed_floats(std::uint32_t field, const std::vector<float>& v) {
    if (v.empty()) return;
    key(field, wire_type::len);
    varint(v.size() * 4);
    for (float f : v) {
      std::uint32_t bits;
      std::memcpy(&bits, &f, 4);
      fixed32(bits);
    }
  }
  /// Raw bytes already in wire form (preserved unknown fields).
  void raw(std::string_view bytes) {
    if (!bytes.empty()) sink_.put(bytes.data(), bytes.size());
  }

  /// Writes a nested message: `body(writer&)` runs once against a counting sink for the
  /// length prefix, then once for real.
  template <class Body>
  void message(std::uint32_t field, Body&& body) {
    key(field, wire_type::len);
    if constexpr (Sink::counting) {
      // The counting sink only needs the total: measure the body once.
      Sink inner;
      writer<Sink> w(inner);
      body(w);
      varint(inner.size);
      sink_.size += inner.size;
    } else {
      varint(measure(body));
      body(*this);
    }
  }

  template <class Body>
  static std::size_t measure(Body&& body);

 private:
  Sink& sink_;
};

/// Counts bytes without storing them.
struct counting_sink {
  static constexpr bool counting = true;
  std::size_t size = 0;
  void put(const void*, std::size_t n) noexcept { size += n; }
};

template <class Sink>
template <class Body>
std::size_t writer<Sink>::measure(Body&& body) {
  counting_sink c;
  writer<counting_sink> w(c);
  body(w);
  return c.size;
}

/// Appends to a byte vector.
struct vector_sink {
  static constexpr bool counting = false;
  std::vector<std::byte>* out;
  void put(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out->insert(out->end(), b, b + n);
  }
};

}  // namespace amctq::io::pb

#endif  // AMCTQ_IO_PROTOBUF_WIRE_HPP
