// The admin route table on arbitrary methods and paths (issue 15: the old router sliced paths by
// hand and crashed on "/admin/v1"): never out of bounds, refusals are not_found or
// method_not_allowed, and a route's parameters are non-empty views inside the path.
#include <cstdint>
#include <string_view>

#include "server/admin_routes.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  using boost::beast::http::verb;
  const verb methods[] = {verb::get, verb::post, verb::put, verb::delete_, verb::patch};
  const verb method = methods[data[0] % 5];
  const std::string_view path(reinterpret_cast<const char*>(data + 1), size - 1);
  auto route = dynaseal::server::match_admin_route(method, path);
  if (!route) {
    if (route.error() != dynaseal::Error::not_found &&
        route.error() != dynaseal::Error::method_not_allowed) {
      __builtin_trap();
    }
    return 0;
  }
  for (std::string_view p : {route->id, route->kid}) {
    if (p.data() == nullptr) continue;
    if (p.empty() || p.data() < path.data() || p.data() + p.size() > path.data() + path.size()) {
      __builtin_trap();
    }
  }
  return 0;
}
