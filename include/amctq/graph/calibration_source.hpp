// Where calibration rows come from. The pipeline pulls them a slice at a time (graph/
// calibration_run.hpp), so a calibration set never has to be in memory whole: io/
// calibration_data.hpp reads slices out of memory-mapped .npy / .npz files, batches_in_memory
// serves batches the caller already holds.
#ifndef AMCTQ_GRAPH_CALIBRATION_SOURCE_HPP
#define AMCTQ_GRAPH_CALIBRATION_SOURCE_HPP

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/tensor.hpp"

namespace amctq::graph {

using batch = std::map<std::string, tensor>;

/// Rows [begin, end) of t (its first axis), copied.
inline tensor rows_of(const tensor& t, std::int64_t begin, std::int64_t end) {
  auto shape = t.shape();
  AMCTQ_CHECK(!shape.empty() && begin >= 0 && begin <= end && end <= shape[0], errc::invalid_argument, "rows_of",
              "rows [", begin, ", ", end, ") of a tensor with ", shape.empty() ? 0 : shape[0], " rows");
  const std::size_t row_bytes = shape[0] == 0 ? 0 : t.bytes().size() / static_cast<std::size_t>(shape[0]);
  shape[0] = end - begin;
  tensor s(t.type(), shape);
  if (end > begin)
    std::memcpy(s.bytes().data(), t.bytes().data() + static_cast<std::size_t>(begin) * row_bytes,
                static_cast<std::size_t>(end - begin) * row_bytes);
  return s;
}

/// The calibration batches (AMCT's batch_num of them): batch b has rows(b) rows, the same rows of
/// every model input. read() may run on several threads at once.
class calibration_source {
 public:
  virtual ~calibration_source() = default;
  virtual int batches() const = 0;
  virtual std::int64_t rows(int b) const = 0;
  /// Rows [begin, end) of batch b, by model input name. Returns `storage` filled, or a batch
  /// the source holds whole (then `storage` is untouched).
  virtual const batch& read(int b, std::int64_t begin, std::int64_t end, batch& storage) const = 0;
};

/// Batches the caller holds. A whole batch is read in place; a slice of one is copied.
class batches_in_memory final : public calibration_source {
 public:
  explicit batches_in_memory(const std::vector<batch>& batches) : batches_(batches) {
    for (std::size_t b = 0; b < batches.size(); ++b) {
      std::int64_t n = -1;
      for (const auto& [name, t] : batches[b]) {
        AMCTQ_CHECK(t.rank() >= 1, errc::invalid_argument, "calibration batch ", b, ": input '", name,
                    "' is a scalar; calibration arrays hold rows on their first axis");
        AMCTQ_CHECK(n < 0 || t.dim(0) == n, errc::shape_mismatch, "calibration batch ", b, ": input '", name, "' has ",
                    t.dim(0), " rows, another input ", n);
        n = t.dim(0);
      }
      rows_.push_back(n < 0 ? 0 : n);
    }
  }
  int batches() const override { return static_cast<int>(batches_.size()); }
  std::int64_t rows(int b) const override { return rows_.at(static_cast<std::size_t>(b)); }
  const batch& read(int b, std::int64_t begin, std::int64_t end, batch& storage) const override {
    const batch& whole = batches_.at(static_cast<std::size_t>(b));
    if (begin == 0 && end == rows(b)) return whole;
    storage.clear();
    for (const auto& [name, t] : whole) storage.emplace(name, rows_of(t, begin, end));
    return storage;
  }

 private:
  const std::vector<batch>& batches_;
  std::vector<std::int64_t> rows_;
};

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_CALIBRATION_SOURCE_HPP
