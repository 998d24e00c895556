// Helpers shared by the test suites: the public vectors folder and file reading.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace dynaseal::testing {

// ../shared/vectors beside the repository, or $DYNASEAL_VECTORS; nullopt when absent.
inline std::optional<std::filesystem::path> vectors_dir() {
  const char* env = std::getenv("DYNASEAL_VECTORS");
  std::filesystem::path dir = env != nullptr ? env : DYNASEAL_VECTORS_DIR;
  if (!std::filesystem::is_directory(dir)) return std::nullopt;
  return dir;
}

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
