// Calibration across processes over MPI: every rank observes its share of the data, the
// observer states travel as CBOR (the JSON of io/observer_json.hpp, binary) and merge in rank
// order, so the result is the one a single process gets. For engines with their own job
// (reduce_observers) and for the pipeline (shard_exchange_over, and job_slices_over for ranks
// that claim their slices). Include only where MPI is found; MPI_Init is the caller's.
#ifndef AMCTQ_DIST_MPI_HPP
#define AMCTQ_DIST_MPI_HPP

#include <mpi.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amctq/algorithms/observer.hpp"
#include "amctq/error.hpp"
#include "amctq/graph/activation_observers.hpp"
#include "amctq/graph/calibration_run.hpp"
#include "amctq/io/observer_json.hpp"

namespace amctq::dist {

namespace detail {

inline void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  AMCTQ_THROW(errc::io, "mpi", what, ": ", std::string(text, static_cast<std::size_t>(len)));
}

// Each rank's bytes, in rank order; the root's only (gather) or every rank's (allgather).
inline std::vector<std::string> gather_bytes(const std::string& mine, MPI_Comm comm, bool everyone, int root) {
  int ranks = 0, rank = 0;
  check_mpi(MPI_Comm_size(comm, &ranks), "MPI_Comm_size");
  check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  AMCTQ_CHECK(mine.size() <= static_cast<std::size_t>(INT32_MAX), errc::unsupported, "mpi", "an observer state of ",
              mine.size(), " bytes is past MPI's int counts");
  const int n = static_cast<int>(mine.size());
  std::vector<int> sizes(static_cast<std::size_t>(ranks));
  if (everyone)
    check_mpi(MPI_Allgather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, comm), "MPI_Allgather");
  else
    check_mpi(MPI_Gather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, root, comm), "MPI_Gather");
  std::vector<int> offsets(static_cast<std::size_t>(ranks), 0);
  std::int64_t total = 0;
  for (int r = 0; r < ranks; ++r) {
    offsets[static_cast<std::size_t>(r)] = static_cast<int>(total);
    total += sizes[static_cast<std::size_t>(r)];
  }
  const bool receives = everyone || rank == root;
  AMCTQ_CHECK(!receives || total <= INT32_MAX, errc::unsupported, "mpi", "the observer states of all ranks, ", total,
              " bytes, are past MPI's int counts");
  std::string all(receives ? static_cast<std::size_t>(total) : 0, '\0');
  if (everyone)
    check_mpi(MPI_Allgatherv(mine.data(), n, MPI_CHAR, all.data(), sizes.data(), offsets.data(), MPI_CHAR, comm),
              "MPI_Allgatherv");
  else
    check_mpi(MPI_Gatherv(mine.data(), n, MPI_CHAR, all.data(), sizes.data(), offsets.data(), MPI_CHAR, root, comm),
              "MPI_Gatherv");
  std::vector<std::string> out;
  if (!receives) return out;
  for (int r = 0; r < ranks; ++r)
    out.push_back(all.substr(static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]),
                             static_cast<std::size_t>(sizes[static_cast<std::size_t>(r)])));
  return out;
}

// CBOR, not JSON text: a ResNet-18's histograms are 2.4 MB of text per rank, which took 75 ms to
// parse against a calibration of 1.3 s; in CBOR no number is printed or parsed.
inline std::string to_bytes(const nlohmann::json& j) {
  std::string bytes;
  nlohmann::json::to_cbor(j, bytes);
  return bytes;
}

inline nlohmann::json from_bytes(const std::string& bytes) { return nlohmann::json::from_cbor(bytes); }

inline std::string to_bytes(const graph::calibration_shard& s) {
  nlohmann::json j;
  j["observers"] = nlohmann::json::array();
  for (const auto& o : s.observers) j["observers"].push_back(io::to_json(o));
  j["not_float"] = s.not_float;
  j["shapes"] = s.shapes;
  return to_bytes(j);
}

inline graph::calibration_shard shard_from_bytes(const std::string& bytes) {
  const auto j = from_bytes(bytes);
  graph::calibration_shard s;
  for (const auto& o : j.at("observers")) s.observers.push_back(io::observer_state_from_json(o));
  s.not_float = j.at("not_float").get<std::vector<int>>();
  s.shapes = j.at("shapes").get<std::vector<std::vector<std::int64_t>>>();
  return s;
}

// One int64 on rank 0 of `comm`, taken and raised by one with MPI_Fetch_and_op. Made and
// freed by every rank at the same point; not freed while an exception unwinds (a failing rank
// must not wait in MPI_Win_free for ranks still calibrating: it aborts the job instead).
class job_counter {
 public:
  explicit job_counter(MPI_Comm comm) {
    int rank = 0;
    check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
    const MPI_Aint bytes = rank == 0 ? static_cast<MPI_Aint>(sizeof(std::int64_t)) : 0;
    check_mpi(MPI_Win_allocate(bytes, sizeof(std::int64_t), MPI_INFO_NULL, comm, &base_, &win_), "MPI_Win_allocate");
    if (rank == 0) {
      check_mpi(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win_), "MPI_Win_lock");
      *base_ = 0;
      check_mpi(MPI_Win_unlock(0, win_), "MPI_Win_unlock");
    }
    check_mpi(MPI_Barrier(comm), "MPI_Barrier");  // nobody takes a number before it is 0
  }
  job_counter(const job_counter&) = delete;
  job_counter& operator=(const job_counter&) = delete;
  ~job_counter() {
    if (std::uncaught_exceptions() == 0) MPI_Win_free(&win_);
  }
  std::size_t next() {
    const std::int64_t one = 1;
    std::int64_t got = 0;
    check_mpi(MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, win_), "MPI_Win_lock");
    check_mpi(MPI_Fetch_and_op(&one, &got, MPI_INT64_T, 0, 0, MPI_SUM, win_), "MPI_Fetch_and_op");
    check_mpi(MPI_Win_unlock(0, win_), "MPI_Win_unlock");
    return static_cast<std::size_t>(got);
  }

 private:
  MPI_Win win_ = MPI_WIN_NULL;
  std::int64_t* base_ = nullptr;
};

}  // namespace detail

/// The pipeline's job-wide slice count over `comm` (calibration_options::job_slices): the ranks
/// claim calibration slices one at a time from a counter on rank 0, through MPI's one-sided
/// operations. Needs MPI_THREAD_SERIALIZED when a rank runs several threads, and a window
/// MPI can make over `comm` (Open MPI makes it in shared memory when the ranks share a machine).
inline std::function<graph::slice_counter()> job_slices_over(MPI_Comm comm) {
  return [comm] {
    auto counter = std::make_shared<detail::job_counter>(comm);
    return graph::slice_counter([counter] { return counter->next(); });
  };
}

/// The pipeline's exchange over `comm` (calibration_options::exchange): every rank receives
/// every rank's shard, so every rank ends with the same record.
inline graph::shard_exchange shard_exchange_over(MPI_Comm comm) {
  return [comm](const graph::calibration_shard& mine) {
    int rank = 0;
    detail::check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
    const auto all = detail::gather_bytes(detail::to_bytes(mine), comm, true, 0);
    std::vector<graph::calibration_shard> out;
    for (std::size_t r = 0; r < all.size(); ++r)
      out.push_back(static_cast<int>(r) == rank ? mine : detail::shard_from_bytes(all[r]));
    return out;
  };
}

/// Merges the observers of every rank of `comm` into `root`'s, in rank order (the same result
/// one process observing every rank's batches in that order gets). Every rank passes observers
/// made with the same options in the same order; the others' are left as they were.
inline void reduce_observers(const std::vector<activation_observer*>& observers, MPI_Comm comm, int root = 0) {
  nlohmann::json mine = nlohmann::json::array();
  for (const auto* o : observers) mine.push_back(io::to_json(o->to_state()));
  const auto all = detail::gather_bytes(detail::to_bytes(mine), comm, false, root);
  if (all.empty()) return;
  int rank = 0;
  detail::check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  std::vector<activation_observer> merged;
  for (const auto* o : observers) merged.emplace_back(o->options());
  for (std::size_t r = 0; r < all.size(); ++r) {
    if (static_cast<int>(r) == rank) {  // its own observers, not a round trip through bytes
      for (std::size_t i = 0; i < observers.size(); ++i) merged[i].merge(*observers[i]);
      continue;
    }
    const auto j = detail::from_bytes(all[r]);
    AMCTQ_CHECK(j.is_array() && j.size() == observers.size(), errc::invalid_argument, "reduce_observers", "rank ", r,
                " sent ", j.size(), " observer states, rank ", rank, " has ", observers.size(), " observers");
    for (std::size_t i = 0; i < observers.size(); ++i)
      merged[i].merge(activation_observer::from_state(observers[i]->options(), io::observer_state_from_json(j[i])));
  }
  for (std::size_t i = 0; i < observers.size(); ++i) *observers[i] = std::move(merged[i]);
}

}  // namespace amctq::dist

#endif  // AMCTQ_DIST_MPI_HPP
