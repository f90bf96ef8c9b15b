// Atomic file writes: bytes go to a temp file in the destination's folder and are renamed
// over the destination only once complete, so a failed or interrupted save never leaves a
// half-written file behind (docs/pipeline.md). POSIX only.
//
// Temp files are named ".<file>.tmp.<pid>.XXXXXX". A process killed while writing leaves its
// temp file behind; the next atomic_file for the same destination removes the temp files of
// that destination whose process is gone (and those of the older ".<file>.tmp.XXXXXX" naming).
// A destination that exists and is not a regular file (a device, a FIFO, a folder) is refused,
// never replaced; a symbolic link to a regular file is replaced by the new file (the link
// itself, not its target).
#ifndef AMCTQ_IO_ATOMIC_FILE_HPP
#define AMCTQ_IO_ATOMIC_FILE_HPP

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "amctq/error.hpp"
#include "amctq/io/detail/sha256.hpp"

namespace amctq::io {

namespace detail {

/// Throws when `path` exists and is not a regular file (after following symbolic links).
inline void check_replaceable(const std::string& path, const char* where) {
  struct ::stat st {};
  if (::stat(path.c_str(), &st) != 0) return;  // missing (or a dangling link): nothing to protect
  AMCTQ_CHECK(S_ISREG(st.st_mode), errc::io, where, "'", path,
              "' exists and is not a regular file; amctq replaces only regular files");
}

/// Removes the temp files of `base` in `dir` left by killed amctq processes: names
/// ".<base>.tmp.<pid>.XXXXXX" whose process no longer exists, and the older ".<base>.tmp.XXXXXX".
/// Only regular files are removed. Returns how many.
inline std::size_t remove_stale_temps(const std::string& dir, const std::string& base) {
  const std::string prefix = "." + base + ".tmp.";
  DIR* d = ::opendir(dir.empty() ? "." : dir.c_str());
  if (!d) return 0;
  std::vector<std::string> stale;
  while (const ::dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    bool ours = false;
    if (rest.size() == 6 && rest.find('.') == std::string::npos) {
      ours = true;  // ".<base>.tmp.XXXXXX": before temp names carried the pid
    } else {
      const auto dot = rest.find('.');
      const std::string pid = rest.substr(0, dot);
      if (dot != std::string::npos && rest.size() - dot - 1 == 6 && !pid.empty() && pid.size() <= 9 &&
          pid.find_first_not_of("0123456789") == std::string::npos) {
        const long p = std::stol(pid);
        ours = p > 0 && ::kill(static_cast<pid_t>(p), 0) != 0 && errno == ESRCH;  // that process is gone
      }
    }
    if (ours) stale.push_back(name);
  }
  ::closedir(d);
  std::size_t removed = 0;
  for (const std::string& name : stale) {
    const std::string path = (dir.empty() ? std::string() : dir + "/") + name;
    struct ::stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::unlink(path.c_str()) == 0) ++removed;
  }
  return removed;
}

/// fsync of a folder, so that the renames in it reach the disk in order. Errors from file
/// systems that cannot sync folders are ignored.
inline void sync_dir(const std::string& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace detail

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
    detail::check_replaceable(path_, "atomic_file");
    detail::remove_stale_temps(slash == std::string::npos ? std::string() : slash == 0 ? std::string("/") : path_.substr(0, slash),
                               base);
    tmp_ = (slash == std::string::npos ? std::string() : dir) + "." + base + ".tmp." + std::to_string(::getpid()) +
           ".XXXXXX";
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
  /// Bytes written so far.
  std::uint64_t size() const noexcept { return size_; }
  /// Keep a SHA-256 of the bytes written (before the first write).
  void hash_contents() {
    AMCTQ_CHECK(size_ == 0, errc::invalid_argument, "atomic_file::hash_contents", "'", path_, "' has bytes already");
    hashing_ = true;
  }
  /// Their SHA-256 as hex, once after the last write; empty unless hash_contents() was called.
  std::string sha256_hex() { return hashing_ ? hash_.hex() : std::string(); }

  /// Buffered: small writes are gathered, large ones go straight to the file.
  void write(const void* data, std::size_t n) {
    AMCTQ_CHECK(fd_ >= 0, errc::io, "atomic_file::write", "'", path_, "' is already closed");
    size_ += n;
    if (hashing_) hash_.update(data, n);
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
    detail::check_replaceable(path_, "atomic_file::commit");  // again: it may have appeared meanwhile
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
  std::uint64_t size_ = 0;
  bool hashing_ = false;
  detail::sha256 hash_;
};

/// Writes `n` bytes to `path` atomically.
inline void write_file_atomic(const std::string& path, const void* data, std::size_t n) {
  atomic_file f(path);
  f.write(data, n);
  f.commit();
}

}  // namespace amctq::io

#endif  // AMCTQ_IO_ATOMIC_FILE_HPP
