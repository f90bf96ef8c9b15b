// `mpirun -np N amctq quantize ...`: this process's place among the ranks. MPI starts only when
// a launcher started the process (its environment says so), so a plain `amctq` never touches
// MPI; a build without MPI refuses to run as one of several ranks rather than have every rank
// do all the work.
#ifndef AMCTQ_TOOLS_MPI_SESSION_HPP
#define AMCTQ_TOOLS_MPI_SESSION_HPP

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "amctq/error.hpp"
#include "amctq/graph/calibration_run.hpp"
#ifdef AMCTQ_WITH_MPI
#include "amctq/dist/mpi.hpp"
#endif

namespace amctq::cli {

class mpi_session {
 public:
  mpi_session() {
    const int size = env_int("OMPI_COMM_WORLD_SIZE", env_int("PMI_SIZE", env_int("PMIX_SIZE", 1)));
    local_ = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", env_int("MPI_LOCALNRANKS", size));
    if (size <= 1) return;
#ifdef AMCTQ_WITH_MPI
    // Ranks all on this machine talk over shared memory, which Open MPI's ob1 layer gives; left
    // to choose, it first probes the fabric layers (UCX, libfabric, PSM), which took 0.2 s of
    // MPI_Init here with no fabric to find. An OMPI_MCA_pml the user set stays.
    if (local_ == size) setenv("OMPI_MCA_pml", "ob1", /*overwrite=*/0);
    int ok = 0;
    MPI_Initialized(&ok);
    if (!ok) MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &thread_level_);
    else MPI_Query_thread(&thread_level_);
    active_ = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks_);
#else
    AMCTQ_THROW(errc::unsupported, "mpi", "started as one of ", size,
                " MPI ranks, but this amctq was built without MPI (install libopenmpi-dev and rebuild)");
#endif
  }
  mpi_session(const mpi_session&) = delete;
  mpi_session& operator=(const mpi_session&) = delete;
  ~mpi_session() { finalize(); }

  /// Ends MPI for this process early (the destructor does it otherwise). Open MPI's shutdown
  /// waits about 40 ms on its launcher, so rank 0 runs it beside the saving, which needs no
  /// other rank.
  void finalize() noexcept {
#ifdef AMCTQ_WITH_MPI
    if (active_) MPI_Finalize();
#endif
    active_ = false;
  }

  int rank() const noexcept { return rank_; }
  int ranks() const noexcept { return ranks_; }
  bool root() const noexcept { return rank_ == 0; }
  /// The cores this rank may use: the machine's, shared by the ranks on it.
  int default_threads() const {
    const int cores = graph::ops::available_cores();
    return cores / local_ > 0 ? cores / local_ : 1;
  }
  graph::shard_exchange exchange() const {
#ifdef AMCTQ_WITH_MPI
    if (active_) return dist::shard_exchange_over(MPI_COMM_WORLD);
#endif
    return {};
  }
  /// The ranks claim calibration slices from one count when they share this machine (Open MPI
  /// then keeps the count in shared memory; across machines its one-sided operations may need a
  /// fabric the job lacks, so those ranks keep fixed shares) and MPI lets the worker threads
  /// call it one at a time.
  std::function<graph::slice_counter()> job_slices() const {
#ifdef AMCTQ_WITH_MPI
    if (active_ && local_ == ranks_ && thread_level_ >= MPI_THREAD_SERIALIZED)
      return dist::job_slices_over(MPI_COMM_WORLD);
#endif
    return {};
  }
  /// Stops every rank: one rank's error ends the job, and nothing is written.
  [[noreturn]] void abort(int code) const {
#ifdef AMCTQ_WITH_MPI
    if (active_) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    std::exit(code);
  }
  bool active() const noexcept { return active_; }

 private:
  static int env_int(const char* name, int fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    return end && *end == '\0' && n > 0 && n < (1 << 20) ? static_cast<int>(n) : fallback;
  }

  bool active_ = false;
  int rank_ = 0, ranks_ = 1, local_ = 1;
  int thread_level_ = 0;  // MPI_THREAD_SINGLE's value in Open MPI and MPICH
};

}  // namespace amctq::cli

#endif  // AMCTQ_TOOLS_MPI_SESSION_HPP
