// Atomic file writes: bytes go to a temp file in the destination's folder and are renamed
// over the destination only once complete, so a failed or interrupted save never leaves a
// half-written file behind (docs/pipeline.md). POSIX only.
#ifndef AMCTQ_IO_ATOMIC_FILE_HPP
#define AMCTQ_IO_ATOMIC_FILE_HPP

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "amctq/error.hpp"

namespace amctq::io {

/// A file being written: create, write(), commit(). Destroying it uncommitted removes the
/// temp file and leaves any existing destination untouched.
class atomic_file {
 public:
  explicit atomic_file(std::string path) : path_(std::move(path)) {
    AMCTQ_CHECK(!path_.empty(), errc::invalid_argument, "atomic_file", "empty path");
    const auto slash = path_.find_last_of('/');
    const std::string dir = slash == std::string::npos ? std::string(".") : path_.substr(0, slash + 1);
    const std::string base = slash == std::string::npos ? path_ : path_.substr(slash + 1);
    AMCTQ_CHECK(!base.empty(), errc::invalid_argument, "atomic_file", "path '", path_, "' names a folder");
    tmp_ = (slash == std::string::npos ? std::string() : dir) + "." + base + ".tmp.XXXXXX";
    std::vector<char> name(tmp_.begin(), tmp_.end());
    name.push_back('\0');
    fd_ = ::mkstemp(name.data());
    AMCTQ_CHECK(fd_ >= 0, errc::io, "atomic_file", "cannot create a temp file next to '", path_,
                "': ", std::strerror(errno));
    tmp_.assign(name.data());
    buf_.reserve(buffer_size);
  }
  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;
  ~atomic_file() { abandon(); }

  const std::string& path() const noexcept { return path_; }

  /// Buffered: small writes are gathered, large ones go straight to the file.
  void write(const void* data, std::size_t n) {
    AMCTQ_CHECK(fd_ >= 0, errc::io, "atomic_file::write", "'", path_, "' is already closed");
    if (buf_.size() + n <= buffer_size) {
      const auto* b = static_cast<const char*>(data);
      buf_.insert(buf_.end(), b, b + n);
      return;
    }
    flush();
    if (n >= buffer_size) {
      write_all(data, n);
    } else {
      const auto* b = static_cast<const char*>(data);
      buf_.insert(buf_.end(), b, b + n);
    }
  }
  /// Sink interface for pb::writer.
  static constexpr bool counting = false;
  void put(const void* data, std::size_t n) { write(data, n); }

  /// Flushes, syncs and closes the temp file: after this, only the rename of commit() is left.
  /// Callers writing several files prepare() them all first, so that a full disk fails before
  /// any destination is replaced.
  void prepare() {
    if (prepared_) return;
    AMCTQ_CHECK(fd_ >= 0, errc::io, "atomic_file::prepare", "'", path_, "' is already closed");
    flush();
    AMCTQ_CHECK(::fsync(fd_) == 0, errc::io, "atomic_file::prepare", "fsync of '", tmp_, "' failed: ",
                std::strerror(errno));
    // mkstemp creates 0600; give the file the usual permissions a plain fopen would.
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(fd_, 0666 & ~mask);
    const int rc = ::close(fd_);
    fd_ = -1;
    AMCTQ_CHECK(rc == 0, errc::io, "atomic_file::prepare", "closing '", tmp_, "' failed: ", std::strerror(errno));
    prepared_ = true;
  }

  /// prepare(), then renames over the destination.
  void commit() {
    prepare();
    AMCTQ_CHECK(::rename(tmp_.c_str(), path_.c_str()) == 0, errc::io, "atomic_file::commit", "cannot rename '", tmp_,
                "' to '", path_, "': ", std::strerror(errno));
    prepared_ = false;
    tmp_.clear();
  }

  /// Drops the temp file (what the destructor does when commit() was not reached).
  void abandon() noexcept {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
    tmp_.clear();
    prepared_ = false;
  }

 private:
  static constexpr std::size_t buffer_size = std::size_t{1} << 20;

  void flush() {
    if (!buf_.empty()) write_all(buf_.data(), buf_.size());
    buf_.clear();
  }
  void write_all(const void* data, std::size_t n) {
    const auto* p = static_cast<const char*>(data);
    while (n > 0) {
      const ::ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      AMCTQ_CHECK(w > 0, errc::io, "atomic_file::write", "writing '", tmp_, "' failed: ",
                  w < 0 ? std::strerror(errno) : "no progress");
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }

  std::string path_;
  std::string tmp_;  ///< the temp file while it exists (empty once committed or abandoned)
  int fd_ = -1;
  bool prepared_ = false;
  std::vector<char> buf_;
};

/// Writes `n` bytes to `path` atomically.
inline void write_file_atomic(const std::string& path, const void* data, std::size_t n) {
  atomic_file f(path);
  f.write(data, n);
  f.commit();
}

}  // namespace amctq::io

#endif  // AMCTQ_IO_ATOMIC_FILE_HPP
