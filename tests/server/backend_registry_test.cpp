#include "server/backend_registry.hpp"

#include <gtest/gtest.h>

namespace dynaseal::server {
namespace {

PublicJwk new_key() { return make_public_jwk(SigningKey::generate().public_key()); }

TEST(BackendRegistry, PublishesBackendsToTheIssuerRegistry) {
  BackendRegistry r;
  const PublicJwk k = new_key();
  ASSERT_TRUE(r.add({"acme", {k}, "http://cb"}));
  auto snap = r.snapshot();
  EXPECT_NE(snap->issuers.find_key("acme", k.kid), nullptr);
  EXPECT_EQ(snap->backends.at("acme").callback_url, "http://cb");
}

TEST(BackendRegistry, KeepsOldSnapshotsUnchanged) {
  BackendRegistry r;
  ASSERT_TRUE(r.add({"acme", {new_key()}, ""}));
  auto before = r.snapshot();
  ASSERT_TRUE(r.remove("acme"));
  EXPECT_TRUE(before->issuers.has_issuer("acme"));
  EXPECT_FALSE(r.snapshot()->issuers.has_issuer("acme"));
}

TEST(BackendRegistry, RefusesDuplicatesAndUnknownIds) {
  BackendRegistry r;
  ASSERT_TRUE(r.add({"acme", {new_key()}, ""}));
  EXPECT_EQ(r.add({"acme", {new_key()}, ""}).error(), Error::conflict);
  EXPECT_EQ(r.replace({"globex", {new_key()}, ""}).error(), Error::not_found);
  EXPECT_EQ(r.remove("globex").error(), Error::not_found);
  EXPECT_EQ(r.add_keys("globex", {new_key()}).error(), Error::not_found);
}

TEST(BackendRegistry, RotatesKeys) {
  BackendRegistry r;
  const PublicJwk old_key = new_key(), next = new_key();
  ASSERT_TRUE(r.add({"acme", {old_key}, ""}));
  ASSERT_TRUE(r.add_keys("acme", {next, next}));
  EXPECT_EQ(r.snapshot()->backends.at("acme").keys.size(), 2u);
  ASSERT_TRUE(r.remove_key("acme", old_key.kid));
  EXPECT_EQ(r.snapshot()->issuers.find_key("acme", old_key.kid), nullptr);
  EXPECT_NE(r.snapshot()->issuers.find_key("acme", next.kid), nullptr);
  EXPECT_EQ(r.remove_key("acme", next.kid).error(), Error::conflict);  // never the last key
  EXPECT_EQ(r.remove_key("acme", "nope").error(), Error::not_found);
}

}  // namespace
}  // namespace dynaseal::server
