// How a calibration pass runs: the batches cut into slices small enough for a memory budget,
// the slices shared out to worker threads (and, under MPI, to processes), each worker with its
// own executor. Observers merge exactly (algorithms/observer.hpp), and the slices do not depend
// on the thread or process count, so every split gives the same bytes.
#ifndef AMCTQ_GRAPH_CALIBRATION_RUN_HPP
#define AMCTQ_GRAPH_CALIBRATION_RUN_HPP

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/graph/activation_observers.hpp"
#include "amctq/graph/calibration_source.hpp"
#include "amctq/graph/executor.hpp"

namespace amctq::graph {

/// Called as calibration rows are done: (rows done, rows total) of this process's share.
using progress_fn = std::function<void(std::int64_t, std::int64_t)>;

/// Every process's shard, in rank order, given this one's (dist/mpi.hpp makes one over MPI).
using shard_exchange = std::function<std::vector<calibration_shard>(const calibration_shard&)>;

/// Hands out 0, 1, 2, ... across every process of a job, each number once (dist/mpi.hpp makes
/// one over MPI). This process's workers call it one at a time.
using slice_counter = std::function<std::size_t()>;

struct calibration_options {
  int threads = 1;  ///< worker threads in this process, each with its own executor
  /// Bytes of activations one worker may hold at once (its slice's inputs, the live values and
  /// the ops' scratch); 0: no bound, every batch is run whole.
  std::size_t max_memory = 0;
  /// With a bound: one row needing more than max_memory is an error (false: the row is run alone).
  bool strict_memory = true;
  /// At most this many rows per slice (0: as many as max_memory allows). Small slices share out
  /// evenly over threads; the slices, not the threads, fix the arithmetic, so keep this the same
  /// for results to match.
  std::int64_t max_slice_rows = 0;
  int rank = 0, ranks = 1;  ///< this process's share of the slices among `ranks` processes
  shard_exchange exchange;  ///< required when ranks > 1
  /// With ranks > 1: makes a slice_counter for one calibration pass, every process at the same
  /// point, so the processes claim slices from one count instead of running fixed shares (a
  /// process the machine slows runs fewer). Empty: fixed, contiguous shares in rank order.
  std::function<slice_counter()> job_slices;
  progress_fn progress;
};

/// What `amctq quantize` and the Python package calibrate with unless told otherwise: slices of
/// at most 4 rows within 256 MiB of activations per worker (a row that needs more runs alone),
/// on `threads` workers (0: one per core). Every caller that starts from these gets the same
/// bytes for the same data.
inline calibration_options default_calibration_options(int threads = 0) {
  calibration_options o;
  o.threads = threads > 0 ? threads : ops::available_cores();
  o.max_memory = std::size_t{256} << 20;
  o.strict_memory = false;
  o.max_slice_rows = 4;  // small enough to share out evenly, large enough that a row costs the same
  return o;
}

/// Rows [begin, end) of calibration batch `batch`.
struct slice {
  int batch = 0;
  std::int64_t begin = 0, end = 0;
};

/// The first `batches` batches of src, each cut into slices of at most `rows_per_slice` rows
/// (0: whole batches). Slices never span two batches.
inline std::vector<slice> plan_slices(const calibration_source& src, int batches, std::int64_t rows_per_slice) {
  std::vector<slice> out;
  for (int b = 0; b < batches; ++b) {
    const std::int64_t n = src.rows(b);
    const std::int64_t step = rows_per_slice > 0 ? rows_per_slice : n;
    if (n == 0) out.push_back({b, 0, 0});  // an empty batch still runs, as the caller gave it
    for (std::int64_t r = 0; n > 0 && r < n; r += step) out.push_back({b, r, std::min(n, r + step)});
  }
  return out;
}

inline std::string mib(std::size_t bytes) {
  return std::to_string((bytes + (std::size_t{1} << 20) - 1) >> 20) + " MiB";
}

/// The rows a run of m must have, when a fed input states its first dimension (a model exported
/// for batch 1 takes one row at a time); 0 when the first dimensions are free.
inline std::int64_t static_batch_rows(const model& m) {
  for (const auto& vi : m.main.inputs) {
    if (m.main.find_initializer(vi.name) || !vi.shape || vi.shape->empty()) continue;
    const auto& d0 = vi.shape->front();
    if (d0.value && *d0.value > 0) return *d0.value;
  }
  return 0;
}

/// Whether calibration's executors keep m's weights packed from slice to slice: a packed copy
/// per worker, so only when the initializers (`deferred` ones included) fit in the per-worker
/// bound (else each slice packs them again, one node at a time; the results are the same).
inline bool keep_packed_weights(const model& m, const calibration_options& opt,
                                const deferred_constants* deferred = nullptr) {
  std::size_t bytes = deferred ? deferred->bytes() : 0;
  for (const auto& i : m.main.initializers) bytes += i.value.bytes().size();
  return opt.max_memory == 0 || bytes <= opt.max_memory;
}

/// One executor per thread of opt over m (with m's `deferred` constants, which must outlive
/// them), for run_slices, keeping packed weights where keep_packed_weights says.
inline std::vector<std::unique_ptr<executor>> make_workers(const model& m, const calibration_options& opt,
                                                           const deferred_constants* deferred = nullptr) {
  const bool keep_packed = keep_packed_weights(m, opt, deferred);
  std::vector<std::unique_ptr<executor>> workers;
  for (int w = 0; w < opt.threads; ++w) {
    workers.push_back(std::make_unique<executor>(m));
    workers.back()->set_keep_packed_weights(keep_packed);
    workers.back()->set_deferred_constants(deferred);
  }
  return workers;
}

/// The bytes an executor of m holds to run one row of src: measured on batch 0's first row (its
/// first static_batch_rows rows, shared out, for a model that takes no fewer). `probe`: a worker
/// of make_workers that has not run yet measures it, so what it packs and allocates is ready for
/// its first slice (its hooks, its observers, are set aside for this run; the figure is a fresh
/// executor's); else a fresh executor does and is thrown away.
inline std::size_t bytes_per_row(const model& m, const calibration_source& src,
                                 const deferred_constants* deferred = nullptr, executor* probe = nullptr) {
  const std::int64_t rows = std::max<std::int64_t>(static_batch_rows(m), 1);
  AMCTQ_CHECK(src.batches() > 0 && src.rows(0) >= rows, errc::invalid_argument, "calibrate",
              "the first calibration batch has ", src.batches() > 0 ? src.rows(0) : 0, " rows; the model runs ", rows,
              " at a time");
  batch storage;
  const batch& first = src.read(0, 0, rows, storage);
  const auto per_row = [rows](std::size_t peak) {
    return (peak + static_cast<std::size_t>(rows) - 1) / static_cast<std::size_t>(rows);
  };
  if (probe) {
    struct hooks_set_aside {  // back on the worker however the run ends
      executor& ex;
      tensor_hooks kept;
      ~hooks_set_aside() { ex.hooks() = std::move(kept); }
    } aside{*probe, std::exchange(probe->hooks(), tensor_hooks{})};
    probe->run(first);
    return per_row(probe->peak_bytes());
  }
  executor ex(m);
  ex.set_keep_packed_weights(false);  // one run: a kept copy of the weights would only add to the peak
  ex.set_deferred_constants(deferred);
  ex.run(first);
  return per_row(ex.peak_bytes());
}

/// Rows per slice under opt.max_memory and opt.max_slice_rows (0: whole batches). `whole_batches`:
/// an observer keeps a value per batch (moving_average, pot_diffs), so a batch must not be cut.
/// `probe`: as for bytes_per_row.
inline std::int64_t slice_rows(const model& m, const calibration_source& src, int batches,
                               const calibration_options& opt, bool whole_batches,
                               const deferred_constants* deferred = nullptr, executor* probe = nullptr) {
  // A model that states its batch size runs slices of exactly that size, whatever the bound.
  if (const std::int64_t fixed = static_batch_rows(m); fixed > 0 && !whole_batches && (opt.max_slice_rows > 0 || opt.max_memory > 0))
    return fixed;
  if (opt.max_memory == 0) return whole_batches ? 0 : opt.max_slice_rows;
  const std::size_t per_row = bytes_per_row(m, src, deferred, probe);
  if (whole_batches) {
    std::int64_t most = 0;
    for (int b = 0; b < batches; ++b) most = std::max(most, src.rows(b));
    const std::size_t need = per_row * static_cast<std::size_t>(most);
    AMCTQ_CHECK(!opt.strict_memory || need <= opt.max_memory, errc::invalid_argument, "calibrate",
                "moving_average and pot_diffs observe each batch whole; a batch of ", most, " rows needs about ",
                mib(need), " of activations, more than the memory bound of ", mib(opt.max_memory),
                "; raise the bound to ", mib(need), " or raise batch_num");
    return 0;
  }
  const std::int64_t cap = opt.max_slice_rows > 0 ? opt.max_slice_rows : INT64_MAX;
  AMCTQ_CHECK(!opt.strict_memory || per_row <= opt.max_memory, errc::invalid_argument, "calibrate",
              "one calibration row needs about ", mib(per_row), " of activations, more than the memory bound of ",
              mib(opt.max_memory), "; raise the bound to at least ", mib(per_row));
  return std::clamp<std::int64_t>(static_cast<std::int64_t>(opt.max_memory / std::max<std::size_t>(per_row, 1)), 1, cap);
}

/// The slices [first, last) of process w among n, so that processes in rank order cover them in order.
inline std::pair<std::size_t, std::size_t> share_of(std::size_t count, int w, int n) {
  const auto c = static_cast<unsigned long long>(count);
  return {static_cast<std::size_t>(c * static_cast<unsigned>(w) / static_cast<unsigned>(n)),
          static_cast<std::size_t>(c * static_cast<unsigned>(w + 1) / static_cast<unsigned>(n))};
}

/// Runs this process's slices on `workers` (one executor per thread, hooks attached by the
/// caller), each worker taking the next slice not yet taken, so a worker the machine slows runs
/// fewer (whatever slices a worker saw, observers merge to the same bytes). Among processes:
/// claimed from opt.job_slices' count, or else a fixed, contiguous share each. `ordered`: the
/// first worker of the first process runs them all, in order. The first error of any worker
/// stops the others and is rethrown, the lowest worker's first.
inline void run_slices(const calibration_source& src, const std::vector<slice>& slices,
                       const std::vector<executor*>& workers, const calibration_options& opt, bool ordered) {
  const bool claimed = !ordered && opt.ranks > 1 && opt.job_slices;
  // Not a structured binding: C++17 does not let the lambdas below capture one (clang refuses).
  const std::pair<std::size_t, std::size_t> range =
      ordered ? std::pair<std::size_t, std::size_t>{0, opt.rank == 0 ? slices.size() : 0}
      : claimed ? std::pair<std::size_t, std::size_t>{0, slices.size()}
                : share_of(slices.size(), opt.rank, opt.ranks);
  const std::size_t first = range.first, last = range.second;
  // Rows before each slice of the range; claimed, the whole job's, and progress counts the rows
  // of every slice up to the last this process took (the others' are under way).
  std::vector<std::int64_t> before{0};
  for (std::size_t s = first; s < last; ++s) before.push_back(before.back() + slices[s].end - slices[s].begin);
  const std::int64_t total = before.back();
  std::atomic<bool> stop{false};
  std::mutex progress_lock;
  std::int64_t done = 0;
  // No more workers than slices: each one that starts has work.
  const int n = ordered ? 1 : static_cast<int>(std::min(workers.size(), std::max<std::size_t>(last - first, 1)));
  std::vector<std::exception_ptr> errors(workers.size());
  std::atomic<std::size_t> next{first};
  const slice_counter job = claimed ? opt.job_slices() : slice_counter{};
  std::mutex job_lock;
  auto claim = [&]() -> std::size_t {
    if (!job) return next++;
    std::lock_guard<std::mutex> g(job_lock);
    return job();
  };
  auto work = [&](int w) {
    try {
      batch storage;
      for (std::size_t s = claim(); s < last && !stop; s = claim()) {
        const slice& sl = slices[s];
        workers[static_cast<std::size_t>(w)]->run(src.read(sl.batch, sl.begin, sl.end, storage));
        if (opt.progress) {
          std::lock_guard<std::mutex> g(progress_lock);
          done = claimed ? std::max(done, before[s + 1 - first]) : done + (sl.end - sl.begin);
          opt.progress(done, total);
        }
      }
    } catch (...) {
      errors[static_cast<std::size_t>(w)] = std::current_exception();
      stop = true;
    }
  };
  // Threads without a slice of their own help the running workers inside their ops.
  const int spare = static_cast<int>(workers.size()) - n;
  for (int w = 0; w < n; ++w) workers[static_cast<std::size_t>(w)]->set_intra_op_threads(1 + spare / n + (w < spare % n));
  std::vector<std::thread> pool;
  for (int w = 1; w < n; ++w) pool.emplace_back(work, w);
  work(0);
  for (auto& t : pool) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  if (claimed && opt.progress && done < total) opt.progress(total, total);  // every slice is taken
}

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_CALIBRATION_RUN_HPP
