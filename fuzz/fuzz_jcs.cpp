// JCS on arbitrary bytes: never crashes, and canonicalization is idempotent (the canonical
// form of a canonical form is itself).
#include <cstdint>
#include <string_view>

#include "core/jcs.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto canonical = dynaseal::jcs_canonicalize(text, {.max_bytes = 1 << 16, .max_depth = 32});
  if (!canonical) return 0;
  auto again = dynaseal::jcs_canonicalize(*canonical, {.max_bytes = 1 << 20, .max_depth = 32});
  if (!again || *again != *canonical) __builtin_trap();
  return 0;
}
