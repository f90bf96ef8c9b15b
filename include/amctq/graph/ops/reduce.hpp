// Reductions: ReduceSum / Mean / Max / Min / Prod / L1 / L2 / SumSquare / LogSum / LogSumExp
// (one driver; axes an attribute before opset 18 — 13 for ReduceSum — and an optional input
// after; keepdims; noop_with_empty_axes; an empty reduction gives the spec's identity value), and
// CumSum (exclusive, reverse). Float reductions accumulate in double.
#ifndef AMCTQ_GRAPH_OPS_REDUCE_HPP
#define AMCTQ_GRAPH_OPS_REDUCE_HPP

#include <cmath>
#include <limits>
#include <type_traits>

#include "amctq/graph/op_table.hpp"
#include "amctq/graph/ops/common.hpp"
#include "amctq/graph/ops/elementwise.hpp"

namespace amctq::graph::ops {

namespace detail {

enum class reduce_kind { sum, mean, max, min, prod, l1, l2, sum_square, log_sum, log_sum_exp };

/// Which axes a Reduce* node reduces: its output shape, and for each input dim the stride of
/// the output it accumulates into (0 along reduced dims); `count` elements fold into each output.
struct reduce_plan {
  std::vector<std::int64_t> out_shape;
  std::vector<std::int64_t> out_strides;
  std::int64_t count = 1;
};

inline reduce_plan plan_reduce(const context& c, const tensor& x, std::int64_t axes_input_from) {
  const auto rank = static_cast<std::int64_t>(x.rank());
  std::vector<std::int64_t> axes;
  bool noop = false;
  if (c.opset < axes_input_from) {
    c.require_inputs(1, 1);
    axes = c.n.get_ints("axes");
  } else {
    c.require_inputs(1, 2);
    if (c.has_input(1)) axes = int_values(c, c.input(1), "axes");
    noop = axes.empty() && c.n.get_int("noop_with_empty_axes", 0) != 0;
  }
  std::vector<bool> reduced(x.rank(), axes.empty() && !noop);
  for (auto a : axes) {
    const auto d = static_cast<std::size_t>(normalize_axis(c, a, rank));
    AMCTQ_CHECK(!reduced[d], errc::invalid_argument, c.where(), "axes repeat ", d);
    reduced[d] = true;
  }
  const bool keepdims = c.n.get_int("keepdims", 1) != 0;
  reduce_plan p;
  std::vector<std::int64_t> kept(x.rank());
  for (std::size_t d = 0; d < x.rank(); ++d) {
    kept[d] = reduced[d] ? 1 : x.dim(d);
    if (reduced[d]) p.count *= x.dim(d);
    if (!reduced[d] || keepdims) p.out_shape.push_back(kept[d]);
  }
  p.out_strides = strides_of(kept);
  for (std::size_t d = 0; d < x.rank(); ++d)
    if (reduced[d]) p.out_strides[d] = 0;
  return p;
}

/// Folds every element of x into acc[output offset] with fold(acc_slot, value, output offset).
template <class T, class A, class Fold>
void reduce_walk(const tensor& x, const reduce_plan& p, std::vector<A>& acc, Fold fold) {
  const T* px = x.data<T>();
  strided_walk<1>(x.shape(), {p.out_strides},
                  [&](std::int64_t o, const std::array<std::int64_t, 1>& off, std::int64_t n,
                      const std::array<std::int64_t, 1>& s) {
                    for (std::int64_t i = 0; i < n; ++i) {
                      const std::int64_t j = off[0] + i * s[0];
                      fold(acc[static_cast<std::size_t>(j)], px[o + i], j);
                    }
                  });
}

template <reduce_kind K>
void reduce(context& c) {
  const tensor& x = c.input(0);
  const reduce_plan p = plan_reduce(c, x, K == reduce_kind::sum ? 13 : 18);
  tensor& y = c.make_output(0, x.type(), p.out_shape);
  if constexpr (K == reduce_kind::max || K == reduce_kind::min) {
    if (x.type() == dtype::boolean) {  // opset 20: any / all
      std::vector<bool> acc(y.size(), K == reduce_kind::min);
      reduce_walk<bool>(x, p, acc, [](auto&& a, bool v, std::int64_t) { a = K == reduce_kind::max ? (a || v) : (a && v); });
      std::copy(acc.begin(), acc.end(), y.data<bool>());
      return;
    }
  }
  visit_numeric(c, x.type(), [&](auto tag) {
    using T = decltype(tag);
    using A = std::conditional_t<std::is_floating_point_v<T>, double, T>;
    constexpr bool is_extreme = K == reduce_kind::max || K == reduce_kind::min || K == reduce_kind::log_sum_exp;
    A init = A(0);
    if constexpr (K == reduce_kind::prod) init = A(1);
    if constexpr (is_extreme) {
      const bool low = K != reduce_kind::min;  // max and the log-sum-exp shift start low
      if constexpr (std::numeric_limits<A>::has_infinity)
        init = low ? -std::numeric_limits<A>::infinity() : std::numeric_limits<A>::infinity();
      else
        init = low ? std::numeric_limits<A>::lowest() : std::numeric_limits<A>::max();
    }
    std::vector<A> acc(y.size(), init);
    if constexpr (is_extreme) {
      const extreme_op<K != reduce_kind::min> pick;
      reduce_walk<T>(x, p, acc, [&](A& a, T v, std::int64_t) { a = pick(a, static_cast<A>(v)); });
    }
    if constexpr (K == reduce_kind::log_sum_exp) {
      std::vector<A> shift = std::move(acc);  // log(sum(exp(x - max))) + max, stable for large x
      for (auto& s : shift)
        if (!std::isfinite(static_cast<double>(s))) s = A(0);
      acc.assign(y.size(), A(0));
      reduce_walk<T>(x, p, acc, [&](A& a, T v, std::int64_t j) {
        a += static_cast<A>(std::exp(static_cast<double>(v) - static_cast<double>(shift[static_cast<std::size_t>(j)])));
      });
      T* py = y.data<T>();
      for (std::size_t j = 0; j < y.size(); ++j)
        py[j] = static_cast<T>(std::log(static_cast<double>(acc[j])) + static_cast<double>(shift[j]));
      return;
    }
    if constexpr (!is_extreme) {
      reduce_walk<T>(x, p, acc, [](A& a, T v, std::int64_t) {
        const A w = static_cast<A>(v);
        if constexpr (K == reduce_kind::prod) a = static_cast<A>(a * w);
        else if constexpr (K == reduce_kind::l1) a = static_cast<A>(a + (w < A(0) ? A(0) - w : w));
        else if constexpr (K == reduce_kind::l2 || K == reduce_kind::sum_square) a = static_cast<A>(a + w * w);
        else a = static_cast<A>(a + w);
      });
    }
    T* py = y.data<T>();
    for (std::size_t j = 0; j < y.size(); ++j) {
      if constexpr (K == reduce_kind::mean) {
        if constexpr (std::is_floating_point_v<A>) py[j] = static_cast<T>(acc[j] / static_cast<A>(p.count));
        else py[j] = p.count ? static_cast<T>(acc[j] / static_cast<A>(p.count)) : T(0);
      } else if constexpr (K == reduce_kind::l2) {
        py[j] = static_cast<T>(std::sqrt(static_cast<double>(acc[j])));
      } else if constexpr (K == reduce_kind::log_sum) {
        py[j] = static_cast<T>(std::log(static_cast<double>(acc[j])));
      } else {
        py[j] = static_cast<T>(acc[j]);
      }
    }
  });
}

}  // namespace detail

inline void reduce_sum(context& c) { detail::reduce<detail::reduce_kind::sum>(c); }
inline void reduce_mean(context& c) { detail::reduce<detail::reduce_kind::mean>(c); }
inline void reduce_max(context& c) { detail::reduce<detail::reduce_kind::max>(c); }
inline void reduce_min(context& c) { detail::reduce<detail::reduce_kind::min>(c); }
inline void reduce_prod(context& c) { detail::reduce<detail::reduce_kind::prod>(c); }
inline void reduce_l1(context& c) { detail::reduce<detail::reduce_kind::l1>(c); }
inline void reduce_l2(context& c) { detail::reduce<detail::reduce_kind::l2>(c); }
inline void reduce_sum_square(context& c) { detail::reduce<detail::reduce_kind::sum_square>(c); }
inline void reduce_log_sum(context& c) { detail::reduce<detail::reduce_kind::log_sum>(c); }
inline void reduce_log_sum_exp(context& c) { detail::reduce<detail::reduce_kind::log_sum_exp>(c); }

/// CumSum along the axis input (a scalar), optionally exclusive and / or from the end.
inline void cumsum(context& c) {
  c.require_inputs(2, 2);
  const tensor& x = c.input(0);
  const auto ax = int_values(c, c.input(1), "axis");
  AMCTQ_CHECK(ax.size() == 1, errc::invalid_argument, c.where(), "axis must hold one value, has ", ax.size());
  const auto rank = static_cast<std::int64_t>(x.rank());
  const auto axis = static_cast<std::size_t>(normalize_axis(c, ax[0], rank));
  const bool exclusive = c.n.get_int("exclusive", 0) != 0, reverse = c.n.get_int("reverse", 0) != 0;
  std::int64_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < axis; ++d) outer *= x.dim(d);
  for (std::size_t d = axis + 1; d < x.rank(); ++d) inner *= x.dim(d);
  const std::int64_t n = x.rank() ? x.dim(axis) : 1;
  tensor& y = c.make_output(0, x.type(), x.shape());
  visit_numeric(c, x.type(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t i = 0; i < inner; ++i) {
        T run = T(0);
        for (std::int64_t k = 0; k < n; ++k) {
          const std::int64_t e = o * n * inner + (reverse ? n - 1 - k : k) * inner + i;
          if (exclusive) {
            py[e] = run;
            run = static_cast<T>(run + px[e]);
          } else {
            run = static_cast<T>(run + px[e]);
            py[e] = run;
          }
        }
      }
  });
}

/// The reduction ops, by op_type (default domain). Adding one: its function above and one entry here.
inline op_table reduce_ops() {
  return {
      {"ReduceSum", reduce_sum}, {"ReduceMean", reduce_mean}, {"ReduceMax", reduce_max},
      {"ReduceMin", reduce_min}, {"ReduceProd", reduce_prod}, {"ReduceL1", reduce_l1},
      {"ReduceL2", reduce_l2}, {"ReduceSumSquare", reduce_sum_square}, {"ReduceLogSum", reduce_log_sum},
      {"ReduceLogSumExp", reduce_log_sum_exp}, {"CumSum", cumsum}};
}

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_REDUCE_HPP
