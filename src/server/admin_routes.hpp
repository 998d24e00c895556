// The admin API's route table: which action a method and path name, with the path's parameters.
//
// Routing is one declared table (admin_routes.cpp), matched segment by segment: no handler
// slices a path by hand. A path is "/admin/v1/" followed by segments separated by single
// slashes; an empty segment ("//", a trailing "/"), a path outside "/admin/v1/" or a shape the
// table does not declare is not_found, a declared shape with another method method_not_allowed.
// Parameters are views into `path`, never empty, and must outlive nothing beyond it.
//
//   auto route = match_admin_route(req.method(), "/admin/v1/backends/acme/keys/k1");
//   if (!route) return reject(route.error());   // not_found / method_not_allowed
//   route->action == AdminAction::remove_key;  route->id == "acme";  route->kid == "k1"
#pragma once

#include <ostream>
#include <string_view>

#include <boost/beast/http/verb.hpp>

#include "core/error.hpp"

namespace dynaseal::server {

enum class AdminAction {
  list_backends,    // GET    /admin/v1/backends
  add_backend,      // POST   /admin/v1/backends
  get_backend,      // GET    /admin/v1/backends/{id}
  replace_backend,  // PUT    /admin/v1/backends/{id}
  remove_backend,   // DELETE /admin/v1/backends/{id}
  add_keys,         // POST   /admin/v1/backends/{id}/keys
  remove_key,       // DELETE /admin/v1/backends/{id}/keys/{kid}
  revoke,           // POST   /admin/v1/revocations
  outbox_stats,     // GET    /admin/v1/outbox
  outbox_dead,      // GET    /admin/v1/outbox/dead
  outbox_replay,    // POST   /admin/v1/outbox/replay
};

struct AdminRoute {
  AdminAction action;
  std::string_view id{};   // {id}, when the pattern has it
  std::string_view kid{};  // {kid}, when the pattern has it
};

// The route for `method` and `path` (the target without its query), or not_found /
// method_not_allowed. Total: any bytes in, never out of bounds.
Result<AdminRoute> match_admin_route(boost::beast::http::verb method, std::string_view path);

// Whether the action changes state (logged with who and what, never with secrets).
bool changes_state(AdminAction action);

}  // namespace dynaseal::server
