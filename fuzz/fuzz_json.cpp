// The strict JSON layer on arbitrary bytes: never crashes, and whatever it accepts has no
// duplicate member and survives a serialize/re-parse round trip unchanged.
#include <cstdint>
#include <string_view>

#include <boost/json/serialize.hpp>

#include "core/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto value = dynaseal::parse_json(text, {.max_bytes = 1 << 16, .max_depth = 32});
  if (!value) return 0;
  const std::string once = boost::json::serialize(*value);
  auto again = dynaseal::parse_json(once, {.max_bytes = 1 << 20, .max_depth = 32});
  if (!again || *again != *value) __builtin_trap();
  return 0;
}
