// tensor_view<T, Rank>: a non-owning strided view over external memory, with mdspan's names
// (extent, stride, data_handle). Const-ness travels in T: tensor_view<const float, 2>.
#ifndef AMCTQ_TENSOR_VIEW_HPP
#define AMCTQ_TENSOR_VIEW_HPP

#include <array>
#include <cstddef>
#include <initializer_list>
#include <type_traits>

#include "amctq/error.hpp"

namespace amctq {

template <class T, std::size_t Rank>
class tensor_view {
  static_assert(Rank >= 1, "tensor_view needs rank >= 1; view a scalar as rank 1 of extent 1.");

 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using index_type = std::ptrdiff_t;
  using extents_type = std::array<index_type, Rank>;

  constexpr tensor_view() noexcept : data_(nullptr), extents_{}, strides_{} {}

  /// Row-major (C order) view.
  constexpr tensor_view(T* data, const extents_type& extents) noexcept
      : data_(data), extents_(extents), strides_(row_major_strides(extents)) {}

  /// Arbitrary strides, counted in elements (not bytes); negative strides are allowed.
  constexpr tensor_view(T* data, const extents_type& extents, const extents_type& strides) noexcept
      : data_(data), extents_(extents), strides_(strides) {}

  /// A view of const T from a view of T.
  template <class U, class = std::enable_if_t<std::is_same_v<const U, T> && !std::is_same_v<U, T>>>
  constexpr tensor_view(const tensor_view<U, Rank>& other) noexcept
      : data_(other.data_handle()), extents_(other.extents()), strides_(other.strides()) {}

  static constexpr std::size_t rank() noexcept { return Rank; }
  constexpr T* data_handle() const noexcept { return data_; }
  constexpr index_type extent(std::size_t r) const noexcept { return extents_[r]; }
  constexpr index_type stride(std::size_t r) const noexcept { return strides_[r]; }
  constexpr const extents_type& extents() const noexcept { return extents_; }
  constexpr const extents_type& strides() const noexcept { return strides_; }

  constexpr index_type size() const noexcept {
    index_type n = 1;
    for (auto e : extents_) n *= e;
    return n;
  }
  constexpr bool empty() const noexcept { return size() == 0; }

  /// True when the elements are dense in row-major order (strides of a fresh C-order array).
  constexpr bool is_contiguous() const noexcept {
    index_type expected = 1;
    for (std::size_t r = Rank; r-- > 0;) {
      if (extents_[r] != 1 && strides_[r] != expected) return false;
      expected *= extents_[r];
    }
    return true;
  }

  template <class... I>
  constexpr T& operator()(I... idx) const noexcept {
    static_assert(sizeof...(I) == Rank, "tensor_view::operator() takes exactly Rank indices.");
    const index_type i[] = {static_cast<index_type>(idx)...};
    index_type off = 0;
    for (std::size_t r = 0; r < Rank; ++r) {
      AMCTQ_ASSERT(i[r] >= 0 && i[r] < extents_[r]);
      off += i[r] * strides_[r];
    }
    return data_[off];
  }

  static constexpr extents_type row_major_strides(const extents_type& extents) noexcept {
    extents_type s{};
    index_type acc = 1;
    for (std::size_t r = Rank; r-- > 0;) {
      s[r] = acc;
      acc *= extents[r];
    }
    return s;
  }

 private:
  T* data_;
  extents_type extents_;
  extents_type strides_;
};

/// Row-major view: make_view(ptr, {rows, cols}).
template <class T, std::size_t Rank>
constexpr tensor_view<T, Rank> make_view(T* data, const std::ptrdiff_t (&extents)[Rank]) noexcept {
  std::array<std::ptrdiff_t, Rank> e{};
  for (std::size_t r = 0; r < Rank; ++r) e[r] = extents[r];
  return tensor_view<T, Rank>(data, e);
}

/// Strided view; strides in elements.
template <class T, std::size_t Rank>
constexpr tensor_view<T, Rank> make_strided_view(T* data, const std::ptrdiff_t (&extents)[Rank],
                                                 const std::ptrdiff_t (&strides)[Rank]) noexcept {
  std::array<std::ptrdiff_t, Rank> e{}, s{};
  for (std::size_t r = 0; r < Rank; ++r) {
    e[r] = extents[r];
    s[r] = strides[r];
  }
  return tensor_view<T, Rank>(data, e, s);
}

/// Throws shape_mismatch unless a and b have the same extents.
template <class A, class B, std::size_t Rank>
void check_same_extents(const tensor_view<A, Rank>& a, const tensor_view<B, Rank>& b, const char* where,
                        const char* a_name = "input", const char* b_name = "output") {
  for (std::size_t r = 0; r < Rank; ++r)
    AMCTQ_CHECK(a.extent(r) == b.extent(r), errc::shape_mismatch, where, a_name, " and ", b_name,
                " differ in extent ", r, ": ", a.extent(r), " vs ", b.extent(r));
}

}  // namespace amctq

#endif  // AMCTQ_TENSOR_VIEW_HPP
