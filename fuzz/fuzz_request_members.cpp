// The member check of completion requests on arbitrary JSON bodies: never crashes, and any body
// it accepts carries no member outside the endpoint's list (the cap's allow-list holds).
#include <cstdint>
#include <string_view>

#include "core/json.hpp"
#include "server/request_members.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto endpoint =
      data[0] % 2 ? dynaseal::Endpoint::completions : dynaseal::Endpoint::chat_completions;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto doc = dynaseal::parse_json(text, {.max_bytes = 1 << 16, .max_depth = 32});
  if (!doc || !doc->is_object()) return 0;
  const dynaseal::server::MemberPolicy policy{.media_item_tokens = data[0] % 3};
  auto shape = dynaseal::server::check_members(doc->get_object(), endpoint, policy);
  if (!shape) return 0;
  const auto allowed = dynaseal::server::standard_members(endpoint);
  for (const auto& kv : doc->get_object()) {
    bool known = false;
    for (std::string_view m : allowed) known = known || kv.key() == m;
    if (!known) __builtin_trap();
  }
  return 0;
}
