// A read-only memory map of a whole file: readers parse straight from the page cache, so a
// tensor's bytes are copied once (file -> tensor) instead of twice (file -> buffer -> tensor).
#ifndef AMCTQ_IO_DETAIL_MAPPED_FILE_HPP
#define AMCTQ_IO_DETAIL_MAPPED_FILE_HPP

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>

#include "amctq/error.hpp"

namespace amctq::io::detail {

class mapped_file {
 public:
  mapped_file() = default;
  /// `populate`: read the whole file in now (a reader that parses all of it); otherwise pages
  /// are read as they are touched, and release() lets them go again.
  explicit mapped_file(const std::string& path, bool populate = true) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer (fstat then refuses it).
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    AMCTQ_CHECK(fd >= 0, errc::io, "open", "cannot open '", path, "': ", std::strerror(errno));
    struct ::stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      AMCTQ_THROW(errc::io, "open", "'", path, "' is not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | (populate ? MAP_POPULATE : 0), fd, 0);
      if (p == MAP_FAILED) {
        const int e = errno;
        ::close(fd);
        AMCTQ_THROW(errc::io, "open", "cannot map '", path, "': ", std::strerror(e));
      }
      ::madvise(p, size_, MADV_SEQUENTIAL);
      data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);
  }
  mapped_file(mapped_file&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  mapped_file& operator=(mapped_file&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file() { release(); }

  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

  /// Drops the pages wholly inside [offset, offset + n) from this process's memory; touching
  /// them again reads them back from the file.
  void release(std::size_t offset, std::size_t n) const noexcept {
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t begin = (offset + page - 1) / page * page, end = std::min(offset + n, size_) / page * page;
    if (data_ && end > begin) ::madvise(const_cast<std::byte*>(data_) + begin, end - begin, MADV_DONTNEED);
  }

 private:
  void release() noexcept {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace amctq::io::detail

#endif  // AMCTQ_IO_DETAIL_MAPPED_FILE_HPP
