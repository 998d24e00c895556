// Helpers shared by the test suites: the public vectors folder and file reading.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

namespace dynaseal::testing {

// ../shared/vectors beside the repository, or $DYNASEAL_VECTORS; nullopt when absent.
inline std::optional<std::filesystem::path> vectors_dir() {
  const char* env = std::getenv("DYNASEAL_VECTORS");
  std::filesystem::path dir = env != nullptr ? env : DYNASEAL_VECTORS_DIR;
  if (!std::filesystem::is_directory(dir)) return std::nullopt;
  return dir;
}

// A fresh directory under /tmp, removed with everything in it when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dynaseal-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace dynaseal::testing

// Skips the current test, saying why, when the shared vectors folder is absent.
#define DYNASEAL_REQUIRE_VECTORS(dir_var)                                             \
  auto dir_var##_opt = ::dynaseal::testing::vectors_dir();                            \
  if (!dir_var##_opt) GTEST_SKIP() << "../shared/vectors is absent: vectors skipped"; \
  const std::filesystem::path dir_var = *dir_var##_opt
