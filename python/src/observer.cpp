// amctq.Observer's engine: observer_options from Python keywords (the names of `amctq calib`'s
// options, with '_' for '-'), activation_observer over in-place views with the GIL released,
// the result as the dict `amctq calib` prints, and the state as io/observer_json.hpp's JSON.
#include <algorithm>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "amctq/algorithms/observer.hpp"
#include "amctq/io/observer_json.hpp"
#include "arrays.hpp"
#include "calib_fields.hpp"
#include "bindings.hpp"

namespace amctq::python {

namespace {

using setter = std::function<void(observer_options&, nb::handle)>;

struct option_entry {
  std::vector<calib_method> methods;  // empty: every method
  setter set;
};

batch_statistic statistic_from(const std::string& s) {
  for (batch_statistic b : {batch_statistic::modal, batch_statistic::max, batch_statistic::mean, batch_statistic::median})
    if (s == to_string(b)) return b;
  AMCTQ_THROW(errc::invalid_argument, "Observer", "unknown statistic '", s, "' (modal, max, mean, median)");
}

// Method options and the methods they tune, as `amctq calib` has them: another method refuses
// them, so a misspelt method cannot leave a tuning option silently unused.
const std::map<std::string, option_entry>& option_table() {
  using m = calib_method;
  auto i = [](nb::handle v) { return nb::cast<int>(v); };
  auto d = [](nb::handle v) { return nb::cast<double>(v); };
  static const std::map<std::string, option_entry> table = {
      {"percentile", {{m::percentile}, [=](observer_options& o, nb::handle v) { o.percentile.percentile = d(v); }}},
      {"bins", {{m::entropy, m::percentile, m::hfmg}, [=](observer_options& o, nb::handle v) {
                  if (o.method == m::entropy) o.entropy.bins = i(v);
                  if (o.method == m::percentile) o.percentile.bins = i(v);
                  if (o.method == m::hfmg) o.hfmg.bins = i(v);
                }}},
      {"levels", {{m::entropy}, [=](observer_options& o, nb::handle v) { o.entropy.levels = i(v); }}},
      {"max_rounds", {{m::entropy, m::mse}, [=](observer_options& o, nb::handle v) {
                        o.entropy.max_rounds = o.mse.max_rounds = i(v);
                      }}},
      {"max_percentile", {{m::ifmr}, [=](observer_options& o, nb::handle v) { o.ifmr.max_percentile = d(v); }}},
      {"min_percentile", {{m::ifmr}, [=](observer_options& o, nb::handle v) { o.ifmr.min_percentile = d(v); }}},
      {"search_range", {{m::ifmr}, [=](observer_options& o, nb::handle v) {
                          const auto r = nb::cast<std::pair<double, double>>(v);
                          o.ifmr.search_start = r.first;
                          o.ifmr.search_end = r.second;
                        }}},
      {"search_step", {{m::ifmr}, [=](observer_options& o, nb::handle v) { o.ifmr.search_step = d(v); }}},
      {"search_points", {{m::mse}, [=](observer_options& o, nb::handle v) { o.mse.search_points = i(v); }}},
      {"refine_points", {{m::mse}, [=](observer_options& o, nb::handle v) { o.mse.refine_points = i(v); }}},
      {"averaging_constant",
       {{m::moving_average}, [=](observer_options& o, nb::handle v) { o.moving_average.averaging_constant = d(v); }}},
      {"scope", {{m::pot_diffs}, [=](observer_options& o, nb::handle v) { o.pot.scope = i(v); }}},
      {"max_fix_pos", {{m::pot_diffs}, [=](observer_options& o, nb::handle v) { o.pot.max_fix_pos = i(v); }}},
      {"statistic", {{m::pot_diffs}, [](observer_options& o, nb::handle v) {
                       o.statistic = statistic_from(nb::cast<std::string>(v));
                     }}},
      {"torch_int_range", {{m::hfmg}, [](observer_options& o, nb::handle v) { o.hfmg.torch_int_range = nb::cast<bool>(v); }}},
      {"tail_capacity", {{m::percentile, m::ifmr}, [=](observer_options& o, nb::handle v) {
                           o.tail_capacity = nb::cast<std::uint32_t>(v);
                         }}},
      {"histogram_capacity", {{}, [](observer_options& o, nb::handle v) { o.histogram_capacity = nb::cast<std::uint32_t>(v); }}},
      {"signed", {{}, [](observer_options& o, nb::handle v) { o.spec.is_signed = nb::cast<bool>(v); }}},
      {"narrow_range", {{}, [](observer_options& o, nb::handle v) { o.spec.narrow_range = nb::cast<bool>(v); }}},
      {"skip_nonfinite", {{}, [](observer_options& o, nb::handle v) { o.skip_nonfinite = nb::cast<bool>(v); }}},
      {"name", {{}, [](observer_options& o, nb::handle v) { o.name = nb::cast<std::string>(v); }}},
  };
  return table;
}

std::string known_options() {
  std::string s;
  for (const auto& [name, e] : option_table()) s += (s.empty() ? "" : ", ") + name;
  return s;
}

observer_options make_options(const std::string& method, int bits, bool symmetric, const nb::handle& axis,
                              const std::string& how, const nb::dict& options) {
  constexpr const char* where = "Observer";
  observer_options o;
  o.name = "x";
  o.method = calib_method_from_string(method);
  o.spec.bits = bits;
  o.spec.symmetric = symmetric;
  o.spec.axis = axis.is_none() ? per_tensor : nb::cast<int>(axis);
  AMCTQ_CHECK(preset_from_string(how, o.how), errc::invalid_argument, where, "unknown preset '", how,
              "' (amct, onnxruntime, pytorch)");
  for (const auto& [key, value] : options) {
    const std::string k = nb::cast<std::string>(key);
    const auto it = option_table().find(k);
    AMCTQ_CHECK(it != option_table().end(), errc::invalid_argument, where, "unknown option '", k, "' (", known_options(), ")");
    const auto& ms = it->second.methods;
    if (!ms.empty() && std::find(ms.begin(), ms.end(), o.method) == ms.end()) {
      std::string names;
      for (calib_method m : ms) names += (names.empty() ? "" : ", ") + std::string(to_string(m));
      AMCTQ_THROW(errc::invalid_argument, where, "option ", k, " does not apply to method ", to_string(o.method),
                  "; it tunes ", names);
    }
    try {
      it->second.set(o, value);
    } catch (const nb::cast_error&) {
      AMCTQ_THROW(errc::invalid_argument, where, "option ", k, " has the wrong type: ",
                  nb::cast<std::string>(nb::str(value.type())));
    }
  }
  return o;
}

// One activation_observer; the mutex serialises threads that share it, since observe() runs
// without the GIL.
class py_observer {
 public:
  py_observer(const std::string& method, int bits, bool symmetric, nb::handle axis, const std::string& how,
              const nb::dict& options, int threads)
      : ob_(make_options(method, bits, symmetric, axis, how, options)), threads_(threads) {
    AMCTQ_CHECK(threads >= 0, errc::invalid_argument, "Observer", "threads must be >= 0 (0: one per core), got ",
                threads);
  }

  void observe(const in_array& x) {
    const auto v = as_view<const float>(x, "x", "activation_observer::observe");
    const int axis = ob_.options().spec.axis;
    AMCTQ_CHECK(axis < static_cast<int>(x.ndim()), errc::invalid_argument, "activation_observer::observe", "tensor '",
                ob_.options().name, "': axis ", axis, " is out of range for rank ", x.ndim());
    nb::gil_scoped_release unlocked;
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t parts = parts_for(v);
    if (parts <= 1) ob_.observe(v);
    else observe_split(v.data_handle(), static_cast<std::size_t>(v.size()), parts);
  }

  void merge(py_observer& other) {
    AMCTQ_CHECK(&other != this, errc::invalid_argument, "activation_observer::merge", "an observer cannot merge itself");
    const activation_observer theirs = other.copy();
    nb::gil_scoped_release unlocked;
    std::lock_guard<std::mutex> lock(mutex_);
    ob_.merge(theirs);
  }

  nb::dict result() {
    const activation_observer now = copy();
    calib_result r;
    {
      nb::gil_scoped_release unlocked;  // the searches (IFMR, entropy, ...) run here
      r = now.result();
    }
    nb::dict fields;
    cli::put_calib_fields(fields, nb::none(), now.options(), r, now.nonfinite());
    return fields;
  }

  std::string state() {
    const activation_observer now = copy();
    return io::to_json(now.to_state()).dump();
  }

  void set_state(const std::string& text) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      AMCTQ_THROW(errc::parse, "Observer.__setstate__", "the state is not JSON: ", e.what());
    }
    activation_observer restored = activation_observer::from_state(ob_.options(), io::observer_state_from_json(j));
    std::lock_guard<std::mutex> lock(mutex_);
    ob_ = std::move(restored);
  }

 private:
  // A batch smaller than this is one thread's: below a few MB the threads' start and the
  // merge of their histograms cost about what a second core saves.
  static constexpr std::size_t split_threshold = std::size_t{1} << 22;
  static constexpr std::size_t min_part = std::size_t{1} << 21;
  static constexpr unsigned max_threads = 8;  // past the memory bandwidth of a few cores

  // How many threads observe this batch: several only where the parts, observed apart and
  // merged, give the one-observer state bit for bit (splits_exactly), per tensor.
  std::size_t parts_for(const view<const float>& v) const {
    const observer_options& o = ob_.options();
    const auto n = static_cast<std::size_t>(v.size());
    if (threads_ == 1 || n < split_threshold || o.spec.axis != per_tensor || !v.is_contiguous() || !splits_exactly(o))
      return 1;
    unsigned t = threads_ > 0 ? static_cast<unsigned>(threads_) : std::min(std::thread::hardware_concurrency(), max_threads);
    return std::max<std::size_t>(1, std::min<std::size_t>(t, n / min_part));
  }

  // The batch in `parts` contiguous pieces (cut on 64-byte lines), each observed by a fresh
  // observer in its own thread, then merged in. A piece's error (NaN/inf) is reported as the
  // whole batch's by observing it again on this thread, which leaves ob_ as it was.
  void observe_split(const float* p, std::size_t n, std::size_t parts) {
    std::vector<activation_observer> shard(parts, activation_observer(ob_.options()));
    std::vector<std::exception_ptr> failed(parts);
    auto run = [&](std::size_t k) {
      constexpr std::size_t line = 64 / sizeof(float);
      auto cut = [&](std::size_t j) { return j == parts ? n : n / parts * j / line * line; };
      const std::size_t lo = cut(k), hi = cut(k + 1);
      try {
        shard[k].observe(tensor_view<const float, 1>(p + lo, {static_cast<std::ptrdiff_t>(hi - lo)}));
      } catch (...) {
        failed[k] = std::current_exception();
      }
    };
    std::vector<std::thread> pool;
    try {
      for (std::size_t k = 1; k < parts; ++k) pool.emplace_back(run, k);
    } catch (const std::system_error&) {  // no thread to be had: this one does the rest
      for (std::size_t k = pool.size() + 1; k < parts; ++k) run(k);
    }
    run(0);
    for (std::thread& t : pool) t.join();
    for (const std::exception_ptr& e : failed) {
      if (e) {
        ob_.observe(tensor_view<const float, 1>(p, {static_cast<std::ptrdiff_t>(n)}));
        return;
      }
    }
    for (const activation_observer& s : shard) ob_.merge(s);
  }

  // Waits for the lock without the GIL: the thread holding it may be observing without the GIL
  // and must not find every other Python thread stalled behind this one.
  activation_observer copy() {
    nb::gil_scoped_release unlocked;
    std::lock_guard<std::mutex> lock(mutex_);
    return ob_;
  }

  activation_observer ob_;
  int threads_;
  std::mutex mutex_;
};

}  // namespace

void bind_observer(nb::module_& m) {
  nb::class_<py_observer>(m, "_Observer")
      .def(nb::init<const std::string&, int, bool, nb::handle, const std::string&, const nb::dict&, int>(),
           nb::arg("method"), nb::arg("bits"), nb::arg("symmetric"), nb::arg("axis").none(), nb::arg("preset"),
           nb::arg("options"), nb::arg("threads"))
      .def("observe", &py_observer::observe, nb::arg("x"))
      .def("merge", &py_observer::merge, nb::arg("other"))
      .def("result", &py_observer::result)
      .def("state", &py_observer::state)
      .def("set_state", &py_observer::set_state, nb::arg("state"));
}

}  // namespace amctq::python
