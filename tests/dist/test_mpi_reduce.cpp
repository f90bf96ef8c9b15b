// dist::reduce_observers under `mpiexec -np N`: every rank observes its own batches; after the
// reduction, rank 0's observers give the very params (bit for bit) of one observer that saw
// every rank's batches in rank order, for every order-free method, per tensor and per channel.
// The ranks compute every rank's data from one seed, so rank 0 can build that reference alone.
// Then dist::job_slices_over: every slice number goes to exactly one rank, pass after pass.
#include <mpi.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "amctq/algorithms/observer.hpp"
#include "amctq/dist/mpi.hpp"

namespace {

// Batch b of rank r: skewed, with an outlier, so the methods disagree.
std::vector<float> batch_of(int r, int b, std::size_t n) {
  std::mt19937 gen(static_cast<unsigned>(1000 * r + b));
  std::gamma_distribution<float> g(1.5f + 0.5f * static_cast<float>(r), 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = g(gen) - 1.0f;
  x[n / 3] = 40.0f + static_cast<float>(r);
  return x;
}

bool same(const amctq::quant_params& a, const amctq::quant_params& b) {
  return a.scale.size() == b.scale.size() &&
         std::memcmp(a.scale.data(), b.scale.data(), a.scale.size() * sizeof(float)) == 0 &&
         a.zero_point == b.zero_point && a.qmin == b.qmin && a.qmax == b.qmax && a.axis == b.axis;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  using namespace amctq;
  constexpr int batches = 3, channels = 4, inner = 250;
  constexpr std::size_t n = channels * inner;
  std::vector<observer_options> opts;
  for (calib_method m : all_calib_methods) {
    if (m == calib_method::moving_average) continue;  // depends on batch order; refuses to merge
    for (int axis : {per_tensor, 1}) {
      observer_options o;
      o.method = m;
      o.spec.axis = axis;
      o.name = std::string(to_string(m)) + (axis == per_tensor ? "" : "/channel");
      opts.push_back(o);
    }
  }
  auto feed = [&](activation_observer& o, int r) {
    for (int b = 0; b < batches; ++b) {
      const auto x = batch_of(r, b, n);
      if (o.options().spec.axis == per_tensor)
        o.observe(tensor_view<const float, 1>(x.data(), {static_cast<std::ptrdiff_t>(n)}));
      else
        o.observe(tensor_view<const float, 3>(x.data(), {1, channels, inner}));
    }
  };
  int failures = 0;
  try {
    std::vector<activation_observer> mine;
    for (const auto& o : opts) mine.emplace_back(o);
    for (auto& o : mine) feed(o, rank);
    std::vector<activation_observer*> ptrs;
    for (auto& o : mine) ptrs.push_back(&o);
    dist::reduce_observers(ptrs, MPI_COMM_WORLD);
    if (rank == 0) {
      for (std::size_t i = 0; i < opts.size(); ++i) {
        activation_observer all(opts[i]);
        for (int r = 0; r < ranks; ++r) feed(all, r);
        const bool ok = same(mine[i].result().params, all.result().params);
        std::printf("%s %s: %d ranks reduced = one observer over every batch\n", ok ? "ok  " : "FAIL",
                    opts[i].name.c_str(), ranks);
        failures += ok ? 0 : 1;
      }
    }
    // job_slices_over: two passes, each handing every number below 40 to exactly one rank; the
    // ranks claim as fast as they can, so which rank gets which is up to the race.
    constexpr int count = 40;
    const auto make_counter = dist::job_slices_over(MPI_COMM_WORLD);
    for (int pass = 0; pass < 2; ++pass) {
      std::vector<int> taken(count, 0), everyone(count, 0);
      {
        const graph::slice_counter next = make_counter();
        for (std::size_t s = next(); s < static_cast<std::size_t>(count); s = next()) ++taken[s];
      }
      MPI_Reduce(taken.data(), everyone.data(), count, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
      if (rank == 0) {
        bool once = true;
        for (int v : everyone) once = once && v == 1;
        std::printf("%s job_slices_over pass %d: each of %d slices claimed by exactly one of %d ranks\n",
                    once ? "ok  " : "FAIL", pass, count, ranks);
        failures += once ? 0 : 1;
      }
    }
  } catch (const std::exception& e) {
    std::printf("FAIL rank %d: %s\n", rank, e.what());
    failures = 1;
  }
  int all_failures = 0;
  MPI_Allreduce(&failures, &all_failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Finalize();
  return all_failures == 0 ? 0 : 1;
}
