// graph::tensor: an owning, dense, row-major tensor with an ONNX element type — what
// initializers, executor values and .npy / ONNX files hold. Kernels see it through view<T, R>().
#ifndef AMCTQ_GRAPH_TENSOR_HPP
#define AMCTQ_GRAPH_TENSOR_HPP

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/tensor_view.hpp"

namespace amctq::graph {

/// ONNX TensorProto.DataType codes.
enum class dtype : int {
  undefined = 0, float32 = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7, string = 8,
  boolean = 9, float16 = 10, float64 = 11, uint32 = 12, uint64 = 13, complex64 = 14, complex128 = 15,
  bfloat16 = 16, float8e4m3fn = 17, float8e4m3fnuz = 18, float8e5m2 = 19, float8e5m2fnuz = 20, uint4 = 21,
  int4 = 22, float4e2m1 = 23
};

/// Types that pack two elements per byte.
inline bool is_packed_4bit(dtype t) noexcept {
  return t == dtype::int4 || t == dtype::uint4 || t == dtype::float4e2m1;
}

/// Bytes per element; 0 for string and undefined; 4-bit types report 1 and are packed by
/// storage_bytes().
inline std::size_t element_size(dtype t) noexcept {
  switch (t) {
    case dtype::float32: case dtype::int32: case dtype::uint32: return 4;
    case dtype::uint8: case dtype::int8: case dtype::boolean: case dtype::uint4: case dtype::int4: return 1;
    case dtype::float8e4m3fn: case dtype::float8e4m3fnuz: case dtype::float8e5m2: case dtype::float8e5m2fnuz:
    case dtype::float4e2m1: return 1;
    case dtype::uint16: case dtype::int16: case dtype::float16: case dtype::bfloat16: return 2;
    case dtype::int64: case dtype::float64: case dtype::uint64: case dtype::complex64: return 8;
    case dtype::complex128: return 16;
    default: return 0;
  }
}

inline const char* to_string(dtype t) noexcept {
  switch (t) {
    case dtype::float32: return "float32"; case dtype::uint8: return "uint8"; case dtype::int8: return "int8";
    case dtype::uint16: return "uint16"; case dtype::int16: return "int16"; case dtype::int32: return "int32";
    case dtype::int64: return "int64"; case dtype::string: return "string"; case dtype::boolean: return "bool";
    case dtype::float16: return "float16"; case dtype::float64: return "float64"; case dtype::uint32: return "uint32";
    case dtype::uint64: return "uint64"; case dtype::bfloat16: return "bfloat16"; case dtype::uint4: return "uint4";
    case dtype::int4: return "int4"; case dtype::complex64: return "complex64";
    case dtype::complex128: return "complex128"; case dtype::float8e4m3fn: return "float8e4m3fn";
    case dtype::float8e4m3fnuz: return "float8e4m3fnuz"; case dtype::float8e5m2: return "float8e5m2";
    case dtype::float8e5m2fnuz: return "float8e5m2fnuz"; case dtype::float4e2m1: return "float4e2m1";
    default: return "undefined";
  }
}

template <class T>
constexpr dtype dtype_of() {
  if constexpr (std::is_same_v<T, float>) return dtype::float32;
  else if constexpr (std::is_same_v<T, double>) return dtype::float64;
  else if constexpr (std::is_same_v<T, std::int8_t>) return dtype::int8;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return dtype::uint8;
  else if constexpr (std::is_same_v<T, std::int16_t>) return dtype::int16;
  else if constexpr (std::is_same_v<T, std::uint16_t>) return dtype::uint16;
  else if constexpr (std::is_same_v<T, std::int32_t>) return dtype::int32;
  else if constexpr (std::is_same_v<T, std::uint32_t>) return dtype::uint32;
  else if constexpr (std::is_same_v<T, std::int64_t>) return dtype::int64;
  else if constexpr (std::is_same_v<T, std::uint64_t>) return dtype::uint64;
  else if constexpr (std::is_same_v<T, bool>) return dtype::boolean;
  else static_assert(!sizeof(T), "no ONNX dtype for this C++ type");
}

/// The most elements a shape may describe: far beyond any memory, and small enough that the
/// count of elements, and of their bytes, cannot overflow 64 bits.
inline constexpr std::uint64_t max_elements = std::uint64_t{1} << 59;

/// Element count of a shape; nullopt when a dimension is negative or the count passes
/// max_elements (checked before each product, so it never wraps).
inline std::optional<std::uint64_t> element_count(const std::vector<std::int64_t>& shape) noexcept {
  std::uint64_t n = 1;
  for (auto d : shape) {
    if (d < 0) return std::nullopt;
    const auto u = static_cast<std::uint64_t>(d);
    if (u != 0 && n > max_elements / u) return std::nullopt;
    n *= u;
  }
  return n;
}

class tensor {
 public:
  tensor() = default;
  tensor(dtype type, std::vector<std::int64_t> shape) : type_(type), shape_(std::move(shape)) {
    check_shape(shape_);
    bytes_.resize(storage_bytes());
  }
  /// Adopts `bytes` as the storage (no zero-fill, no copy): what readers use to fill a
  /// tensor straight from a file.
  tensor(dtype type, std::vector<std::int64_t> shape, std::vector<std::byte> bytes)
      : type_(type), shape_(std::move(shape)), bytes_(std::move(bytes)) {
    check_shape(shape_);
    AMCTQ_CHECK(bytes_.size() == storage_bytes(), errc::shape_mismatch, "tensor", "shape of ", size(), " ",
                to_string(type_), " elements needs ", storage_bytes(), " bytes, got ", bytes_.size());
  }
  /// A string tensor (dtype::string): elements are byte strings, kept in strings().
  tensor(std::vector<std::int64_t> shape, std::vector<std::string> strings)
      : type_(dtype::string), shape_(std::move(shape)), strings_(std::move(strings)) {
    check_shape(shape_);
    AMCTQ_CHECK(strings_.size() == size(), errc::shape_mismatch, "tensor", "shape holds ", size(),
                " elements but ", strings_.size(), " strings were given");
  }

  template <class T>
  static tensor from(std::vector<std::int64_t> shape, const std::vector<T>& values) {
    tensor t(dtype_of<T>(), std::move(shape));
    AMCTQ_CHECK(values.size() == t.size(), errc::shape_mismatch, "tensor::from", "shape holds ", t.size(),
                " elements but ", values.size(), " values were given");
    if (!values.empty()) std::memcpy(t.bytes_.data(), values.data(), values.size() * sizeof(T));
    return t;
  }

  /// Refuses negative dimensions and shapes of more than max_elements: a hostile model's
  /// Reshape to [2^62, 4] must fail here, not wrap the element count to a small buffer.
  static void check_shape(const std::vector<std::int64_t>& shape) {
    for (auto d : shape) AMCTQ_CHECK(d >= 0, errc::invalid_argument, "tensor", "negative dimension ", d);
    AMCTQ_CHECK(element_count(shape).has_value(), errc::invalid_argument, "tensor", "a shape of rank ", shape.size(),
                " holds more than 2^59 elements");
  }

  dtype type() const noexcept { return type_; }
  const std::vector<std::int64_t>& shape() const noexcept { return shape_; }
  std::size_t rank() const noexcept { return shape_.size(); }
  std::int64_t dim(std::size_t i) const noexcept { return shape_[i]; }

  /// Number of elements (1 for a scalar of rank 0).
  std::size_t size() const noexcept {
    std::size_t n = 1;
    for (auto d : shape_) n *= static_cast<std::size_t>(d);
    return n;
  }
  /// Bytes of raw storage; 4-bit types pack two elements per byte.
  std::size_t storage_bytes() const noexcept {
    if (is_packed_4bit(type_)) return (size() + 1) / 2;
    return size() * element_size(type_);
  }

  std::vector<std::byte>& bytes() noexcept { return bytes_; }
  const std::vector<std::byte>& bytes() const noexcept { return bytes_; }
  /// Elements of a dtype::string tensor (empty for every other type).
  std::vector<std::string>& strings() noexcept { return strings_; }
  const std::vector<std::string>& strings() const noexcept { return strings_; }

  /// Typed element pointer; throws unless T matches the element type.
  template <class T>
  T* data() {
    check_type<T>();
    return reinterpret_cast<T*>(bytes_.data());
  }
  template <class T>
  const T* data() const {
    check_type<T>();
    return reinterpret_cast<const T*>(bytes_.data());
  }

  /// A rank-R view; throws unless T and R match.
  template <class T, std::size_t R>
  tensor_view<T, R> view() {
    return tensor_view<T, R>(data<T>(), extents<R>());
  }
  template <class T, std::size_t R>
  tensor_view<const T, R> view() const {
    return tensor_view<const T, R>(data<T>(), extents<R>());
  }

  /// Same data, new shape with the same element count.
  void reshape(std::vector<std::int64_t> shape) {
    check_shape(shape);
    const std::uint64_t n = *element_count(shape);
    AMCTQ_CHECK(n == size(), errc::shape_mismatch, "tensor::reshape", "cannot reshape ", size(),
                " elements to a shape of ", n);
    shape_ = std::move(shape);
  }

  bool operator==(const tensor& o) const {
    return type_ == o.type_ && shape_ == o.shape_ && bytes_ == o.bytes_ && strings_ == o.strings_;
  }
  bool operator!=(const tensor& o) const { return !(*this == o); }

 private:
  template <class T>
  void check_type() const {
    AMCTQ_CHECK(dtype_of<std::remove_const_t<T>>() == type_, errc::invalid_argument, "tensor::data",
                "tensor holds ", to_string(type_), ", not ", to_string(dtype_of<std::remove_const_t<T>>()));
  }
  template <std::size_t R>
  std::array<std::ptrdiff_t, R> extents() const {
    AMCTQ_CHECK(shape_.size() == R || (R == 1 && shape_.empty()), errc::shape_mismatch, "tensor::view",
                "tensor has rank ", shape_.size(), ", view asks for ", R);
    std::array<std::ptrdiff_t, R> e{};
    if (shape_.empty()) e[0] = 1;
    for (std::size_t i = 0; i < shape_.size(); ++i) e[i] = static_cast<std::ptrdiff_t>(shape_[i]);
    return e;
  }

  dtype type_ = dtype::undefined;
  std::vector<std::int64_t> shape_;
  std::vector<std::byte> bytes_;
  std::vector<std::string> strings_;
};

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_TENSOR_HPP
