// Saves as a set (io/file_set.hpp) and what atomic_file refuses or cleans up: a set interrupted
// between two renames has no manifest, the next commit restores one; temporaries of dead runs
// are removed; destinations that are not regular files are never replaced; SHA-256 vectors.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "amctq/io/file_set.hpp"

namespace test_file_set {

namespace fs = std::filesystem;
using namespace amctq;

namespace {

fs::path fresh_dir(const char* name) {
  const fs::path d = fs::temp_directory_path() / (std::string("amctq_") + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void spit(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

std::string sha(const std::string& s) {
  io::detail::sha256 h;
  h.update(s.data(), s.size());
  return h.hex();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const amctq::error& e) {
    return e.what();
  }
  return "";
}

/// Three files a, b, c holding `tag`, staged in `dir` with their digests kept.
std::vector<std::unique_ptr<io::atomic_file>> stage(const fs::path& dir, const std::string& tag) {
  std::vector<std::unique_ptr<io::atomic_file>> files;
  for (const char* name : {"a", "b", "c"}) {
    files.push_back(std::make_unique<io::atomic_file>((dir / name).string()));
    files.back()->hash_contents();
    const std::string text = std::string(name) + " of " + tag;
    files.back()->write(text.data(), text.size());
  }
  return files;
}

std::vector<io::atomic_file*> raw(const std::vector<std::unique_ptr<io::atomic_file>>& v) {
  std::vector<io::atomic_file*> out;
  for (const auto& f : v) out.push_back(f.get());
  return out;
}

std::size_t temporaries(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().find(".tmp.") != std::string::npos;
  return n;
}

}  // namespace

TEST_CASE("file set: sha256 gives the FIPS 180-4 digests, however the input is cut") {
  CHECK(sha("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  CHECK(sha(million) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  for (std::size_t piece : {1u, 7u, 63u, 64u, 65u, 1000u}) {
    io::detail::sha256 h;
    for (std::size_t at = 0; at < 3000; at += piece) h.update(million.data() + at, std::min<std::size_t>(piece, 3000 - at));
    CHECK(h.hex() == sha(million.substr(0, 3000)));
  }
}

TEST_CASE("file set: sha256 with the CPU's SHA extensions equals the portable code") {
#if AMCTQ_SHA256_NI
  const std::string path = io::detail::has_sha_ni() ? "yes" : "no (both runs are portable)";
  MESSAGE("SHA-NI on this CPU: " << path);
#endif
  std::string data(100000, '\0');
  std::uint32_t x = 12345;
  for (auto& ch : data) ch = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
  for (std::size_t n : {0u, 55u, 56u, 64u, 119u, 128u, 4096u, 99999u, 100000u}) {
    CAPTURE(n);
    io::detail::sha256 fast, portable(false);
    fast.update(data.data(), n);
    portable.update(data.data(), n);
    CHECK(fast.hex() == portable.hex());
  }
}

TEST_CASE("file set: atomic_file never replaces what is not a regular file") {
  const fs::path dir = fresh_dir("nonregular");
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  fs::create_directories(dir / "folder");
  fs::create_symlink("/dev/null", dir / "null_link");
  for (const char* name : {"fifo", "folder", "null_link"}) {
    CAPTURE(name);
    const std::string msg = error_of([&] { io::write_file_atomic((dir / name).string(), "x", 1); });
    CHECK(msg.find("[amctq.io] atomic_file: '" + (dir / name).string() + "' exists and is not a regular file") !=
          std::string::npos);
  }
  CHECK(fs::is_fifo(fs::symlink_status(dir / "fifo")));
  CHECK(fs::is_directory(fs::symlink_status(dir / "folder")));
  CHECK(fs::read_symlink(dir / "null_link") == "/dev/null");
  // A link to a regular file is replaced by the new file; its target keeps its bytes.
  spit(dir / "target", "old");
  fs::create_symlink("target", dir / "link");
  io::write_file_atomic((dir / "link").string(), "new", 3);
  CHECK(fs::is_regular_file(fs::symlink_status(dir / "link")));
  CHECK(slurp(dir / "link") == "new");
  CHECK(slurp(dir / "target") == "old");
  CHECK(temporaries(dir) == 0);
  fs::remove_all(dir);
}

TEST_CASE("file set: temporaries left by dead runs are removed, others kept") {
  const fs::path dir = fresh_dir("stale");
  const std::vector<std::string> stale = {".out.bin.tmp.999999999.aBcDeF", ".out.bin.tmp.Q1w2E3"};
  const std::vector<std::string> kept = {".out.bin.tmp." + std::to_string(::getpid()) + ".zZzZzZ",  // a live run
                                         ".other.bin.tmp.Q1w2E3", ".out.bin.tmp.x.yyyyyy", "out.bin.tmp.Q1w2E3",
                                         ".out.bin.tmp.Q1w2E3x"};
  for (const auto& n : stale) spit(dir / n, std::string(1000, 'z'));
  for (const auto& n : kept) spit(dir / n, "keep");
  fs::create_directories(dir / ".out.bin.tmp.AAAAAA");  // a folder is never removed
  io::write_file_atomic((dir / "out.bin").string(), "fresh", 5);
  for (const auto& n : stale) CHECK_MESSAGE(!fs::exists(dir / n), n);
  for (const auto& n : kept) CHECK_MESSAGE(fs::exists(dir / n), n);
  CHECK(fs::is_directory(dir / ".out.bin.tmp.AAAAAA"));
  CHECK(slurp(dir / "out.bin") == "fresh");
  fs::remove_all(dir);
}

TEST_CASE("file set: a set interrupted between renames has no manifest; the next commit restores one") {
  const fs::path dir = fresh_dir("set");
  const std::string d = dir.string();
  {
    auto files = stage(dir, "run 1");
    const auto entries = io::commit_file_set(d, raw(files), "demo");
    REQUIRE(entries.size() == 3);
    CHECK(entries[1].name == "b");
    CHECK(entries[1].bytes == 10);
    CHECK(entries[1].sha256 == sha("b of run 1"));
  }
  CHECK(io::verify_file_set(d).size() == 3);
  const std::string manifest = slurp(dir / "amctq_manifest.json");
  CHECK(manifest.find("\"set\": \"demo\"") != std::string::npos);
  CHECK(manifest.find(sha("c of run 1")) != std::string::npos);

  // Run 2 "killed" after its first rename: a is new, b and c old, and no manifest says otherwise.
  {
    auto files = stage(dir, "run 2");
    int renamed = 0;
    CHECK_THROWS_AS(io::commit_file_set(d, raw(files), "demo",
                                        [&](const std::string&) {
                                          if (++renamed == 1) throw std::runtime_error("killed");
                                        }),
                    std::runtime_error);
  }
  CHECK(slurp(dir / "a") == "a of run 2");
  CHECK(slurp(dir / "b") == "b of run 1");
  CHECK(!fs::exists(dir / "amctq_manifest.json"));
  CHECK(error_of([&] { io::verify_file_set(d); }).find("amctq_manifest.json' is missing: the folder holds no complete set") !=
        std::string::npos);
  CHECK(temporaries(dir) == 0);

  // Run 3 completes: a complete set again.
  {
    auto files = stage(dir, "run 3");
    io::commit_file_set(d, raw(files), "demo");
  }
  CHECK(io::verify_file_set(d).size() == 3);
  CHECK(slurp(dir / "b") == "b of run 3");

  // A file replaced behind the manifest's back (another writer, a reader racing a save).
  spit(dir / "b", "b of someone else");
  CHECK(error_of([&] { io::verify_file_set(d); }).find("/b' is not the file the manifest lists") != std::string::npos);
  fs::remove(dir / "c");
  spit(dir / "b", "b of run 3");
  CHECK(error_of([&] { io::verify_file_set(d); }).find("/c' is missing") != std::string::npos);

  // A manifest path that is a folder: refused before anything is replaced.
  fs::remove(dir / "amctq_manifest.json");
  fs::create_directories(dir / "amctq_manifest.json");
  {
    auto files = stage(dir, "run 4");
    CHECK(error_of([&] { io::commit_file_set(d, raw(files), "demo"); })
              .find("amctq_manifest.json' exists and is not a regular file") != std::string::npos);
  }
  CHECK(slurp(dir / "a") == "a of run 3");
  CHECK(temporaries(dir) == 0);
  fs::remove_all(dir);
}

}  // namespace test_file_set
