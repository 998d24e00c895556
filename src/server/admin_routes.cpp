#include "server/admin_routes.hpp"

#include <array>
#include <optional>

namespace dynaseal::server {
namespace {

using boost::beast::http::verb;

constexpr std::string_view kPrefix = "/admin/v1/";
constexpr std::size_t kMaxSegments = 4;

// A pattern segment is a literal or a parameter ("{id}", "{kid}").
struct Entry {
  verb method;
  std::array<std::string_view, kMaxSegments> pattern;
  AdminAction action;
};

constexpr std::array<Entry, 11> kRoutes{{
    {verb::get, {"backends"}, AdminAction::list_backends},
    {verb::post, {"backends"}, AdminAction::add_backend},
    {verb::get, {"backends", "{id}"}, AdminAction::get_backend},
    {verb::put, {"backends", "{id}"}, AdminAction::replace_backend},
    {verb::delete_, {"backends", "{id}"}, AdminAction::remove_backend},
    {verb::post, {"backends", "{id}", "keys"}, AdminAction::add_keys},
    {verb::delete_, {"backends", "{id}", "keys", "{kid}"}, AdminAction::remove_key},
    {verb::post, {"revocations"}, AdminAction::revoke},
    {verb::get, {"outbox"}, AdminAction::outbox_stats},
    {verb::get, {"outbox", "dead"}, AdminAction::outbox_dead},
    {verb::post, {"outbox", "replay"}, AdminAction::outbox_replay},
}};

struct Segments {
  std::array<std::string_view, kMaxSegments> items{};
  std::size_t size = 0;
};

// The segments after the prefix; nothing for an empty segment or more than kMaxSegments.
std::optional<Segments> split(std::string_view rest) {
  Segments s;
  while (true) {
    const std::size_t slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    if (segment.empty() || s.size == kMaxSegments) return std::nullopt;
    s.items[s.size++] = segment;
    if (slash == std::string_view::npos) return s;
    rest = rest.substr(slash + 1);
  }
}

std::size_t pattern_size(const Entry& e) {
  std::size_t n = 0;
  while (n < kMaxSegments && !e.pattern[n].empty()) ++n;
  return n;
}

// Whether `s` has the shape of `e`; fills the parameters into `route`.
bool matches(const Entry& e, const Segments& s, AdminRoute& route) {
  if (pattern_size(e) != s.size) return false;
  AdminRoute r{e.action};
  for (std::size_t i = 0; i < s.size; ++i) {
    const std::string_view p = e.pattern[i];
    if (p == "{id}") {
      r.id = s.items[i];
    } else if (p == "{kid}") {
      r.kid = s.items[i];
    } else if (p != s.items[i]) {
      return false;
    }
  }
  route = r;
  return true;
}

}  // namespace

Result<AdminRoute> match_admin_route(verb method, std::string_view path) {
  if (!path.starts_with(kPrefix)) return Unexpected(Error::not_found);
  auto segments = split(path.substr(kPrefix.size()));
  if (!segments) return Unexpected(Error::not_found);
  bool shape_known = false;
  for (const Entry& e : kRoutes) {
    AdminRoute route{e.action};
    if (!matches(e, *segments, route)) continue;
    if (e.method == method) return route;
    shape_known = true;
  }
  return Unexpected(shape_known ? Error::method_not_allowed : Error::not_found);
}

bool changes_state(AdminAction action) {
  switch (action) {
    case AdminAction::list_backends:
    case AdminAction::get_backend:
    case AdminAction::outbox_stats:
    case AdminAction::outbox_dead: return false;
    case AdminAction::add_backend:
    case AdminAction::replace_backend:
    case AdminAction::remove_backend:
    case AdminAction::add_keys:
    case AdminAction::remove_key:
    case AdminAction::revoke:
    case AdminAction::outbox_replay: return true;
  }
  return true;
}

}  // namespace dynaseal::server
