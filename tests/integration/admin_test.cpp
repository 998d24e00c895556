// The admin API of a running server: authentication, backends added and removed at run time,
// key rotation; each change is visible to the very next completion request.

#include <boost/json.hpp>

#include "harness.hpp"

namespace dynaseal::integration {
namespace {

namespace json = boost::json;

class Admin : public IntegrationTest {
 protected:
  HttpResponse admin(std::string_view method, std::string_view target, std::string_view body = "") {
    return http_request(port(), method, target, body, server->admin_token());
  }

  std::vector<std::string> listed_ids() {
    std::vector<std::string> ids;
    HttpResponse r = admin("GET", "/admin/v1/backends");
    EXPECT_EQ(r.status, 200u) << r.body;
    const json::value doc = r.json();
    for (const json::value& b : doc.at("backends").as_array()) {
      ids.emplace_back(b.at("id").as_string());
    }
    return ids;
  }
};

TEST_F(Admin, RequestsWithoutOrWithAWrongTokenAre401AdminUnauthorized) {
  start();
  const std::string token = server->admin_token();
  ASSERT_GE(token.size(), 16u);
  for (std::string_view bearer : {std::string_view(""), std::string_view("wrong-token-0123456789"),
                                  std::string_view(token).substr(0, token.size() - 1)}) {
    HttpResponse r = http_request(port(), "GET", "/admin/v1/backends", "", bearer);
    EXPECT_EQ(r.status, 401u) << r.body;
    EXPECT_EQ(r.error_code(), "admin_unauthorized");
  }
  // A dynamic key is not an admin token either.
  HttpResponse r = http_request(port(), "GET", "/admin/v1/backends", "", acme.mint());
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.error_code(), "admin_unauthorized");
  HttpResponse post = http_request(port(), "POST", "/admin/v1/revocations",
                                   R"({"iss":"acme","sub":"user-42"})", "nope-nope-nope-nope");
  EXPECT_EQ(post.status, 401u);
  EXPECT_EQ(post.error_code(), "admin_unauthorized");
  EXPECT_EQ(chat(acme.mint()).status, 200u);  // nothing was revoked
}

TEST_F(Admin, ABackendAddedAtRunTimeIsServedAndOneRemovedIsUnknown) {
  start();
  Backend beta("beta", dir.path());
  const std::string before = beta.mint(beta.claims());
  EXPECT_EQ(chat(before).error_code(), "issuer_unknown");

  json::object add{{"id", "beta"},
                   {"jwks", json::parse(beta.jwks_json())},
                   {"callback_url", "http://127.0.0.1:9/v1/callbacks/usage"}};
  HttpResponse added = admin("POST", "/admin/v1/backends", json::serialize(add));
  ASSERT_EQ(added.status, 201u) << added.body;
  HttpResponse again = admin("POST", "/admin/v1/backends", json::serialize(add));
  EXPECT_EQ(again.status, 409u);
  EXPECT_EQ(again.error_code(), "conflict");

  std::vector<std::string> ids = listed_ids();
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"acme", "beta"}));
  HttpResponse one = admin("GET", "/admin/v1/backends/beta");
  ASSERT_EQ(one.status, 200u) << one.body;
  EXPECT_EQ(one.json().at("kids").as_array().at(0).as_string(), beta.kid());

  const std::string beta_key = beta.mint(beta.claims());
  HttpResponse served = chat(beta_key);
  EXPECT_EQ(served.status, 200u) << served.body;

  ASSERT_EQ(admin("DELETE", "/admin/v1/backends/beta").status, 200u);
  EXPECT_EQ(listed_ids(), std::vector<std::string>{"acme"});
  HttpResponse gone = chat(beta.mint(beta.claims()));
  EXPECT_EQ(gone.status, 401u);
  EXPECT_EQ(gone.error_code(), "issuer_unknown");
  EXPECT_EQ(admin("DELETE", "/admin/v1/backends/beta").error_code(), "not_found");
}

TEST_F(Admin, InvalidBackendsAreRefusedAs400) {
  start();
  EXPECT_EQ(admin("POST", "/admin/v1/backends", "{").error_code(), "body_malformed");
  EXPECT_EQ(admin("POST", "/admin/v1/backends", R"({"id":"x"})").error_code(), "body_malformed");
  EXPECT_EQ(admin("POST", "/admin/v1/backends", R"({"id":"x","jwks":{"keys":[]}})").error_code(),
            "body_malformed");
  // A private key is never accepted as a backend's public key.
  json::object priv = json::parse(acme.jwks_json()).at("keys").at(0).as_object();
  priv["d"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  HttpResponse r = admin("POST", "/admin/v1/backends",
                         json::serialize(json::object{{"id", "x"}, {"jwks", priv}}));
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.error_code(), "body_malformed");
  EXPECT_EQ(listed_ids(), std::vector<std::string>{"acme"});
}

TEST_F(Admin, RotatingAKeyAcceptsTheNewOneAndRetiringTheOldOneMakesItsTokensKidUnknown) {
  start();
  const std::string old_kid = acme.kid();
  const std::string old_token = acme.mint();  // minted before rotation, not used yet
  acme.rotate();
  const std::string new_token = acme.mint();
  EXPECT_EQ(chat(new_token).error_code(), "kid_unknown");  // not registered yet: not consumed

  json::object keys{{"jwks", json::parse(acme.jwks_json())}};
  HttpResponse added = admin("POST", "/admin/v1/backends/acme/keys", json::serialize(keys));
  ASSERT_EQ(added.status, 200u) << added.body;
  HttpResponse listed = admin("GET", "/admin/v1/backends/acme");
  EXPECT_EQ(listed.json().at("kids").as_array().size(), 2u);
  EXPECT_EQ(chat(new_token).status, 200u);

  HttpResponse retired = admin("DELETE", "/admin/v1/backends/acme/keys/" + old_kid);
  ASSERT_EQ(retired.status, 200u) << retired.body;
  HttpResponse r = chat(old_token);
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.error_code(), "kid_unknown");
  // The last key cannot be retired.
  HttpResponse last = admin("DELETE", "/admin/v1/backends/acme/keys/" + acme.kid());
  EXPECT_EQ(last.status, 409u) << last.body;
  EXPECT_EQ(last.error_code(), "conflict");
  EXPECT_EQ(chat(acme.mint()).status, 200u);
}

TEST_F(Admin, ReplacingABackendsKeysTakesEffectAtOnce) {
  start();
  const std::string old_token = acme.mint();
  acme.rotate();
  json::object put{{"jwks", json::parse(acme.jwks_json())}};
  HttpResponse r = admin("PUT", "/admin/v1/backends/acme", json::serialize(put));
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(chat(old_token).error_code(), "kid_unknown");
  EXPECT_EQ(chat(acme.mint()).status, 200u);
}

TEST_F(Admin, RevocationsNeedAnIssuerAndExactlyOneOfJtiOrSub) {
  start();
  EXPECT_EQ(
      admin("POST", "/admin/v1/revocations", R"({"jti":"abcdefghijklmnopqrst"})").error_code(),
      "body_malformed");
  EXPECT_EQ(admin("POST", "/admin/v1/revocations",
                  R"({"iss":"acme","jti":"abcdefghijklmnopqrst","sub":"u"})")
                .error_code(),
            "body_malformed");
  EXPECT_EQ(admin("POST", "/admin/v1/revocations", R"({"iss":"acme"})").error_code(),
            "body_malformed");
  EXPECT_EQ(admin("GET", "/admin/v1/nothing").error_code(), "not_found");
}

}  // namespace
}  // namespace dynaseal::integration
