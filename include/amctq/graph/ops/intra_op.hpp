// Threads an executor lends to its ops for the work inside one node. Calibration shares slices
// of rows out to executors; when there are fewer slices than cores (a batch-1 model, a handful
// of rows) the cores left over help inside the big ops instead. An op cuts its work into tasks
// that write disjoint parts of its output and whose arithmetic does not depend on which thread
// runs them or in what order, so the output bytes are those of one thread.
#ifndef AMCTQ_GRAPH_OPS_INTRA_OP_HPP
#define AMCTQ_GRAPH_OPS_INTRA_OP_HPP

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace amctq::graph::ops {

/// The cores of this machine (1 where the library cannot tell): every default thread count.
inline int available_cores() noexcept {
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

/// The calling thread plus `threads - 1` helpers. One job at a time: run() is not reentrant and
/// is called from the executor's own thread only. Between jobs the helpers spin a little before
/// they sleep: waking a sleeping thread costs tens of microseconds on a VM, as much as a small
/// MatMul, and the ops of one run follow each other closely.
class intra_op_pool {
 public:
  explicit intra_op_pool(int threads) {
    for (int w = 1; w < threads; ++w) helpers_.emplace_back([this, w] { serve(w); });
  }
  intra_op_pool(const intra_op_pool&) = delete;
  intra_op_pool& operator=(const intra_op_pool&) = delete;
  ~intra_op_pool() {
    {
      std::lock_guard<std::mutex> g(lock_);
      quit_ = true;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& t : helpers_) t.join();
  }

  /// Workers, the calling thread included; task callbacks see worker ids in [0, threads()).
  int threads() const noexcept { return static_cast<int>(helpers_.size()) + 1; }

  /// Runs task(t, worker) for every t in [0, tasks), each exactly once, and returns when all have
  /// finished. The first exception a task throws is rethrown here; tasks not started by then
  /// are skipped.
  void run(std::int64_t tasks, const std::function<void(std::int64_t, int)>& task) {
    if (tasks <= 0) return;
    if (helpers_.empty() || tasks == 1) {
      for (std::int64_t t = 0; t < tasks; ++t) task(t, 0);
      return;
    }
    job_ = &task;
    tasks_ = tasks;
    next_ = 0;
    failed_ = false;
    error_ = nullptr;
    busy_ = static_cast<int>(helpers_.size());
    {
      std::lock_guard<std::mutex> g(lock_);  // a helper about to sleep sees the new job or the wake-up
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    work(0);
    for (int spin = 0; busy_.load() != 0; ++spin)
      if (spin > 4096) std::this_thread::yield();
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void work(int worker) {
    for (;;) {
      const std::int64_t t = next_.fetch_add(1);
      if (t >= tasks_ || failed_) return;
      try {
        (*job_)(t, worker);
      } catch (...) {
        std::lock_guard<std::mutex> g(lock_);
        if (!error_) error_ = std::current_exception();
        failed_ = true;
      }
    }
  }
  void serve(int worker) {
    std::uint64_t seen = 0;
    for (;;) {
      // About 100 microseconds of polling, then sleep until the next job.
      for (int spin = 0; spin < 20000 && generation_.load() == seen; ++spin) spin_pause();
      if (generation_.load() == seen) {
        std::unique_lock<std::mutex> l(lock_);
        wake_.wait(l, [&] { return generation_.load() != seen; });
      }
      seen = generation_.load();
      if (quit_) return;
      work(worker);
      busy_.fetch_sub(1);
    }
  }
  static void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  std::vector<std::thread> helpers_;
  std::mutex lock_;
  std::condition_variable wake_;
  std::atomic<std::uint64_t> generation_{0};
  const std::function<void(std::int64_t, int)>* job_ = nullptr;
  std::int64_t tasks_ = 0;
  std::atomic<std::int64_t> next_{0};
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;
  std::atomic<int> busy_{0};
  bool quit_ = false;
};

}  // namespace amctq::graph::ops

#endif  // AMCTQ_GRAPH_OPS_INTRA_OP_HPP
