#include "server/registry_sync.hpp"

#include <gtest/gtest.h>

#include "core/jwk.hpp"

namespace dynaseal::server {
namespace {

PublicJwk new_key() { return make_public_jwk(SigningKey::generate().public_key()); }

store::RegisteredBackend row(const std::string& id, const PublicJwk& key, std::string url = "") {
  return {id, jwks_json({key}), std::move(url)};
}

TEST(RegistrySync, AppliesBackendsAnotherReplicaAddedChangedOrRemoved) {
  BackendRegistry registry;
  const PublicJwk a = new_key(), b = new_key(), c = new_key();
  ASSERT_TRUE(registry.add({"acme", {a}, "http://a"}));
  RegistrySync sync(registry, {row("acme", a, "http://a")});

  EXPECT_EQ(sync.apply({row("acme", a, "http://a")}), 0u);
  EXPECT_EQ(sync.apply({row("acme", a, "http://a"), row("globex", b)}), 1u);
  EXPECT_NE(registry.snapshot()->issuers.find_key("globex", b.kid), nullptr);

  EXPECT_EQ(sync.apply({row("acme", c, "http://a2"), row("globex", b)}), 1u);
  auto snap = registry.snapshot();
  EXPECT_EQ(snap->issuers.find_key("acme", a.kid), nullptr);
  EXPECT_NE(snap->issuers.find_key("acme", c.kid), nullptr);
  EXPECT_EQ(snap->backends.at("acme").callback_url, "http://a2");

  EXPECT_EQ(sync.apply({row("globex", b)}), 1u);
  EXPECT_FALSE(registry.snapshot()->issuers.has_issuer("acme"));
}

TEST(RegistrySync, LeavesConfigBackendsAloneWhileTheDatabaseSaysNothingOfThem) {
  BackendRegistry registry;
  const PublicJwk a = new_key(), b = new_key();
  ASSERT_TRUE(registry.add({"static", {a}, ""}));
  RegistrySync sync(registry, {});
  EXPECT_EQ(sync.apply({row("globex", b)}), 1u);
  EXPECT_EQ(sync.apply({}), 1u);
  EXPECT_TRUE(registry.snapshot()->issuers.has_issuer("static"));
  EXPECT_FALSE(registry.snapshot()->issuers.has_issuer("globex"));
}

TEST(RegistrySync, KeepsTheCurrentKeysWhenAStoredJwksIsInvalid) {
  BackendRegistry registry;
  const PublicJwk a = new_key();
  ASSERT_TRUE(registry.add({"acme", {a}, ""}));
  RegistrySync sync(registry, {row("acme", a)});
  EXPECT_EQ(sync.apply({{"acme", R"({"keys":[{"kty":"RSA"}]})", ""}}), 1u);
  EXPECT_NE(registry.snapshot()->issuers.find_key("acme", a.kid), nullptr);
  // Not retried until the row changes again.
  EXPECT_EQ(sync.apply({{"acme", R"({"keys":[{"kty":"RSA"}]})", ""}}), 0u);
}

}  // namespace
}  // namespace dynaseal::server
