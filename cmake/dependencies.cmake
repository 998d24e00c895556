# Third-party libraries, all from Debian 12 packages (scripts/install-deps).

find_package(PkgConfig REQUIRED)
find_package(Boost 1.81 REQUIRED COMPONENTS json url)
find_package(tl-expected REQUIRED)
find_package(CLI11 REQUIRED)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)

if(DYNASEAL_TESTS)
  find_package(GTest REQUIRED)
endif()
if(DYNASEAL_BENCH)
  find_package(benchmark REQUIRED)
endif()
