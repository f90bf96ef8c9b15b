// Several files that replace an older set as a whole, for readers that check the manifest.
//
// POSIX renames one file atomically, not three; a process killed between two renames leaves
// new files beside old ones. So a set carries a manifest, DIR/amctq_manifest.json, which is the
// set's commit point: commit_file_set() removes it before replacing any file and writes it only
// after the last rename, listing every file of the set with its size and SHA-256. A reader
// (io::verify_file_set, or a few lines of any language) trusts the files only when the manifest
// exists and every listed file has the listed SHA-256; the digests also catch a reader that
// raced a concurrent save (read, then check). Without a manifest the folder holds no complete set.
#ifndef AMCTQ_IO_FILE_SET_HPP
#define AMCTQ_IO_FILE_SET_HPP

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "amctq/error.hpp"
#include "amctq/io/atomic_file.hpp"
#include "amctq/io/detail/mapped_file.hpp"
#include "amctq/io/detail/quote.hpp"
#include "amctq/io/detail/sha256.hpp"

namespace amctq::io {

/// The manifest's file name, in the folder of the set.
inline constexpr const char* file_set_manifest = "amctq_manifest.json";

/// One file of a committed set: its name relative to the set's folder, size and digest.
struct file_set_entry {
  std::string name;
  std::uint64_t bytes = 0;
  std::string sha256;
};

namespace detail {

inline std::string manifest_path(const std::string& dir) {
  return (dir.empty() ? std::string(".") : dir) + "/" + file_set_manifest;
}

}  // namespace detail

/// Renames the staged `files` (atomic_files in `dir`, written with hash_contents()) into place
/// as one set named `set`: prepare all, remove the manifest, rename each, write the manifest.
/// `after_rename` (tests) runs after each rename; if it throws, the set stays without manifest,
/// as a killed process leaves it.
inline std::vector<file_set_entry> commit_file_set(const std::string& dir, const std::vector<atomic_file*>& files,
                                                   const std::string& set,
                                                   const std::function<void(const std::string&)>& after_rename = {}) {
  const std::string manifest = detail::manifest_path(dir);
  detail::check_replaceable(manifest, "commit_file_set");
  const std::string prefix = (dir.empty() ? std::string(".") : dir) + "/";
  std::vector<file_set_entry> entries;
  for (atomic_file* f : files) {
    f->prepare();  // everything on disk (a full disk fails here, before anything is replaced)
    const std::string& p = f->path();
    file_set_entry e;
    e.name = p.compare(0, prefix.size(), prefix) == 0 ? p.substr(prefix.size()) : p;
    e.bytes = f->size();
    e.sha256 = f->sha256_hex();
    AMCTQ_CHECK(!e.sha256.empty(), errc::invalid_argument, "commit_file_set", "'", p, "' was written without hash_contents()");
    entries.push_back(std::move(e));
  }
  AMCTQ_CHECK(::unlink(manifest.c_str()) == 0 || errno == ENOENT, errc::io, "commit_file_set", "cannot remove '",
              manifest, "': ", std::strerror(errno));
  detail::sync_dir(dir);  // the manifest is gone on disk before any file of the set changes
  for (atomic_file* f : files) {
    f->commit();
    if (after_rename) after_rename(f->path());
  }
  detail::sync_dir(dir);
  nlohmann::ordered_json j;
  j["amctq_manifest"] = 1;
  j["set"] = set;
  j["files"] = nlohmann::ordered_json::array();
  for (const auto& e : entries) j["files"].push_back({{"name", e.name}, {"bytes", e.bytes}, {"sha256", e.sha256}});
  const std::string text = j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  write_file_atomic(manifest, text.data(), text.size());
  detail::sync_dir(dir);
  return entries;
}

/// Checks that `dir` holds a complete set: the manifest exists and every file it lists has
/// the listed size and SHA-256. Returns the entries; throws amctq::error (errc::io) naming
/// the first file that is missing or differs.
inline std::vector<file_set_entry> verify_file_set(const std::string& dir) {
  const std::string manifest = detail::manifest_path(dir);
  AMCTQ_CHECK(::access(manifest.c_str(), F_OK) == 0, errc::io, "verify_file_set", "'", manifest,
              "' is missing: the folder holds no complete set (a save was interrupted, or none ran)");
  nlohmann::json j;
  {
    const detail::mapped_file m(manifest);
    j = nlohmann::json::parse(reinterpret_cast<const char*>(m.data()), reinterpret_cast<const char*>(m.data()) + m.size(),
                              nullptr, false);
  }
  AMCTQ_CHECK(j.is_object() && j.contains("files") && j["files"].is_array(), errc::parse, "verify_file_set", "'",
              manifest, "' is not an amctq manifest");
  const std::string prefix = (dir.empty() ? std::string(".") : dir) + "/";
  std::vector<file_set_entry> out;
  for (const auto& f : j["files"]) {
    AMCTQ_CHECK(f.is_object() && f.value("name", nlohmann::json()).is_string() && f.value("bytes", nlohmann::json()).is_number_unsigned() &&
                    f.value("sha256", nlohmann::json()).is_string(),
                errc::parse, "verify_file_set", "'", manifest, "' has a malformed entry");
    file_set_entry e{f["name"].get<std::string>(), f["bytes"].get<std::uint64_t>(), f["sha256"].get<std::string>()};
    const std::string path = prefix + e.name;
    AMCTQ_CHECK(::access(path.c_str(), F_OK) == 0, errc::io, "verify_file_set", "'", detail::clip(path), "' is missing");
    const detail::mapped_file m(path);
    detail::sha256 h;
    h.update(m.data(), m.size());
    AMCTQ_CHECK(m.size() == e.bytes && h.hex() == e.sha256, errc::io, "verify_file_set", "'", detail::clip(path),
                "' is not the file the manifest lists (another save replaced it, or one was interrupted)");
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace amctq::io

#endif  // AMCTQ_IO_FILE_SET_HPP
