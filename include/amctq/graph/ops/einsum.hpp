// Einsum: any equation numpy accepts (explicit or implicit output, ellipsis with broadcasting,
// repeated labels as diagonals, summed labels). Two-operand contractions without diagonals or
// broadcasting (attention's "bhqd,bhkd->bhqk", "bij,bjk->bik", ...) run as batched Eigen GEMMs;
// everything else runs a direct loop over the labels, accumulating floats in double.
#ifndef AMCTQ_GRAPH_OPS_EINSUM_HPP
#define AMCTQ_GRAPH_OPS_EINSUM_HPP

#include <Eigen/Core>
#include <algorithm>
#include <cctype>
#include <string>
#include <type_traits>

#include "amctq/graph/op_table.hpp"
#include "amctq/graph/ops/common.hpp"

namespace amctq::graph::ops {

namespace detail {

/// An equation resolved against its operands: labels are small ints (letters 0..51, ellipsis
/// dims 52 + k); per label its size, per operand and label the element stride (summed over a
/// repeated label, 0 where the operand broadcasts it).
struct einsum_plan {
  std::vector<std::vector<int>> in_labels;
  std::vector<int> out_labels;
  std::vector<std::int64_t> size;                 // by label
  std::vector<std::vector<std::int64_t>> stride;  // [operand][label]
  bool simple = true;                             // no repeated, broadcast or single-operand summed labels
};

inline einsum_plan plan_einsum(const context& c, std::string eq) {
  eq.erase(std::remove_if(eq.begin(), eq.end(), [](unsigned char ch) { return std::isspace(ch) != 0; }), eq.end());
  const auto arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms;
  for (std::size_t b = 0;;) {
    const auto e = lhs.find(',', b);
    terms.push_back(lhs.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  AMCTQ_CHECK(terms.size() == c.num_inputs(), errc::invalid_argument, c.where(), "equation '", eq, "' has ",
              terms.size(), " operands, the node ", c.num_inputs(), " inputs");
  auto letter = [&](char ch) {
    AMCTQ_CHECK(std::isalpha(static_cast<unsigned char>(ch)), errc::invalid_argument, c.where(), "equation '", eq,
                "': '", ch, "' is not a label");
    return ch >= 'a' ? ch - 'a' : 26 + (ch - 'A');
  };
  // Labels of each term, with -1 standing for the ellipsis until its width is known.
  auto parse = [&](const std::string& t) {
    std::vector<int> v;
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (t.compare(i, 3, "...") == 0) {
        AMCTQ_CHECK(std::find(v.begin(), v.end(), -1) == v.end(), errc::invalid_argument, c.where(), "equation '", eq,
                    "' has two ellipses in one term");
        v.push_back(-1);
        i += 2;
      } else {
        v.push_back(letter(t[i]));
      }
    }
    return v;
  };
  einsum_plan p;
  std::int64_t ell = 0;  // ellipsis width: the widest operand's
  std::vector<std::vector<int>> raw;
  for (std::size_t k = 0; k < terms.size(); ++k) {
    raw.push_back(parse(terms[k]));
    const bool has_ell = std::find(raw[k].begin(), raw[k].end(), -1) != raw[k].end();
    const auto named = static_cast<std::int64_t>(raw[k].size()) - (has_ell ? 1 : 0);
    const auto rank = static_cast<std::int64_t>(c.input(k).rank());
    AMCTQ_CHECK(has_ell ? rank >= named : rank == named, errc::shape_mismatch, c.where(), "operand ", k, " ",
                shape_string(c.input(k).shape()), " does not match term '", terms[k], "'");
    if (has_ell) ell = std::max(ell, rank - named);
  }
  const auto n_labels = static_cast<std::size_t>(52 + ell);
  p.size.assign(n_labels, -1);
  p.stride.assign(terms.size(), std::vector<std::int64_t>(n_labels, 0));
  std::vector<int> count(n_labels, 0);
  for (std::size_t k = 0; k < terms.size(); ++k) {
    const tensor& x = c.input(k);
    const auto xs = strides_of(x.shape());
    std::vector<int> labels;
    for (int l : raw[k]) {
      if (l >= 0) labels.push_back(l);
      else
        for (auto w = static_cast<std::int64_t>(x.rank() + 1 - raw[k].size()), j = ell - w; j < ell; ++j)
          labels.push_back(static_cast<int>(52 + j));
    }
    std::vector<bool> seen(n_labels, false);
    for (std::size_t d = 0; d < labels.size(); ++d) {
      const auto l = static_cast<std::size_t>(labels[d]);
      const std::int64_t n = x.dim(d);
      if (seen[l]) p.simple = false;  // a diagonal
      seen[l] = true;
      ++count[l];
      if (p.size[l] < 0 || p.size[l] == 1) {
        if (p.size[l] == 1 && n != 1) p.simple = false;
        p.size[l] = n;
      } else if (n != p.size[l]) {
        AMCTQ_CHECK(n == 1, errc::shape_mismatch, c.where(), "label '", terms[k], "' dim ", d, " is ", n,
                    ", elsewhere ", p.size[l]);
        p.simple = false;
      }
      if (n != 1) p.stride[k][l] += xs[d];
    }
    p.in_labels.push_back(std::move(labels));
  }
  if (arrow != std::string::npos) {
    for (int l : parse(eq.substr(arrow + 2))) {
      if (l >= 0) {
        AMCTQ_CHECK(count[static_cast<std::size_t>(l)] > 0, errc::invalid_argument, c.where(), "equation '", eq,
                    "': an output label is in no input");
        p.out_labels.push_back(l);
      } else {
        for (std::int64_t j = 0; j < ell; ++j) p.out_labels.push_back(static_cast<int>(52 + j));
      }
    }
  } else {  // implicit: ellipsis dims, then the labels seen once, in alphabetical (ASCII) order
    for (std::int64_t j = 0; j < ell; ++j) p.out_labels.push_back(static_cast<int>(52 + j));
    for (int l : {26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51})
      if (count[static_cast<std::size_t>(l)] == 1) p.out_labels.push_back(l);
    for (int l = 0; l < 26; ++l)
      if (count[static_cast<std::size_t>(l)] == 1) p.out_labels.push_back(l);
  }
  // A label summed inside one operand, or a third operand, leaves the GEMM path.
  if (terms.size() != 2) p.simple = false;
  for (std::size_t l = 0; l < n_labels; ++l)
    if (count[l] == 1 && std::find(p.out_labels.begin(), p.out_labels.end(), static_cast<int>(l)) == p.out_labels.end())
      p.simple = false;
  return p;
}

/// Copies the elements `src` addresses with `strides` over `shape` into dense row-major `dst`.
template <class T>
void gather_strided(const T* src, const std::vector<std::int64_t>& shape, const std::vector<std::int64_t>& strides, T* dst) {
  strided_walk<1>(shape, {strides}, [&](std::int64_t o, const std::array<std::int64_t, 1>& off, std::int64_t n,
                                        const std::array<std::int64_t, 1>& s) {
    for (std::int64_t i = 0; i < n; ++i) dst[o + i] = src[off[0] + i * s[0]];
  });
}

/// The direct loop: every output element sums the product of the operands over the summed labels.
template <class T>
void einsum_loop(context& c, const einsum_plan& p, tensor& y) {
  using A = std::conditional_t<std::is_floating_point_v<T>, double, T>;
  std::vector<int> summed;
  for (std::size_t l = 0; l < p.size.size(); ++l)
    if (p.size[l] >= 0 && std::find(p.out_labels.begin(), p.out_labels.end(), static_cast<int>(l)) == p.out_labels.end())
      summed.push_back(static_cast<int>(l));
  const std::size_t K = c.num_inputs();
  std::vector<const T*> src(K);
  for (std::size_t k = 0; k < K; ++k) src[k] = c.input(k).data<T>();
  auto odometer = [&](const std::vector<int>& labels, std::vector<std::int64_t>& idx, std::vector<std::int64_t>& off) {
    for (std::size_t d = labels.size(); d-- > 0;) {
      const auto l = static_cast<std::size_t>(labels[d]);
      ++idx[d];
      for (std::size_t k = 0; k < K; ++k) off[k] += p.stride[k][l];
      if (idx[d] < p.size[l]) return;
      for (std::size_t k = 0; k < K; ++k) off[k] -= p.stride[k][l] * p.size[l];
      idx[d] = 0;
    }
  };
  std::int64_t inner = 1;
  for (int l : summed) inner *= p.size[static_cast<std::size_t>(l)];
  T* py = y.data<T>();
  std::vector<std::int64_t> oidx(p.out_labels.size(), 0), ooff(K, 0);
  for (std::size_t o = 0; o < y.size(); ++o, odometer(p.out_labels, oidx, ooff)) {
    A acc = A(0);
    std::vector<std::int64_t> sidx(summed.size(), 0), soff = ooff;
    for (std::int64_t s = 0; s < inner; ++s, odometer(summed, sidx, soff)) {
      A prod = A(1);
      for (std::size_t k = 0; k < K; ++k) prod = static_cast<A>(prod * static_cast<A>(src[k][soff[k]]));
      acc = static_cast<A>(acc + prod);
    }
    py[o] = static_cast<T>(acc);
  }
}

/// Two operands as batched GEMMs: A read as [batch, M, K], B as [batch, K, N] (in place, possibly
/// transposed, or gathered), the product [batch, M, N] scattered to the output's label order.
template <class T>
void einsum_gemm(context& c, const einsum_plan& p, tensor& y) {
  using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto& la = p.in_labels[0];
  const auto& lb = p.in_labels[1];
  auto in = [](const std::vector<int>& v, int l) { return std::find(v.begin(), v.end(), l) != v.end(); };
  std::vector<int> batch, m, n, k;
  for (int l : p.out_labels)
    if (in(la, l) && in(lb, l)) batch.push_back(l);
  for (int l : la)
    if (!in(lb, l)) m.push_back(l);
    else if (!in(p.out_labels, l)) k.push_back(l);
  for (int l : lb)
    if (!in(la, l)) n.push_back(l);
  auto extent = [&](const std::vector<int>& ls) {
    std::int64_t e = 1;
    for (int l : ls) e *= p.size[static_cast<std::size_t>(l)];
    return e;
  };
  const std::int64_t nb = extent(batch), M = extent(m), N = extent(n), Kd = extent(k);
  std::vector<T> abuf, bbuf;
  // Operand `op` as [batch, rows, cols] blocks: read in place when it is already dense in that
  // order, or in [batch, cols, rows] order (then used transposed: Q K^T reads K as stored), else
  // gathered into `buf`. Returns the pointer and whether the blocks are transposed.
  auto arrange = [&](std::size_t op, const std::vector<int>& rows, const std::vector<int>& cols,
                     std::vector<T>& buf) -> std::pair<const T*, bool> {
    auto layout = [&](const std::vector<int>& first, const std::vector<int>& second, std::vector<std::int64_t>& shape,
                      std::vector<std::int64_t>& strides) {
      shape.clear();
      strides.clear();
      std::vector<int> ls = batch;
      ls.insert(ls.end(), first.begin(), first.end());
      ls.insert(ls.end(), second.begin(), second.end());
      for (int l : ls) {
        shape.push_back(p.size[static_cast<std::size_t>(l)]);
        strides.push_back(p.stride[op][static_cast<std::size_t>(l)]);
      }
      const auto want = strides_of(shape);
      for (std::size_t d = 0; d < shape.size(); ++d)
        if (shape[d] != 1 && strides[d] != want[d]) return false;
      return true;
    };
    const T* src = c.input(op).data<T>();
    std::vector<std::int64_t> shape, strides;
    if (layout(rows, cols, shape, strides)) return {src, false};
    if (layout(cols, rows, shape, strides)) return {src, true};
    layout(rows, cols, shape, strides);
    buf.resize(static_cast<std::size_t>(numel(shape)));
    gather_strided(src, shape, strides, buf.data());
    return {buf.data(), false};
  };
  const auto [pa, ta] = arrange(0, m, k, abuf);
  const auto [pb, tb] = arrange(1, k, n, bbuf);
  std::vector<T> prod(static_cast<std::size_t>(nb * M * N));
  for (std::int64_t b = 0; b < nb; ++b) {
    Eigen::Map<matrix> out(prod.data() + b * M * N, M, N);
    const Eigen::Map<const matrix> am(pa + b * M * Kd, ta ? Kd : M, ta ? M : Kd);
    const Eigen::Map<const matrix> bm(pb + b * Kd * N, tb ? N : Kd, tb ? Kd : N);
    if (ta && tb) out.noalias() = am.transpose() * bm.transpose();
    else if (ta) out.noalias() = am.transpose() * bm;
    else if (tb) out.noalias() = am * bm.transpose();
    else out.noalias() = am * bm;
  }
  // The product's stride for each of its labels, read in output order.
  std::vector<int> porder = batch;
  porder.insert(porder.end(), m.begin(), m.end());
  porder.insert(porder.end(), n.begin(), n.end());
  std::vector<std::int64_t> pshape;
  for (int l : porder) pshape.push_back(p.size[static_cast<std::size_t>(l)]);
  const auto pstr = strides_of(pshape);
  std::vector<std::int64_t> strides;
  for (int l : p.out_labels)
    strides.push_back(pstr[static_cast<std::size_t>(std::find(porder.begin(), porder.end(), l) - porder.begin())]);
  gather_strided(prod.data(), y.shape(), strides, y.data<T>());
}

}  // namespace detail

inline void einsum(context& c) {
  AMCTQ_CHECK(c.num_inputs() >= 1, errc::invalid_argument, c.where(), "expects at least one input");
  const dtype t = c.input(0).type();
  for (std::size_t k = 1; k < c.num_inputs(); ++k)
    AMCTQ_CHECK(c.input(k).type() == t, errc::invalid_argument, c.where(), "input types differ");
  const auto eq = c.n.get_string("equation", "");
  AMCTQ_CHECK(!eq.empty(), errc::invalid_argument, c.where(), "attribute equation is required");
  const detail::einsum_plan p = detail::plan_einsum(c, eq);
  std::vector<std::int64_t> shape;
  for (int l : p.out_labels) shape.push_back(p.size[static_cast<std::size_t>(l)]);
  tensor& y = c.make_output(0, t, shape);
  visit_numeric(c, t, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      if (p.simple) return detail::einsum_gemm<T>(c, p, y);
    }
    detail::einsum_loop<T>(c, p, y);
  });
}

/// The einsum op, by op_type (default domain).
inline op_table einsum_ops() { return {{"Einsum", einsum}}; }

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_EINSUM_HPP
