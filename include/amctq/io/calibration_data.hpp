// Calibration data for a model with any number of inputs of any dtype, as the CLI takes it:
// `--calib X.npy` (the model's one input), `--calib DATA.npz` (one array per model input, by name,
// as numpy.savez writes), or `--calib NAME=FILE.npy` repeated. Every array's first axis holds the
// calibration rows; the rows are cut into batch_num equal batches. Names, dtypes, ranks and
// static dims are checked against the model's inputs up front, each error naming the input and
// the file. Files are memory-mapped and read a slice of rows at a time (calibration_batches),
// so calibration holds only the rows it is working on.
#ifndef AMCTQ_IO_CALIBRATION_DATA_HPP
#define AMCTQ_IO_CALIBRATION_DATA_HPP

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/calibration_source.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/ops/shape.hpp"
#include "amctq/io/detail/mapped_file.hpp"
#include "amctq/io/npy.hpp"
#include "amctq/io/npz.hpp"

namespace amctq::io {

/// One calibration array, rows on its first axis: held in memory, or an array in a memory-mapped
/// .npy image whose rows are copied out on demand. rows() converts to the model input's type.
class row_array {
 public:
  row_array() = default;
  explicit row_array(graph::tensor t) : type_(t.type()), shape_(t.shape()), held_(std::move(t)) {}
  /// The array of the .npy image at f->data() + offset (size bytes). An array whose rows are not
  /// contiguous in the file (Fortran order) is read whole.
  row_array(std::shared_ptr<const detail::mapped_file> f, std::size_t offset, std::size_t size, const std::string& what)
      : file_(std::move(f)), offset_(offset) {
    const auto* data = reinterpret_cast<const unsigned char*>(file_->data()) + offset;
    layout_ = parse_npy_layout(data, size, what);
    type_ = layout_.header.type;
    shape_ = layout_.header.shape;
    if (!npy_rows_contiguous(layout_) || shape_.empty()) {
      held_ = parse_npy(data, size, what);
      file_.reset();
    }
  }

  graph::dtype type() const noexcept { return to_ ? *to_ : type_; }
  graph::dtype stored_type() const noexcept { return type_; }
  const std::vector<std::int64_t>& shape() const noexcept { return shape_; }
  std::int64_t rows() const noexcept { return shape_.empty() ? 0 : shape_[0]; }
  /// Converts rows() to `t` (the caller checked the conversion keeps the meaning).
  void convert_to(graph::dtype t) {
    if (t != type_) to_ = t;
  }

  /// Rows [begin, end), of type(). Thread-safe.
  graph::tensor rows(std::int64_t begin, std::int64_t end) const {
    AMCTQ_CHECK(begin >= 0 && begin <= end && end <= rows(), errc::invalid_argument, "calibration data", "rows [",
                begin, ", ", end, ") of an array of ", rows(), " rows");
    graph::tensor t;
    if (!file_) {
      t = begin == 0 && end == rows() ? held_ : graph::rows_of(held_, begin, end);
    } else {
      std::size_t per_row = 1;
      for (std::size_t d = 1; d < shape_.size(); ++d) per_row *= static_cast<std::size_t>(shape_[d]);
      auto shape = shape_;
      shape[0] = end - begin;
      const auto* data = reinterpret_cast<const unsigned char*>(file_->data()) + offset_;
      t = npy_elements(data, layout_, static_cast<std::size_t>(begin) * per_row,
                       static_cast<std::size_t>(end - begin) * per_row, std::move(shape));
      // Calibration reads each row once per pass: let the pages go rather than grow with the data.
      const std::size_t esize = graph::element_size(type_);
      file_->release(offset_ + layout_.data_start + static_cast<std::size_t>(begin) * per_row * esize,
                     static_cast<std::size_t>(end - begin) * per_row * esize);
    }
    return to_ ? cast(std::move(t), *to_) : t;
  }

  static graph::tensor cast(graph::tensor t, graph::dtype to) {
    graph::node c;
    c.name = "calibration_cast";
    c.op_type = "Cast";
    graph::attribute a;
    a.name = "to";
    a.type = graph::attribute::kind::i;
    a.i = static_cast<std::int64_t>(to);
    c.attributes.push_back(a);
    std::vector<float> scratch;
    graph::ops::context ctx{c, 13, {&t}, {}, scratch};
    ctx.out.resize(1);
    graph::ops::cast(ctx);
    return std::move(ctx.out[0]);
  }

 private:
  graph::dtype type_ = graph::dtype::undefined;
  std::optional<graph::dtype> to_;
  std::vector<std::int64_t> shape_;
  graph::tensor held_;
  std::shared_ptr<const detail::mapped_file> file_;
  std::size_t offset_ = 0;
  npy_layout layout_;
};

struct calibration_data {
  std::map<std::string, row_array> inputs;  ///< by model input name; first axis = rows
  std::map<std::string, std::string> source;    ///< input name -> the file (and member) it came from
  std::int64_t rows = 0;
  std::vector<std::string> notes;               ///< conversions made (float64 -> float32, ...)
};

/// The graph inputs a run must feed: those no initializer provides.
inline std::vector<const graph::value_info*> fed_inputs(const graph::model& m) {
  std::vector<const graph::value_info*> out;
  for (const auto& vi : m.main.inputs)
    if (!m.main.find_initializer(vi.name)) out.push_back(&vi);
  return out;
}

namespace detail {

inline std::string input_names(const std::vector<const graph::value_info*>& ins) {
  std::string s;
  for (const auto* vi : ins) s += (s.empty() ? "'" : ", '") + vi->name + "'";
  return s.empty() ? "none" : s;
}

inline bool is_float_type(graph::dtype t) { return t == graph::dtype::float32 || t == graph::dtype::float64; }
inline bool is_int_type(graph::dtype t) {
  return t == graph::dtype::int8 || t == graph::dtype::uint8 || t == graph::dtype::int16 || t == graph::dtype::uint16 ||
         t == graph::dtype::int32 || t == graph::dtype::int64;
}

// Sets the array to convert to the model input's dtype where nothing is lost in meaning
// (float64 -> float32, between integer widths); a float array for an integer input (token ids)
// is an error.
inline void to_input_type(row_array& a, const graph::value_info& vi, const std::string& src,
                          std::vector<std::string>& notes) {
  const graph::dtype from = a.stored_type();
  if (vi.elem_type == graph::dtype::undefined || from == vi.elem_type) return;
  const bool ok = (is_float_type(from) && is_float_type(vi.elem_type)) || (is_int_type(from) && is_int_type(vi.elem_type));
  AMCTQ_CHECK(ok, errc::invalid_argument, "calibration data", "input '", vi.name, "' is ", graph::to_string(vi.elem_type),
              " but ", src, " holds ", graph::to_string(from), "; save the array as ", graph::to_string(vi.elem_type));
  notes.push_back("input '" + vi.name + "': " + src + " holds " + graph::to_string(from) + ", converted to " +
                  graph::to_string(vi.elem_type));
  a.convert_to(vi.elem_type);
}

inline void check_shape(const std::vector<std::int64_t>& shape, const graph::value_info& vi, const std::string& src) {
  AMCTQ_CHECK(!shape.empty(), errc::invalid_argument, "calibration data", src, " for input '", vi.name,
              "' is a scalar; calibration arrays hold rows on their first axis");
  if (!vi.shape) return;
  const auto& dims = *vi.shape;
  AMCTQ_CHECK(dims.size() == shape.size(), errc::shape_mismatch, "calibration data", "input '", vi.name, "' has rank ",
              dims.size(), " but ", src, " has shape ", graph::ops::shape_string(shape));
  for (std::size_t d = 1; d < dims.size(); ++d)
    AMCTQ_CHECK(!dims[d].value || *dims[d].value == shape[d], errc::shape_mismatch, "calibration data", "input '",
                vi.name, "' dim ", d, " is ", dims[d].value.value_or(0), " but ", src, " has shape ",
                graph::ops::shape_string(shape));
}

}  // namespace detail

/// An array for each named input (name -> the array and where it came from), checked against
/// m's fed inputs: every input given once, known names, dtypes converted where the meaning
/// survives, shapes, the same rows everywhere.
inline calibration_data calibration_from(const graph::model& m,
                                         std::map<std::string, std::pair<row_array, std::string>> given) {
  const auto ins = fed_inputs(m);
  AMCTQ_CHECK(!ins.empty(), errc::invalid_argument, "calibration data", "the model has no graph input to feed");
  for (const auto& [name, v] : given) {
    bool known = false;
    for (const auto* vi : ins) known = known || vi->name == name;
    AMCTQ_CHECK(known, errc::invalid_argument, "calibration data", v.second, " is for '", name,
                "', which is not an input of the model (its inputs: ", detail::input_names(ins), ")");
  }
  calibration_data d;
  for (const auto* vi : ins) {
    auto it = given.find(vi->name);
    AMCTQ_CHECK(it != given.end(), errc::invalid_argument, "calibration data", "no data for input '", vi->name,
                "' (the model's inputs: ", detail::input_names(ins), ")");
    row_array& a = it->second.first;
    const std::string& src = it->second.second;
    detail::to_input_type(a, *vi, src, d.notes);
    detail::check_shape(a.shape(), *vi, src);
    if (d.inputs.empty()) d.rows = a.rows();
    AMCTQ_CHECK(a.rows() == d.rows, errc::shape_mismatch, "calibration data", src, " has ", a.rows(), " rows but ",
                d.source.begin()->second, " has ", d.rows, "; every input needs the same rows");
    d.source[vi->name] = src;
    d.inputs.emplace(vi->name, std::move(a));
  }
  return d;
}

/// Reads the --calib arguments for model m. `specs`: one "X.npy" (m must have one fed input, or
/// `default_input` names it), one "DATA.npz", or any number of "NAME=FILE.npy". The files are
/// mapped, not read: rows are read when a batch needs them.
inline calibration_data read_calibration_data(const std::vector<std::string>& specs, const graph::model& m,
                                              const std::string& default_input = {}) {
  const auto ins = fed_inputs(m);
  AMCTQ_CHECK(!specs.empty(), errc::invalid_argument, "calibration data", "no --calib given");
  AMCTQ_CHECK(!ins.empty(), errc::invalid_argument, "calibration data", "the model has no graph input to feed");
  std::map<std::string, std::pair<row_array, std::string>> given;  // name -> (array, where from)
  auto ends_with = [](const std::string& s, const char* tail) {
    const std::size_t n = std::strlen(tail);
    return s.size() >= n && s.compare(s.size() - n, n, tail) == 0;
  };
  auto map_npy = [](const std::string& file) {
    auto f = std::make_shared<const detail::mapped_file>(file, false);
    return row_array(f, 0, f->size(), "'" + file + "'");
  };
  for (const auto& spec : specs) {
    const auto eq = spec.find('=');
    if (eq != std::string::npos && eq > 0 && !ends_with(spec.substr(0, eq), ".npy") && !ends_with(spec.substr(0, eq), ".npz")) {
      const std::string name = spec.substr(0, eq), file = spec.substr(eq + 1);
      AMCTQ_CHECK(!given.count(name), errc::invalid_argument, "calibration data", "input '", name, "' is given twice");
      given.emplace(name, std::make_pair(map_npy(file), "'" + file + "'"));
    } else if (ends_with(spec, ".npz")) {
      AMCTQ_CHECK(specs.size() == 1, errc::invalid_argument, "calibration data", spec,
                  ": an .npz archive holds every input; give it alone");
      auto f = std::make_shared<const detail::mapped_file>(spec, false);
      const auto* data = reinterpret_cast<const unsigned char*>(f->data());
      for (const auto& mem : npz_members(data, f->size(), "'" + spec + "'")) {
        const std::string what = "'" + spec + "' member '" + mem.name + "'";
        given.emplace(mem.name, std::make_pair(row_array(f, mem.start, mem.size, what), what));
      }
    } else {
      AMCTQ_CHECK(specs.size() == 1, errc::invalid_argument, "calibration data", spec,
                  ": with several --calib, each must be NAME=FILE.npy");
      std::string name = default_input;
      if (name.empty()) {
        AMCTQ_CHECK(ins.size() == 1, errc::invalid_argument, "calibration data", "the model has ", ins.size(),
                    " inputs (", detail::input_names(ins), "); give --calib NAME=FILE.npy for each, or one .npz");
        name = ins[0]->name;
      }
      given.emplace(name, std::make_pair(map_npy(spec), "'" + spec + "'"));
    }
  }
  return calibration_from(m, std::move(given));
}

inline void check_rows(const calibration_data& d, int batch_num) {
  AMCTQ_CHECK(batch_num >= 1 && d.rows >= batch_num, errc::invalid_argument, "calibration data",
              "calibration needs ", batch_num, " batches (config batch_num) of at least one row each, but ",
              d.source.empty() ? std::string("the data") : d.source.begin()->second, " has ", d.rows,
              " rows on its first axis; give at least ", batch_num, " rows or lower batch_num");
}

/// batch_num batches of rows / batch_num rows each (the same rows of every input); the last
/// rows % batch_num rows are not used. Fewer rows than batch_num is an error saying how many.
inline std::vector<std::map<std::string, graph::tensor>> split_batches(const calibration_data& d, int batch_num) {
  check_rows(d, batch_num);
  const std::int64_t per = d.rows / batch_num;
  std::vector<std::map<std::string, graph::tensor>> out(static_cast<std::size_t>(batch_num));
  for (int b = 0; b < batch_num; ++b)
    for (const auto& [name, a] : d.inputs) out[static_cast<std::size_t>(b)].emplace(name, a.rows(b * per, (b + 1) * per));
  return out;
}

/// The batches split_batches() makes, read a slice at a time from d (which must outlive it).
class calibration_batches final : public graph::calibration_source {
 public:
  calibration_batches(const calibration_data& d, int batch_num) : d_(d), batch_num_(batch_num) {
    check_rows(d, batch_num);
    per_ = d.rows / batch_num;
  }
  int batches() const override { return batch_num_; }
  std::int64_t rows(int) const override { return per_; }
  const graph::batch& read(int b, std::int64_t begin, std::int64_t end, graph::batch& storage) const override {
    storage.clear();
    for (const auto& [name, a] : d_.inputs) storage.emplace(name, a.rows(b * per_ + begin, b * per_ + end));
    return storage;
  }

 private:
  const calibration_data& d_;
  int batch_num_;
  std::int64_t per_ = 0;
};

}  // namespace amctq::io

#endif  // AMCTQ_IO_CALIBRATION_DATA_HPP
