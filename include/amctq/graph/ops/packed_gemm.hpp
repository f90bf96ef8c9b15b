// A GEMM on Eigen's own packing routines and micro-kernel (the ones Eigen's matrix product runs)
// whose constant operand is packed once and kept: Conv's and MatMul's weights are the same on
// every run, yet Eigen's product packs them again on every call — for a conv, once per block of
// output positions. The executor keeps the packed form per node (context::state).
//
// Everything is column-major in Eigen's sense: res (rows x cols) += lhs (rows x depth) *
// rhs (depth x cols). A row-major Y = W * X is the column-major Y^T = X^T * W^T.
#ifndef AMCTQ_GRAPH_OPS_PACKED_GEMM_HPP
#define AMCTQ_GRAPH_OPS_PACKED_GEMM_HPP

#include <algorithm>
#include <cstdint>
#include <cstddef>
#include <cstring>
#include <vector>

#include <Eigen/Core>

namespace amctq::graph::ops::detail {

struct gemm_kernels {
  using Index = Eigen::Index;
  using Traits = Eigen::internal::gebp_traits<float, float>;
  using Mapper = Eigen::internal::const_blas_data_mapper<float, Index, Eigen::ColMajor>;
  using ResMapper = Eigen::internal::blas_data_mapper<float, Index, Eigen::ColMajor, Eigen::Unaligned, 1>;
  using PackLhs = Eigen::internal::gemm_pack_lhs<float, Index, Mapper, Traits::mr, Traits::LhsProgress,
                                                 typename Traits::LhsPacket4Packing, Eigen::ColMajor>;
  using PackRhs = Eigen::internal::gemm_pack_rhs<float, Index, Mapper, Traits::nr, Eigen::ColMajor>;
  using Gebp = Eigen::internal::gebp_kernel<float, float, Index, ResMapper, Traits::mr, Traits::nr, false, false>;
};

using aligned_floats = std::vector<float, Eigen::aligned_allocator<float>>;

/// Cache blocking of a rows x depth x cols product, as Eigen's own product chooses it.
struct gemm_blocking {
  std::int64_t kc = 0, mc = 0;
  gemm_blocking(std::int64_t rows, std::int64_t depth, std::int64_t cols) {
    Eigen::Index k = depth, m = rows, n = cols;
    Eigen::internal::computeProductBlockingSizes<float, float, 1, Eigen::Index>(k, m, n, 1);
    kc = std::max<Eigen::Index>(k, 1);
    mc = std::max<Eigen::Index>(std::min<Eigen::Index>(m, rows), 1);
  }
};

/// Packed blocks start on 64-byte boundaries: packing stores and the kernel's loads are aligned.
inline std::int64_t padded(std::int64_t n) noexcept { return (n + 15) / 16 * 16; }

/// Floats the rhs (depth x cols) takes packed whole, in blocks of kc of its rows.
inline std::int64_t packed_rhs_size(std::int64_t depth, std::int64_t cols, std::int64_t kc) {
  std::int64_t n = 0;
  for (std::int64_t k2 = 0; k2 < depth; k2 += kc) n += padded(std::min(kc, depth - k2) * cols);
  return n;
}
/// The rhs (depth x cols, column-major, leading dimension ld) packed whole, kc rows at a time,
/// block after block.
inline void pack_rhs_blocks(const float* rhs, std::int64_t ld, std::int64_t depth, std::int64_t cols, std::int64_t kc,
                            float* out) {
  gemm_kernels::PackRhs pack;
  const gemm_kernels::Mapper m(rhs, ld);
  for (std::int64_t k2 = 0; k2 < depth; k2 += kc) {
    const std::int64_t n = std::min(kc, depth - k2);
    pack(out, m.getSubMapper(k2, 0), n, cols);
    out += padded(n * cols);
  }
}

/// Floats the lhs (rows x depth) takes packed whole in mc x kc blocks.
inline std::int64_t packed_lhs_size(std::int64_t rows, std::int64_t depth, const gemm_blocking& b) {
  std::int64_t n = 0;
  for (std::int64_t i2 = 0; i2 < rows; i2 += b.mc)
    for (std::int64_t k2 = 0; k2 < depth; k2 += b.kc) n += padded(std::min(b.kc, depth - k2) * std::min(b.mc, rows - i2));
  return n;
}
/// The lhs (rows x depth, column-major, leading dimension ld) packed whole in mc x kc blocks,
/// row blocks outer, depth blocks inner (packed_gemm's order).
inline void pack_lhs_blocks(const float* lhs, std::int64_t ld, std::int64_t rows, std::int64_t depth,
                            const gemm_blocking& b, float* out) {
  gemm_kernels::PackLhs pack;
  const gemm_kernels::Mapper m(lhs, ld);
  for (std::int64_t i2 = 0; i2 < rows; i2 += b.mc) {
    const std::int64_t mc = std::min(b.mc, rows - i2);
    for (std::int64_t k2 = 0; k2 < depth; k2 += b.kc) {
      const std::int64_t kc = std::min(b.kc, depth - k2);
      pack(out, m.getSubMapper(i2, k2), kc, mc);
      out += padded(kc * mc);
    }
  }
}

/// Eigen packs an lhs block as panels of mr rows (then smaller ones for its last rows), each
/// panel depth after depth; mr where the kernel peels panels of 3 packets, 0 where it does not.
inline constexpr std::int64_t lhs_panel =
    gemm_kernels::Traits::mr == 3 * gemm_kernels::Traits::LhsProgress ? gemm_kernels::Traits::mr : 0;

/// Indices [begin, end) of result rows or columns.
struct gemm_span {
  std::int64_t begin = 0, end = 0;
};
/// The part of a product's result one task computes: its rows and its columns.
struct gemm_part {
  gemm_span rows, cols;
};

/// [0, n) cut into at most `parts` spans at multiples of `unit` within blocks of `block` (a span
/// never needs to start mid-unit of a block), as even as those cuts allow.
inline std::vector<gemm_span> split_on_grid(std::int64_t n, std::int64_t block, std::int64_t unit, std::int64_t parts) {
  std::vector<gemm_span> spans;
  std::int64_t begin = 0;
  for (std::int64_t p = 1; p <= parts && begin < n; ++p) {
    std::int64_t cut = n;
    if (p < parts) {
      const std::int64_t target = n * p / parts, start = target / block * block;
      cut = std::min({start + (target - start + unit / 2) / unit * unit, start + block, n});
    }
    if (cut > begin) spans.push_back({begin, cut});
    begin = std::max(begin, cut);
  }
  return spans;
}

/// Result rows [0, rows) cut into at most `parts` spans that each compute every result bit as the
/// whole product does. Cuts fall on mc-block boundaries or on whole lhs_panel panels from a
/// block's start: every row then goes through the same micro-kernel, with the same depth blocks,
/// as in one pass, and a block's short last panel stays its last.
inline std::vector<gemm_span> split_rows(std::int64_t rows, const gemm_blocking& b, std::int64_t parts) {
  return split_on_grid(rows, b.mc, lhs_panel > 0 ? lhs_panel : b.mc, parts);
}
/// Result columns [0, cols) cut likewise: on whole nr-column panels of the packed rhs, so the
/// last few columns (fewer than nr, packed and multiplied one by one) stay the last.
inline std::vector<gemm_span> split_cols(std::int64_t cols, std::int64_t parts) {
  return split_on_grid(cols, cols, gemm_kernels::Traits::nr, parts);
}

/// The blocked product over one part of the result (cut by split_rows / split_cols): res (rows x
/// cols, column-major, leading dimension ldr) += lhs * rhs over a packed rhs (pack_rhs_blocks
/// with blocking b, all `cols` columns), in Eigen's block order (row blocks outer, depth blocks
/// inner, ascending), so sums are Eigen's. packed_lhs(i2, k2, mc, kc) returns the packed lhs
/// rows [i2, i2 + mc), depth [k2, k2 + kc), valid until its next call.
template <class PackedLhs>
void gemm_blocks(gemm_part part, std::int64_t depth, std::int64_t cols, const gemm_blocking& b, PackedLhs&& packed_lhs,
                 const float* rhs_blocks, float* res, std::int64_t ldr) {
  gemm_kernels::Gebp gebp;
  const gemm_kernels::ResMapper res_map(res, ldr);
  const std::int64_t j0 = part.cols.begin, width = part.cols.end - part.cols.begin;
  for (std::int64_t i2 = part.rows.begin; i2 < part.rows.end;) {
    const std::int64_t next = std::min((i2 / b.mc + 1) * b.mc, part.rows.end), mc = next - i2;
    const float* rhs_block = rhs_blocks;
    for (std::int64_t k2 = 0; k2 < depth; k2 += b.kc) {
      const std::int64_t kc = std::min(b.kc, depth - k2);
      // The packed rhs holds nr-column panels of kc values each, so column j0 starts at j0 * kc.
      gebp(res_map.getSubMapper(i2, j0), packed_lhs(i2, k2, mc, kc), rhs_block + j0 * kc, mc, kc, width, 1.0f);
      rhs_block += padded(kc * cols);
    }
    i2 = next;
  }
}

/// Where rows from i (on a panel boundary of its mc block), depth from k2, start in an lhs
/// packed whole by pack_lhs_blocks.
inline const float* packed_lhs_at(const float* packed, std::int64_t rows, std::int64_t depth, const gemm_blocking& b,
                                  std::int64_t i, std::int64_t k2) {
  const std::int64_t i2 = i / b.mc * b.mc, mc = std::min(b.mc, rows - i2);
  std::int64_t offset = packed_lhs_size(i2, depth, b);
  for (std::int64_t k = 0; k < k2; k += b.kc) offset += padded(std::min(b.kc, depth - k) * mc);
  return packed + offset + (i - i2) * std::min(b.kc, depth - k2);
}

/// Aligns scratch to 64 bytes (it must hold 16 floats more than it is asked to).
inline float* aligned_work(float* work) noexcept {
  return work + (64 - reinterpret_cast<std::uintptr_t>(work) % 64) % 64 / sizeof(float);
}

/// res (rows x cols, column-major, leading dimension ldr) += lhs * rhs, where each operand is
/// either packed already (by the functions above, with blocking b) or given as a plain
/// column-major matrix (pointer, leading dimension) and packed here into `work`.
struct gemm_operand {
  const float* data = nullptr;
  std::int64_t ld = 0;
  bool packed = false;
};
/// Floats of `work` packed_gemm needs, plus 16 to align it.
inline std::int64_t packed_gemm_work(std::int64_t depth, std::int64_t cols, const gemm_blocking& b, bool lhs_packed,
                                     bool rhs_packed) {
  return (rhs_packed ? 0 : packed_rhs_size(depth, cols, b.kc)) + (lhs_packed ? 0 : padded(b.kc * b.mc)) + 16;
}
/// packed_gemm over one part of the result only (cut by split_rows / split_cols).
inline void packed_gemm(std::int64_t rows, std::int64_t depth, std::int64_t cols, const gemm_blocking& b,
                        gemm_operand lhs, gemm_operand rhs, float* res, std::int64_t ldr, float* work, gemm_part part) {
  if (part.rows.begin >= part.rows.end || part.cols.begin >= part.cols.end || depth == 0) return;
  work = aligned_work(work);
  const float* rhs_blocks = rhs.data;
  if (!rhs.packed) {
    pack_rhs_blocks(rhs.data, rhs.ld, depth, cols, b.kc, work);
    rhs_blocks = work;
    work += packed_rhs_size(depth, cols, b.kc);
  }
  gemm_kernels::PackLhs pack_lhs;
  const gemm_kernels::Mapper lhs_map(lhs.data, lhs.ld);
  gemm_blocks(part, depth, cols, b, [&](std::int64_t i2, std::int64_t k2, std::int64_t mc, std::int64_t kc) {
    if (lhs.packed) return packed_lhs_at(lhs.data, rows, depth, b, i2, k2);
    pack_lhs(work, lhs_map.getSubMapper(i2, k2), kc, mc);
    return static_cast<const float*>(work);
  }, rhs_blocks, res, ldr);
}
inline void packed_gemm(std::int64_t rows, std::int64_t depth, std::int64_t cols, const gemm_blocking& b,
                        gemm_operand lhs, gemm_operand rhs, float* res, std::int64_t ldr, float* work) {
  packed_gemm(rows, depth, cols, b, lhs, rhs, res, ldr, work, {{0, rows}, {0, cols}});
}

/// Floats of `work` generated_lhs_gemm needs, plus 16 to align it.
inline std::int64_t generated_lhs_gemm_work(const gemm_blocking& b) { return 2 * padded(b.kc * b.mc) + 16; }
/// packed_gemm over a packed rhs and an lhs that is never stored whole, for one part of the
/// result (cut by split_rows / split_cols): fill(i, m, k2, kc, panel, out) writes rows [i, i + m) and depth
/// [k2, k2 + kc) of the lhs, the rows in runs of `panel`, each run depth step after depth step,
/// `panel` values each (the last run may be shorter). Eigen packs an lhs block as panels of mr
/// rows laid out just so, so the block's whole panels are filled in place; only its last rows
/// (fewer than mr) are filled as a plain block and go through Eigen's packing, which lays them
/// out as it would have in the whole block.
template <class Fill>
void generated_lhs_gemm(std::int64_t depth, std::int64_t cols, const gemm_blocking& b, Fill&& fill,
                        const float* rhs_packed, float* res, std::int64_t ldr, float* work, gemm_part part) {
  if (part.rows.begin >= part.rows.end || part.cols.begin >= part.cols.end || depth == 0) return;
  float* const block = aligned_work(work);
  float* const packed = block + padded(b.kc * b.mc);
  gemm_kernels::PackLhs pack_lhs;
  gemm_blocks(part, depth, cols, b, [&](std::int64_t i2, std::int64_t k2, std::int64_t mc, std::int64_t kc) {
    const std::int64_t whole = lhs_panel == 0 ? 0 : mc - mc % std::max<std::int64_t>(lhs_panel, 1);
    if (whole > 0) fill(i2, whole, k2, kc, lhs_panel, packed);
    if (whole < mc) {
      const std::int64_t m = mc - whole;
      fill(i2 + whole, m, k2, kc, m, block);
      pack_lhs(packed + whole * kc, gemm_kernels::Mapper(block, m), kc, m);
    }
    return static_cast<const float*>(packed);
  }, rhs_packed, res, ldr);
}

}  // namespace amctq::graph::ops::detail

#endif  // AMCTQ_GRAPH_OPS_PACKED_GEMM_HPP
