// Progress of a long step on stderr: on a terminal, one bar redrawn in place (rows done,
// rows/s, time left); otherwise plain lines, at most one per tenth of the work or 10 s, so logs
// stay short.
#ifndef AMCTQ_TOOLS_PROGRESS_HPP
#define AMCTQ_TOOLS_PROGRESS_HPP

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace amctq::cli {

class progress_meter {
 public:
  /// `who`: the subcommand; `what`: the step ("calibration"); `unit`: what is counted ("rows");
  /// `rate`: show units/s and the time left (not for a few uneven steps).
  progress_meter(std::string who, std::string what, std::string unit, bool quiet, bool rate = true)
      : who_(std::move(who)), what_(std::move(what)), unit_(std::move(unit)), quiet_(quiet), rate_(rate),
        tty_(::isatty(STDERR_FILENO) == 1), start_(clock::now()), last_(start_) {}
  progress_meter(const progress_meter&) = delete;
  progress_meter& operator=(const progress_meter&) = delete;
  ~progress_meter() { finish(); }

  void operator()(std::int64_t done, std::int64_t total) {
    if (quiet_ || total <= 0 || (done == 0 && !tty_)) return;
    const auto now = clock::now();
    const double secs = std::chrono::duration<double>(now - start_).count();
    total_ = total;
    if (tty_) {
      if (done < total && now - last_ < std::chrono::milliseconds(100)) return;  // redraws cost more than they show
      const int width = 24, filled = static_cast<int>(width * done / total);
      std::fprintf(stderr, "\r%s: %s [%s%s] %lld/%lld %s%s", who_.c_str(), what_.c_str(), std::string(filled, '#').c_str(),
                   std::string(width - filled, '.').c_str(), static_cast<long long>(done),
                   static_cast<long long>(total), unit_.c_str(), rate(done, secs).c_str());
      std::fflush(stderr);
      drawn_ = true;
    } else {
      if (!rate_ && done < total) return;  // a few uneven steps: the end is the news
      const std::int64_t tenth = total / 10 > 0 ? total / 10 : 1;
      if (done < total && done < next_line_ && now - last_ < std::chrono::seconds(10)) return;
      next_line_ = (done / tenth + 1) * tenth;
      std::fprintf(stderr, "%s: %s %lld/%lld %s%s\n", who_.c_str(), what_.c_str(), static_cast<long long>(done),
                   static_cast<long long>(total), unit_.c_str(), rate(done, secs).c_str());
    }
    last_ = now;
  }

  /// Ends the bar's line (a terminal), once.
  void finish() {
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  using clock = std::chrono::steady_clock;

  std::string rate(std::int64_t done, double secs) const {
    if (!rate_ || secs <= 0.0 || done <= 0) return {};
    char buf[96];
    const double per_s = static_cast<double>(done) / secs;
    const double left = static_cast<double>(total_ - done) / per_s;
    std::snprintf(buf, sizeof buf, ", %.1f %s/s, %.0f s left", per_s, unit_.c_str(), left);
    return buf;
  }

  std::string who_, what_, unit_;
  bool quiet_, rate_, tty_;
  clock::time_point start_, last_;
  std::int64_t total_ = 0, next_line_ = 0;
  bool drawn_ = false;
};

}  // namespace amctq::cli

#endif  // AMCTQ_TOOLS_PROGRESS_HPP
