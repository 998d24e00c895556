#include "server/admin_routes.hpp"

#include <random>
#include <string>

#include <gtest/gtest.h>

namespace dynaseal::server {
namespace {

using boost::beast::http::verb;

TEST(AdminRoutes, MatchesEveryDeclaredRoute) {
  EXPECT_EQ(match_admin_route(verb::get, "/admin/v1/backends")->action, AdminAction::list_backends);
  EXPECT_EQ(match_admin_route(verb::post, "/admin/v1/backends")->action, AdminAction::add_backend);
  auto get = match_admin_route(verb::get, "/admin/v1/backends/acme");
  EXPECT_EQ(get->action, AdminAction::get_backend);
  EXPECT_EQ(get->id, "acme");
  EXPECT_EQ(match_admin_route(verb::put, "/admin/v1/backends/acme")->action,
            AdminAction::replace_backend);
  EXPECT_EQ(match_admin_route(verb::delete_, "/admin/v1/backends/acme")->action,
            AdminAction::remove_backend);
  EXPECT_EQ(match_admin_route(verb::post, "/admin/v1/backends/acme/keys")->action,
            AdminAction::add_keys);
  auto key = match_admin_route(verb::delete_, "/admin/v1/backends/acme/keys/k1");
  EXPECT_EQ(key->action, AdminAction::remove_key);
  EXPECT_EQ(key->id, "acme");
  EXPECT_EQ(key->kid, "k1");
  EXPECT_EQ(match_admin_route(verb::post, "/admin/v1/revocations")->action, AdminAction::revoke);
  EXPECT_EQ(match_admin_route(verb::get, "/admin/v1/outbox")->action, AdminAction::outbox_stats);
  EXPECT_EQ(match_admin_route(verb::get, "/admin/v1/outbox/dead")->action,
            AdminAction::outbox_dead);
  EXPECT_EQ(match_admin_route(verb::post, "/admin/v1/outbox/replay")->action,
            AdminAction::outbox_replay);
}

TEST(AdminRoutes, RefusesPathsOutsideTheTable) {
  // The shapes that crashed the old string-slicing router (remove_prefix past the end).
  for (const char* path : {"/admin/v1", "/admin/", "/admin/x", "/admin", "/admin/v1/",
                           "/admin/v1//", "/admin/v1/backends/", "/admin/v1/backends//keys",
                           "/admin/v1/backends/a/keys/", "/admin/v1/backends/a/keys/k/x",
                           "/admin/v1/a/b/c/d/e/f", "/admin/v2/backends", "/admin/v1/nope"}) {
    auto route = match_admin_route(verb::get, path);
    ASSERT_FALSE(route) << path;
    EXPECT_EQ(route.error(), Error::not_found) << path;
  }
}

TEST(AdminRoutes, TellsAWrongMethodFromAnUnknownPath) {
  EXPECT_EQ(match_admin_route(verb::delete_, "/admin/v1/backends").error(),
            Error::method_not_allowed);
  EXPECT_EQ(match_admin_route(verb::get, "/admin/v1/revocations").error(),
            Error::method_not_allowed);
  EXPECT_EQ(match_admin_route(verb::patch, "/admin/v1/backends/a").error(),
            Error::method_not_allowed);
}

// Every path shape over a small alphabet, and random bytes: never out of bounds (ASan checks),
// and parameters are never empty and always inside the path.
TEST(AdminRoutes, IsTotalOverEveryPathShape) {
  const std::string alphabet[] = {"/", "a", "backends", "keys", "outbox", "dead", "%00", "?"};
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string path = i % 2 ? "/admin/v1/" : "/admin/";
    const int parts = static_cast<int>(rng() % 9);
    for (int p = 0; p < parts; ++p) path += alphabet[rng() % std::size(alphabet)];
    if (i % 7 == 0) path.push_back(static_cast<char>(rng() % 256));
    for (verb m : {verb::get, verb::post, verb::put, verb::delete_}) {
      auto route = match_admin_route(m, path);
      if (!route) {
        EXPECT_TRUE(route.error() == Error::not_found ||
                    route.error() == Error::method_not_allowed);
        continue;
      }
      for (std::string_view param : {route->id, route->kid}) {
        if (param.data() == nullptr) continue;
        EXPECT_FALSE(param.empty()) << path;
        EXPECT_GE(param.data(), path.data());
        EXPECT_LE(param.data() + param.size(), path.data() + path.size());
      }
    }
  }
}

}  // namespace
}  // namespace dynaseal::server
