// Calibration data for a model with any number of inputs of any dtype, as the CLI takes it:
// `--calib X.npy` (the model's one input), `--calib DATA.npz` (one array per model input, by name,
// as numpy.savez writes), or `--calib NAME=FILE.npy` repeated. Every array's first axis holds the
// calibration rows; the rows are cut into batch_num equal batches. Names, dtypes, ranks and
// static dims are checked against the model's inputs up front, each error naming the input and
// the file.
#ifndef AMCTQ_IO_CALIBRATION_DATA_HPP
#define AMCTQ_IO_CALIBRATION_DATA_HPP

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/ops/shape.hpp"
#include "amctq/io/npy.hpp"
#include "amctq/io/npz.hpp"

namespace amctq::io {

struct calibration_data {
  std::map<std::string, graph::tensor> inputs;  ///< by model input name; first axis = rows
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

// Converts t to the model input's dtype where nothing is lost in meaning (float64 -> float32,
// between integer widths); a float array for an integer input (token ids) is an error.
inline graph::tensor to_input_type(graph::tensor t, const graph::value_info& vi, const std::string& src,
                                   std::vector<std::string>& notes) {
  if (vi.elem_type == graph::dtype::undefined || t.type() == vi.elem_type) return t;
  const bool ok = (is_float_type(t.type()) && is_float_type(vi.elem_type)) ||
                  (is_int_type(t.type()) && is_int_type(vi.elem_type));
  AMCTQ_CHECK(ok, errc::invalid_argument, "calibration data", "input '", vi.name, "' is ", graph::to_string(vi.elem_type),
              " but ", src, " holds ", graph::to_string(t.type()), "; save the array as ",
              graph::to_string(vi.elem_type));
  notes.push_back("input '" + vi.name + "': " + src + " holds " + graph::to_string(t.type()) + ", converted to " +
                  graph::to_string(vi.elem_type));
  graph::node cast;
  cast.name = "calibration_cast";
  cast.op_type = "Cast";
  graph::attribute to;
  to.name = "to";
  to.type = graph::attribute::kind::i;
  to.i = static_cast<std::int64_t>(vi.elem_type);
  cast.attributes.push_back(to);
  std::vector<float> scratch;
  graph::ops::context c{cast, 13, {&t}, {}, scratch};
  c.out.resize(1);
  graph::ops::cast(c);
  return std::move(c.out[0]);
}

inline void check_shape(const graph::tensor& t, const graph::value_info& vi, const std::string& src) {
  AMCTQ_CHECK(t.rank() >= 1, errc::invalid_argument, "calibration data", src, " for input '", vi.name,
              "' is a scalar; calibration arrays hold rows on their first axis");
  if (!vi.shape) return;
  const auto& dims = *vi.shape;
  AMCTQ_CHECK(dims.size() == t.rank(), errc::shape_mismatch, "calibration data", "input '", vi.name, "' has rank ",
              dims.size(), " but ", src, " has shape ", graph::ops::shape_string(t.shape()));
  for (std::size_t d = 1; d < dims.size(); ++d)
    AMCTQ_CHECK(!dims[d].value || *dims[d].value == t.dim(d), errc::shape_mismatch, "calibration data", "input '",
                vi.name, "' dim ", d, " is ", dims[d].value.value_or(0), " but ", src, " has shape ",
                graph::ops::shape_string(t.shape()));
}

}  // namespace detail

/// Reads the --calib arguments for model m. `specs`: one "X.npy" (m must have one fed input, or
/// `default_input` names it), one "DATA.npz", or any number of "NAME=FILE.npy".
inline calibration_data read_calibration_data(const std::vector<std::string>& specs, const graph::model& m,
                                              const std::string& default_input = {}) {
  const auto ins = fed_inputs(m);
  AMCTQ_CHECK(!specs.empty(), errc::invalid_argument, "calibration data", "no --calib given");
  AMCTQ_CHECK(!ins.empty(), errc::invalid_argument, "calibration data", "the model has no graph input to feed");
  calibration_data d;
  std::map<std::string, std::pair<graph::tensor, std::string>> given;  // name -> (array, where from)
  auto ends_with = [](const std::string& s, const char* tail) {
    const std::size_t n = std::strlen(tail);
    return s.size() >= n && s.compare(s.size() - n, n, tail) == 0;
  };
  for (const auto& spec : specs) {
    const auto eq = spec.find('=');
    if (eq != std::string::npos && eq > 0 && !ends_with(spec.substr(0, eq), ".npy") && !ends_with(spec.substr(0, eq), ".npz")) {
      const std::string name = spec.substr(0, eq), file = spec.substr(eq + 1);
      AMCTQ_CHECK(!given.count(name), errc::invalid_argument, "calibration data", "input '", name, "' is given twice");
      given.emplace(name, std::make_pair(read_npy(file), "'" + file + "'"));
    } else if (ends_with(spec, ".npz")) {
      AMCTQ_CHECK(specs.size() == 1, errc::invalid_argument, "calibration data", spec,
                  ": an .npz archive holds every input; give it alone");
      for (auto& [name, t] : read_npz(spec)) given.emplace(name, std::make_pair(std::move(t), "'" + spec + "' member '" + name + "'"));
    } else {
      AMCTQ_CHECK(specs.size() == 1, errc::invalid_argument, "calibration data", spec,
                  ": with several --calib, each must be NAME=FILE.npy");
      std::string name = default_input;
      if (name.empty()) {
        AMCTQ_CHECK(ins.size() == 1, errc::invalid_argument, "calibration data", "the model has ", ins.size(),
                    " inputs (", detail::input_names(ins), "); give --calib NAME=FILE.npy for each, or one .npz");
        name = ins[0]->name;
      }
      given.emplace(name, std::make_pair(read_npy(spec), "'" + spec + "'"));
    }
  }
  for (const auto& [name, v] : given) {
    bool known = false;
    for (const auto* vi : ins) known = known || vi->name == name;
    AMCTQ_CHECK(known, errc::invalid_argument, "calibration data", v.second, " is for '", name,
                "', which is not an input of the model (its inputs: ", detail::input_names(ins), ")");
  }
  for (const auto* vi : ins) {
    auto it = given.find(vi->name);
    AMCTQ_CHECK(it != given.end(), errc::invalid_argument, "calibration data", "no data for input '", vi->name,
                "' (the model's inputs: ", detail::input_names(ins), ")");
    graph::tensor t = detail::to_input_type(std::move(it->second.first), *vi, it->second.second, d.notes);
    detail::check_shape(t, *vi, it->second.second);
    if (d.inputs.empty()) d.rows = t.dim(0);
    AMCTQ_CHECK(t.dim(0) == d.rows, errc::shape_mismatch, "calibration data", it->second.second, " has ", t.dim(0),
                " rows but ", d.source.begin()->second, " has ", d.rows, "; every input needs the same rows");
    d.source[vi->name] = it->second.second;
    d.inputs.emplace(vi->name, std::move(t));
  }
  return d;
}

/// Rows [begin, end) of t (its first axis).
inline graph::tensor rows_of(const graph::tensor& t, std::int64_t begin, std::int64_t end) {
  auto shape = t.shape();
  const std::size_t row_bytes = shape[0] == 0 ? 0 : t.bytes().size() / static_cast<std::size_t>(shape[0]);
  shape[0] = end - begin;
  graph::tensor s(t.type(), shape);
  if (end > begin)
    std::memcpy(s.bytes().data(), t.bytes().data() + static_cast<std::size_t>(begin) * row_bytes,
                static_cast<std::size_t>(end - begin) * row_bytes);
  return s;
}

/// batch_num batches of rows / batch_num rows each (the same rows of every input); the last
/// rows % batch_num rows are not used. Fewer rows than batch_num is an error saying how many.
inline std::vector<std::map<std::string, graph::tensor>> split_batches(const calibration_data& d, int batch_num) {
  AMCTQ_CHECK(batch_num >= 1 && d.rows >= batch_num, errc::invalid_argument, "calibration data",
              "calibration needs ", batch_num, " batches (config batch_num) of at least one row each, but ",
              d.source.empty() ? std::string("the data") : d.source.begin()->second, " has ", d.rows,
              " rows on its first axis; give at least ", batch_num, " rows or lower batch_num");
  const std::int64_t per = d.rows / batch_num;
  std::vector<std::map<std::string, graph::tensor>> out(static_cast<std::size_t>(batch_num));
  for (int b = 0; b < batch_num; ++b)
    for (const auto& [name, t] : d.inputs) out[static_cast<std::size_t>(b)].emplace(name, rows_of(t, b * per, (b + 1) * per));
  return out;
}

}  // namespace amctq::io

#endif  // AMCTQ_IO_CALIBRATION_DATA_HPP
